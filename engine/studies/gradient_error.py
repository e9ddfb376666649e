"""Study 4: error of the MAAC policy gradient vs horizon on the double integrator (MAAC Fig. 3).

For each seed: collect limited noisy data with a = K s + exploration noise, fit a dynamics
model and a critic for the policy K, then estimate dJ/dK by automatic differentiation of

    J_H(K) = E_{s0}[ sum_{t<H} gamma^t r(s_t, K s_t) + gamma^H Qhat(s_H, K s_H) ],

rolling s_{t+1} = f(s_t, K s_t) with f the true dynamics and with the learned model, and compare
with the analytic gradient (engine.studies.lqr). One seed is one committed record, so a killed
study resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

import numpy as np
import torch

from engine.numerics import set_process_numerics
from engine.record import RunWriter, StoreError, open_run
from engine.record.schema import Var
from engine.studies import lqr
from engine.studies import gradient_fit as fit
from engine.studies.gradient_config import ACTION, STATE, GradientErrorConfig

def maac_gradients(
    f: fit.Dynamics, critic: fit.Critic, K: np.ndarray, Q: np.ndarray, R: np.ndarray,
    s0: np.ndarray, gamma: float, horizon_max: int,
) -> np.ndarray:
    """dJ_H/dK for H = 0..horizon_max from one rollout; (H+1, K.size).

    J_H = sum_{t<H} gamma^t rbar_t + gamma^H qbar_H, with rbar_t, qbar_t the mean reward and
    critic value at step t. K has few entries, so forward-mode differentiation (one rollout
    per entry of K, vectorised) yields d rbar_t/dK and d qbar_t/dK for every t at once, where
    reverse mode would need a backward pass per term. The critic's parameters stay fixed.
    """
    Qt, Rt, s_init = torch.as_tensor(Q), torch.as_tensor(R), torch.as_tensor(s0)

    def terms(Kt: torch.Tensor) -> torch.Tensor:  # (2 horizon_max + 1,): rbar_0.., qbar_0..
        s = s_init  # (start, state)
        rewards, values = [], []
        for t in range(horizon_max + 1):
            a = s @ Kt.T  # (start, action)
            values.append(critic(s, a).mean())
            if t == horizon_max:
                break
            rewards.append(-((s @ Qt * s).sum(1) + (a @ Rt * a).sum(1)).mean())
            s = f(s, a)
        return torch.stack(rewards + values)

    jac = torch.func.jacfwd(terms)(torch.as_tensor(K, dtype=torch.float64))  # (terms, *K.shape)
    jac = jac.reshape(2 * horizon_max + 1, -1).numpy()
    d_reward, d_value = jac[:horizon_max], jac[horizon_max:]
    disc = gamma ** np.arange(horizon_max + 1)
    partial = np.concatenate([np.zeros((1, K.size)), np.cumsum(disc[:-1, None] * d_reward, axis=0)])
    return partial + disc[:, None] * d_value


def model_jacobian_error(f: fit.Dynamics, A: np.ndarray, B: np.ndarray, K: np.ndarray, s0: np.ndarray, horizon_max: int) -> float:
    """eps_f = max_t mean_s0 ||d f/d(s, a) - [A B]||_2 along the model's own rollout."""
    F = np.hstack([A, B])
    s = torch.as_tensor(s0)
    Kt = torch.as_tensor(K)
    worst = 0.0
    for _ in range(max(horizon_max, 1)):
        a = s @ Kt.T
        x = torch.cat([s, a], 1).requires_grad_(True)
        n = s.shape[1]
        # Jacobian of a batched map: rows of d f / d x for each sample, via one grad per output.
        y = f(x[:, :n], x[:, n:])
        jac = torch.stack([torch.autograd.grad(y[:, i].sum(), x, retain_graph=True)[0] for i in range(n)], 1)
        err = np.linalg.norm(jac.detach().numpy() - F, ord=2, axis=(1, 2)).mean()
        worst = max(worst, float(err))
        s = y.detach()
    return worst


def critic_gradient_error(critic: fit.Critic, W: np.ndarray, K: np.ndarray, s0: np.ndarray) -> float:
    """eps_Q = mean_s0 ||grad_(s,a) Qhat - grad_(s,a) Q^K||_2 at (s0, K s0)."""
    s = torch.as_tensor(s0)
    x = torch.cat([s, s @ torch.as_tensor(K).T], 1).requires_grad_(True)
    n = s.shape[1]
    g_hat = torch.autograd.grad(critic(x[:, :n], x[:, n:]).sum(), x)[0].numpy()
    g_true = -2.0 * x.detach().numpy() @ W  # W symmetric
    return float(np.linalg.norm(g_hat - g_true, axis=1).mean())


