"""Benchmark of the gradient-error study (Study 4).

Prints, from one run on this machine:
  1. wall time of the default study (10 seeds x horizons 0..30) and sweeps/s (one sweep = one
     seed's estimates for every horizon and both dynamics, fits included), with the default
     worker processes and with one process (the baseline), and their ratio;
  2. the estimator alone: forward-mode derivatives of every step's terms from one rollout
     (what the study uses) against the obvious baseline that rolls out and back-propagates
     J_H separately for each H, as a speed ratio measured in the same process.

Usage: python bench/gradient_error_study.py [--seeds N] [--repeats R]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# the engine of the checkout this file is in (python puts bench/, not the cwd, on sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.studies import gradient_fit as fit
from engine.studies import lqr
from engine.studies.gradient_config import GradientErrorConfig
from engine.studies.gradient_error import default_workers, maac_gradients, run_study


def naive_gradients(f, critic, K, Q, R, s0, gamma, horizon_max):  # noqa: ANN001, ANN201
    """Baseline: a fresh rollout and backward pass of J_H for every H."""
    out = []
    for H in range(horizon_max + 1):
        Kt = torch.tensor(K, requires_grad=True)
        s = torch.as_tensor(s0)
        J = torch.zeros((), dtype=torch.float64)
        for t in range(H):
            a = s @ Kt.T
            J = J + gamma**t * -((s @ torch.as_tensor(Q) * s).sum(1) + (a @ torch.as_tensor(R) * a).sum(1)).mean()
            s = f(s, a)
        J = J + gamma**H * critic(s, s @ Kt.T).mean()
        out.append(torch.autograd.grad(J, Kt)[0].reshape(-1).numpy())
    return np.stack(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = GradientErrorConfig(seeds=args.seeds)

    print(f"default study: {cfg.seeds} seeds x {cfg.horizon_max + 1} horizons x 2 dynamics (goal <= 30 s wall)")
    walls = {}
    for workers in (default_workers(), 1):  # the default, then the one-process baseline
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_study(cfg, Path(tmp) / "bench.zarr", workers=workers)
            walls[workers] = wall = time.perf_counter() - t0
        print(f"  {workers} worker(s): wall time {wall:.1f} s   ({cfg.seeds / wall:.2f} sweeps/s, "
              f"{wall / cfg.seeds:.2f} s per seed)")
    if len(walls) > 1:
        print(f"  default ({default_workers()} workers) vs one process: x{walls[1] / walls[default_workers()]:.2f}")

    m = cfg.matrices()
    A, B, Q, R, K, S0 = (m[k] for k in ("A", "B", "Q", "R", "K", "Sigma0"))
    env_kwargs = {"dt": cfg.dt, "Q": Q, "R": R, "noise": cfg.noise, "sigma0": S0}
    data = fit.collect(env_kwargs, K, cfg.data_size, cfg.episode_length, cfg.explore, 0)
    f = fit.fit_mlp_dynamics(data, cfg.hidden, cfg.model_steps)
    critic = fit.exact_critic(lqr.q_hessian(A, B, Q, R, K, cfg.gamma))
    s0 = fit.moment_matched_normal(S0, cfg.start_states, np.random.default_rng(0))
    ours, base = [], []
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        t = time.perf_counter()
        g1 = maac_gradients(f, critic, K, Q, R, s0, cfg.gamma, cfg.horizon_max)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        g2 = naive_gradients(f, critic, K, Q, R, s0, cfg.gamma, cfg.horizon_max)
        base.append(time.perf_counter() - t)
    assert np.allclose(g1, g2, rtol=1e-9, atol=1e-12), "estimators disagree"
    print(f"estimator, learned MLP dynamics, H = 0..{cfg.horizon_max}, {cfg.start_states} start states:")
    print(f"  forward mode, one rollout (study) {np.median(ours) * 1e3:.0f} ms   per-H reverse mode (baseline) "
          f"{np.median(base) * 1e3:.0f} ms   speed-up x{np.median(base) / np.median(ours):.1f}")


if __name__ == "__main__":
    main()
