"""Study 3 measurements: probes (a frozen model and policy), policy KL, one-step model error.

A probe freezes a dynamics model fitted to convergence on the replay buffer (the model's own
holdout split decides early stopping) and a copy of the policy pi_D. At a check, fresh
transitions are collected with the current policy pi, and each probe reports the mean over
those states of KL(pi(.|s) || pi_D(.|s)) and its model's one-step error on them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.distributions import Independent, Normal, kl_divergence

from engine.agents.sac import SAC
from engine.models.dynamics_base import Dynamics, ModelState, Transitions


@dataclass(frozen=True)
class Fresh:
    """Transitions collected at a check."""

    obs: np.ndarray
    """(n, obs_dim)"""
    action: np.ndarray
    """(n, act_dim) in env units"""
    next_obs: np.ndarray
    """(n, obs_dim)"""
    episode: np.ndarray
    """(n,) episode index within the collection"""

    def transitions(self) -> Transitions:
        """As model training data (no rewards or terminations are used by the probes)."""
        n = len(self.obs)
        return Transitions(obs=self.obs, action=self.action, reward=np.zeros(n), next_obs=self.next_obs,
                           terminated=np.zeros(n, bool), episode=self.episode)


@dataclass
class Probe:
    """A frozen model and the policy that was acting when it froze."""

    model: Dynamics
    policy: SAC
    """A copy of the agent at freezing time; only its actor is used (and saved)."""


def gaussian(policy: SAC, obs: torch.Tensor) -> Independent:
    """The pre-tanh Gaussian of `policy` at `obs` (batch, obs_dim), one event of act_dim."""
    mean, log_std = policy.policy_dist(obs)
    return Independent(Normal(mean, log_std.exp()), 1)


def policy_kl(pi: SAC, pi_d: SAC, obs: np.ndarray) -> float:
    """Mean over `obs` of KL(pi(.|s) || pi_D(.|s)) in nats, in closed form.

    Both policies are a = scale(tanh(u)) with u Gaussian; the squash and scale are one shared
    bijection, and KL is invariant under a shared bijection, so this is the Gaussians' KL.
    """
    with torch.no_grad():
        o = torch.as_tensor(obs, dtype=torch.float32)
        return float(kl_divergence(gaussian(pi, o), gaussian(pi_d, o)).mean())


def one_step_errors(model: Dynamics, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """(n,) L2 norm of the model's one-step prediction minus the true next observation.

    The ensemble predicts the mean of its elites' means (its `step_mode` is set to "mean" at
    freezing), so the error is not blurred by the model's own sampling noise.
    """
    with torch.no_grad():
        state = ModelState(torch.as_tensor(obs, dtype=torch.float32))
        pred = model.step(state, torch.as_tensor(action, dtype=torch.float32)).obs.numpy()
    return np.linalg.norm(pred.astype(np.float64) - next_obs, axis=-1)


def freeze(model: Dynamics, agent: SAC, data: Transitions) -> tuple[Probe, dict[str, float]]:
    """Fit `model` on `data` (its holdout split stops the fit) and freeze it with a copy of `agent`.

    Returns the probe and its record: model_error_train = the mean one-step error on the
    holdout rows (never fitted), n_holdout and fit_epochs.
    """
    metrics = model.fit(data)
    if hasattr(model, "step_mode"):
        model.step_mode = "mean"
    held = np.asarray(model.held_out, bool)
    if not held.any():
        raise ValueError("the probe's fit held nothing out: model_error_train needs a holdout split")
    err = one_step_errors(model, data.obs[held], data.action[held], data.next_obs[held])
    record = {"model_error_train": float(err.mean()), "n_holdout": int(held.sum()),
              "fit_epochs": int(metrics.get("epochs", 0))}
    return Probe(model, frozen_copy(agent)), record


def frozen_copy(agent: SAC, actor_state: dict[str, Any] | None = None) -> SAC:
    """A copy of `agent` that never trains again, optionally with a saved actor's weights."""
    copy_ = copy.deepcopy(agent)
    if actor_state is not None:
        copy_.actor.load_state_dict(actor_state)
    copy_.actor.requires_grad_(False)
    return copy_


def collect(policy: SAC, env: gym.Env, n: int, seed: int) -> Fresh:
    """`n` transitions with actions sampled from `policy` (its stochastic behaviour), starting
    from a reset with `seed` and resetting at episode ends; own RNG, so training is untouched."""
    gen = torch.Generator().manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list[np.ndarray]] = {"obs": [], "action": [], "next_obs": []}
    episode = np.zeros(n, np.int64)  # (n,)
    ep = 0
    for t in range(n):
        with torch.no_grad():
            mean, log_std = policy.policy_dist(torch.as_tensor(obs, dtype=torch.float32)[None])
            u = mean + log_std.exp() * torch.randn(mean.shape, generator=gen)
            action = policy.scale.clip(policy.scale.to_env(torch.tanh(u))[0].numpy())
        nxt, _, terminated, truncated, _ = env.step(action)
        rows["obs"].append(obs)
        rows["action"].append(action)
        rows["next_obs"].append(nxt)
        episode[t] = ep
        ep += bool(terminated or truncated)
        obs = env.reset()[0] if (terminated or truncated) else nxt
    return Fresh(**{k: np.asarray(v, np.float64) for k, v in rows.items()}, episode=episode)
