"""The tasks' own reward and termination functions, written in torch on observations.

`known_functions(env_id)` reads every weight and range from an instance of the env (so
non-default kwargs are honoured) and returns `reward(obs, action, next_obs) -> (batch,)` and
`terminated(next_obs) -> (batch,) bool`. How exact they are (checked in tests/models):

- HalfCheetah/Hopper/Walker2d with `exclude_current_positions_from_observation=False`: the
  forward velocity is (x' - x) / dt from the observations, as the env computes it: exact
  (float64 rounding; the env sums the control cost in the action's dtype, float32).
- Same tasks with the default observation (x dropped): x' - x is not observable, so the
  forward velocity is approximated by the end-of-step x velocity in next_obs (the env averages
  it over the frame-skip substeps; Hopper/Walker2d also clip it to +-10). Healthy bonus, control
  cost and termination stay exact. `exact` is False for these.
- Hopper's health check includes |qvel| < 100; observations clip velocities to +-10, so a
  termination caused by a velocity above 100 alone is missed (never seen with sane policies).
- InvertedPendulum-v5, DoubleIntegrator-v0: exact. Pendulum-v1: its observation is a float32
  rounding of the float64 (theta, theta_dot) it pays the cost on, so rewards agree to a relative
  ~1e-6 (atan2(sin, cos) vs the env's angle_normalize(theta) adds only ~1e-15).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
TerminationFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class KnownFunctions:
    """An env's reward and termination as torch functions of observations and actions."""

    reward: RewardFn
    """reward(obs, action, next_obs) -> (batch,)"""
    terminated: TerminationFn
    """terminated(next_obs) -> (batch,) bool (true terminations, not time limits)"""
    exact: bool
    """Whether both equal the env's up to float rounding (see the module doc when not)."""


def _never(next_obs: Tensor) -> Tensor:
    return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


def _inside(x: Tensor, bounds: tuple[float, float]) -> Tensor:
    return (bounds[0] < x) & (x < bounds[1])  # the envs use strict inequalities


def _locomotion(u: Any) -> KnownFunctions:
    nq = u.model.nq
    has_x = not u._exclude_current_positions_from_observation
    q = 0 if has_x else -1  # obs index of qpos[i] is i + q (for i >= 1 when x is dropped)
    vx = nq + q  # obs index of qvel[0]
    dt, fw, cw = float(u.dt), float(u._forward_reward_weight), float(u._ctrl_cost_weight)
    # Copied out so the closures do not keep the env alive. HalfCheetah has no health check.
    walks = hasattr(u, "_healthy_z_range")
    z_range = tuple(u._healthy_z_range) if walks else None
    angle_range = tuple(u._healthy_angle_range) if walks else None
    state_range = tuple(u._healthy_state_range) if hasattr(u, "_healthy_state_range") else None
    bonus = float(u._healthy_reward) if walks else 0.0
    can_end = walks and bool(u._terminate_when_unhealthy)

    def healthy(next_obs: Tensor) -> Tensor:
        ok = torch.ones(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)
        if z_range is not None and angle_range is not None:
            ok = _inside(next_obs[..., 1 + q], z_range) & _inside(next_obs[..., 2 + q], angle_range)
        if state_range is not None:  # Hopper checks state_vector()[2:] = qpos[2:], qvel
            ok = ok & _inside(next_obs[..., 2 + q:], state_range).all(-1)
        return ok

    def reward(obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        velocity = (next_obs[..., 0] - obs[..., 0]) / dt if has_x else next_obs[..., vx]
        r = fw * velocity - cw * action.pow(2).sum(-1).to(next_obs.dtype)
        return r + bonus * healthy(next_obs).to(r.dtype) if walks else r

    def terminated(next_obs: Tensor) -> Tensor:
        return ~healthy(next_obs) if can_end else _never(next_obs)

    return KnownFunctions(reward, terminated, exact=has_x)


def _inverted_pendulum(u: Any) -> KnownFunctions:
    def terminated(next_obs: Tensor) -> Tensor:
        return ~torch.isfinite(next_obs).all(-1) | (next_obs[..., 1].abs() > 0.2)

    def reward(obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        return (~terminated(next_obs)).to(next_obs.dtype)

    return KnownFunctions(reward, terminated, exact=True)


def _pendulum(u: Any) -> KnownFunctions:
    max_torque = float(u.max_torque)

    def reward(obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        # the cost is paid on the state before the step, as Pendulum-v1 computes it
        theta = torch.atan2(obs[..., 1], obs[..., 0])
        torque = action[..., 0].clamp(-max_torque, max_torque).to(obs.dtype)
        return -(theta.pow(2) + 0.1 * obs[..., 2].pow(2) + 0.001 * torque.pow(2))

    return KnownFunctions(reward, _never, exact=True)


def _double_integrator(u: Any) -> KnownFunctions:
    Q, R = np.asarray(u.Q, np.float64), np.asarray(u.R, np.float64)

    def reward(obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        # r(s, a) = -(s'Qs + a'Ra) on the state before the step, like DoubleIntegratorEnv.reward
        q = torch.as_tensor(Q, dtype=obs.dtype, device=obs.device)
        r = torch.as_tensor(R, dtype=obs.dtype, device=obs.device)
        a = action.to(obs.dtype)
        return -(torch.einsum("bi,ij,bj->b", obs, q, obs) + torch.einsum("bi,ij,bj->b", a, r, a))

    return KnownFunctions(reward, _never, exact=True)


_BUILDERS: dict[str, Callable[[Any], KnownFunctions]] = {
    "HalfCheetah-v5": _locomotion,
    "Hopper-v5": _locomotion,
    "Walker2d-v5": _locomotion,
    "InvertedPendulum-v5": _inverted_pendulum,
    "Pendulum-v1": _pendulum,
    "DoubleIntegrator-v0": _double_integrator,
}


def known_functions(env_id: str, env: gym.Env | None = None, **env_kwargs: Any) -> KnownFunctions:
    """Reward and termination of `env_id`, parameterised like `env` (or `gym.make(env_id, **env_kwargs)`)."""
    if env_id not in _BUILDERS:
        raise KeyError(f"no known reward/termination for {env_id!r}; known: {sorted(_BUILDERS)}")
    if env is None:
        import engine.envs  # noqa: F401  (registers DoubleIntegrator-v0)
        from engine.envs.mujoco_state import quiet_mujoco_warnings

        quiet_mujoco_warnings()
        env = gym.make(env_id, **env_kwargs)
        try:
            return _BUILDERS[env_id](env.unwrapped)
        finally:
            env.close()
    return _BUILDERS[env_id](env.unwrapped)