def run_seed(cfg: GradientErrorConfig, seed: int) -> dict[str, np.ndarray]:
    """One seed's record: analytic gradient, estimates for both dynamics, eps_f, eps_q."""
    m = cfg.matrices()
    A, B, Q, R, K, S0 = m["A"], m["B"], m["Q"], m["R"], m["K"], m["Sigma0"]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env_kwargs = {"dt": cfg.dt, "Q": Q, "R": R, "noise": cfg.noise, "sigma0": S0}
    data = fit.collect(env_kwargs, K, cfg.data_size, cfg.episode_length, cfg.explore, seed)
    if cfg.model == "mlp":
        learned = fit.fit_mlp_dynamics(data, cfg.hidden, cfg.model_steps)
    else:
        learned = fit.fit_linear_dynamics(data)
    if cfg.critic == "mlp":
        critic = fit.fit_mlp_critic(data, K, cfg.gamma, cfg.hidden, cfg.critic_iterations, cfg.critic_steps)
    else:
        critic = fit.fit_quadratic_critic(data, K, cfg.gamma)
    s0 = fit.moment_matched_normal(S0, cfg.start_states, rng)
    true_grad = lqr.analytic_gradient(A, B, Q, R, K, S0, cfg.gamma).reshape(-1)
    est = np.stack([
        maac_gradients(fn, critic, K, Q, R, s0, cfg.gamma, cfg.horizon_max)
        for fn in (fit.linear_dynamics(A, B), learned)
    ])  # (dynamics, horizon, param)
    W = lqr.q_hessian(A, B, Q, R, K, cfg.gamma)
    return {
        "seed": np.array([seed]),
        "true_grad": true_grad[None],
        "est_grad": est[None],
        "l1_error": np.abs(est - true_grad).sum(-1)[None],
        "eps_f": np.array([model_jacobian_error(learned, A, B, K, s0, cfg.horizon_max)]),
        "eps_q": np.array([critic_gradient_error(critic, W, K, s0)]),
    }


def _static(cfg: GradientErrorConfig) -> tuple[dict, dict[str, Var], dict[str, np.ndarray]]:
    """Coordinates, extra variables and their values: what anyone needs to recompute."""
    m = cfg.matrices()
    c1, c2, _ = lqr.lemma_bound_coefficients(
        m["A"], m["B"], m["Q"], m["R"], m["K"], cfg.gamma, cfg.horizon_max
    )
    coords = {
        "dynamics": ["true", "learned"], "horizon": np.arange(cfg.horizon_max + 1),
        "param": cfg.params(), "state": STATE, "state_in": STATE, "action": ACTION, "action_in": ACTION,
    }
    extra = {
        "A": Var(("state", "state_in"), "float64", "1", "state transition matrix A"),
        "B": Var(("state", "action_in"), "float64", "1", "control matrix B"),
        "Q": Var(("state", "state_in"), "float64", "1", "state cost Q"),
        "R": Var(("action", "action_in"), "float64", "1", "action cost R"),
        "K": Var(("action", "state_in"), "float64", "1", "policy gain K"),
        "Sigma0": Var(("state", "state_in"), "float64", "1", "initial-state covariance Sigma0"),
        "gamma": Var((), "float64", "1", "discount factor"),
        "bound_c1": Var(("horizon",), "float64", "1", "Lemma 4.1 coefficient c1(H) of eps_f"),
        "bound_c2": Var(("horizon",), "float64", "1", "Lemma 4.1 coefficient c2(H) of eps_Q"),
    }
    static = {**m, "gamma": np.float64(cfg.gamma), "bound_c1": c1, "bound_c2": c2}
    return coords, extra, static


def default_workers() -> int:
    """Processes that compute seeds by default: one per core, at most 2 (the default study's
    10 seeds then take about half the wall time of one process on a 2-core machine)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(2, cores)


def _worker_start(parent: int) -> None:
    """Pool worker initialiser: one torch thread, denormals flushed, and die with the study's
    process (Linux `PR_SET_PDEATHSIG`), so a killed study leaves no worker computing seeds nobody
    commits."""
    set_process_numerics(1)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _records(cfg: GradientErrorConfig, seeds: list[int], workers: int) -> Iterator[dict[str, np.ndarray]]:
    """Each seed's record, in seed order; seeds are independent, so `workers` processes compute
    them side by side and the numbers do not depend on `workers` (tested)."""
    if workers <= 1 or len(seeds) <= 1:
        yield from (run_seed(cfg, s) for s in seeds)
        return
    # spawn, not fork: the parent runs zarr's I/O thread, and forking a threaded process can
    # copy a held lock into the child
    with ProcessPoolExecutor(min(workers, len(seeds)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_start, initargs=(os.getpid(),)) as pool:
        yield from pool.map(run_seed, repeat(cfg), seeds)


def run_study(
    cfg: GradientErrorConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None, workers: int | None = None,
) -> Path:
    """Run every seed not yet committed in `out` (in `workers` processes, default
    `default_workers()`; commits stay in seed order); returns the store path."""
    out = Path(out)
    # The networks are tiny: extra threads only add synchronisation (and oversubscribe the
    # machine when several studies run at once).
    set_process_numerics(1)
    m = cfg.matrices()
    lqr.check_stable(m["A"], m["B"], m["K"], cfg.gamma)
    config = json.loads(json.dumps(dataclasses.asdict(cfg)))  # as stored: tuples become lists
    if resume and out.exists():
        stored = json.loads(open_run(out, check_values=False).attrs["config"])
        if stored != config:
            changed = sorted(k for k in config if stored.get(k) != config[k])
            raise StoreError(
                f"{str(out)!r} was written with a different config (differs in {changed}); "
                "resume it with the same arguments, or write a new store."
            )
        writer = RunWriter.resume(out)
    else:
        writer = RunWriter.create(
            out, kind="gradient_error", env_id="DoubleIntegrator-v0", algorithm=f"maac-{cfg.model}-{cfg.critic}",
            seed=cfg.base_seed, config=config, overwrite=overwrite,
        )
    with writer:
        if not writer.has_group("gradient_error"):
            writer.add_group("gradient_error", *_static(cfg))
        done = writer.committed["gradient_error"]
        if progress:
            progress(done, cfg.seeds)
        seeds = [cfg.base_seed + i for i in range(done, cfg.seeds)]
        n_workers = default_workers() if workers is None else workers
        for i, record in enumerate(_records(cfg, seeds, n_workers), start=done):
            writer.append("gradient_error", **record)
            writer.commit()
            if progress:
                progress(i + 1, cfg.seeds)
    return out
