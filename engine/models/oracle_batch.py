"""Batched oracle steps: native MuJoCo stepping plus the tasks' observation, reward and
termination in numpy, bit-exact with `env.step` (tests/models/test_oracle_batch.py).

Per sample only three MuJoCo calls run (`mj_setState`, `mj_step` with the env's frame skip,
`mj_getState`) on one `MjData`; the stored sim state [qpos, qvel, act, qacc_warmstart] (see
engine/envs/mujoco_state.py) is exactly MuJoCo's `mjSTATE_QPOS | QVEL | ACT | WARMSTART`
layout, so it goes in and out in one call each. The observation, reward and termination are
then computed for the whole batch from qpos/qvel before and after, copying the gymnasium v5
code term by term (same float32 control cost, same strict inequalities).

Why not `mujoco.rollout`: it returns `mjSTATE_FULLPHYSICS` states, which do not include the
solver's warm start (`qacc_warmstart`) after the step, so a chained oracle step (MVE's H
steps, each with a new policy action) could not be restored bit-exactly (contact models then
drift by ~1e-14 per step). On this 2-core machine its thread pool did not beat this loop
either (bench/oracle_rollout.py measures both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np

SIM_SPEC = int(mujoco.mjtState.mjSTATE_QPOS | mujoco.mjtState.mjSTATE_QVEL | mujoco.mjtState.mjSTATE_ACT
            | mujoco.mjtState.mjSTATE_WARMSTART)
"""MuJoCo's state signature of the stored sim state [qpos, qvel, act, qacc_warmstart]."""

# (u, qpos0 (n, nq), qpos1, qvel1 (n, nv), action float32 (n, a)) -> obs, reward, terminated
TaskFn = Callable[[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _ctrl_cost(u: Any, action: np.ndarray) -> np.ndarray:
    # the env sums np.square(action) in the action's dtype (float32) and scales it by a Python
    # float, which keeps float32 (NumPy 2 promotion); a row-wise sum adds in the env's order
    # (checked equal to the per-row sum for 1-17 actuators), then float64 as the env subtracts
    return (u._ctrl_cost_weight * np.sum(np.square(action), axis=1)).astype(np.float64)


def _positions(u: Any, qpos: np.ndarray) -> np.ndarray:
    return qpos[:, 1:] if u._exclude_current_positions_from_observation else qpos


def _inside(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (lo < x) & (x < hi)


def _half_cheetah(u: Any, qpos0: np.ndarray, qpos1: np.ndarray, qvel1: np.ndarray,
                  action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs = np.concatenate([_positions(u, qpos1), qvel1], axis=1)
    reward = u._forward_reward_weight * ((qpos1[:, 0] - qpos0[:, 0]) / u.dt) - _ctrl_cost(u, action)
    return obs, reward, np.zeros(len(obs), dtype=bool)


def _walker(u: Any, qpos0: np.ndarray, qpos1: np.ndarray, qvel1: np.ndarray,
            action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hopper-v5 and Walker2d-v5 (Hopper also checks the state vector's range)."""
    obs = np.concatenate([_positions(u, qpos1), np.clip(qvel1, -10, 10)], axis=1)
    healthy = _inside(qpos1[:, 1], *u._healthy_z_range) & _inside(qpos1[:, 2], *u._healthy_angle_range)
    if hasattr(u, "_healthy_state_range"):  # Hopper: state_vector()[2:] = qpos[2:], qvel (unclipped)
        state = np.concatenate([qpos1, qvel1], axis=1)[:, 2:]
        healthy &= _inside(state, *u._healthy_state_range).all(axis=1)
    forward = u._forward_reward_weight * ((qpos1[:, 0] - qpos0[:, 0]) / u.dt)
    reward = forward + healthy * u._healthy_reward - _ctrl_cost(u, action)
    return obs, reward, ~healthy & bool(u._terminate_when_unhealthy)


def _inverted_pendulum(u: Any, qpos0: np.ndarray, qpos1: np.ndarray, qvel1: np.ndarray,
                       action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs = np.concatenate([qpos1, qvel1], axis=1)
    terminated = ~np.isfinite(obs).all(axis=1) | (np.abs(obs[:, 1]) > 0.2)
    return obs, (~terminated).astype(np.float64), terminated


TASKS: dict[str, TaskFn] = {
    "HalfCheetahEnv": _half_cheetah,
    "HopperEnv": _walker,
    "Walker2dEnv": _walker,
    "InvertedPendulumEnv": _inverted_pendulum,
}
"""Batched task functions by the unwrapped env's class name (gymnasium v5 classes)."""


class BatchStepper:
    """Steps a batch of stored sim states of one unwrapped gymnasium MuJoCo env."""

    def __init__(self, env: Any) -> None:
        name = type(env).__name__
        if name not in TASKS or not type(env).__module__.endswith("_v5"):
            raise KeyError(f"no batched task functions for {type(env).__module__}.{name}")
        self._u, self._task = env, TASKS[name]
        self._model = env.model
        self._data = mujoco.MjData(env.model)  # private: the env's own data stays untouched
        m = env.model
        self.sim_dim = m.nq + 2 * m.nv + m.na
        if mujoco.mj_stateSize(m, SIM_SPEC) != self.sim_dim:
            raise AssertionError("MuJoCo's state layout changed; see engine/envs/mujoco_state.py")

    @staticmethod
    def supports(env: Any) -> bool:
        """Whether this env has batched task functions."""
        return type(env).__name__ in TASKS and type(env).__module__.endswith("_v5")

    def step(self, sim: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """sim (batch, sim_dim or nq + nv) float64, action (batch, act_dim) in the action
        space's dtype -> next_obs, reward, terminated, next_sim (as OracleDynamics.step_numpy)."""
        m, d, u = self._model, self._data, self._u
        nq, nv = m.nq, m.nv
        if sim.shape[1] == nq + nv:  # bare qpos, qvel: zero activations and warm start
            sim = np.concatenate([sim, np.zeros((len(sim), self.sim_dim - nq - nv))], axis=1)
        elif sim.shape[1] != self.sim_dim:
            raise ValueError(f"sim state must have {self.sim_dim} (full) or {nq + nv} (qpos, qvel) "
                             f"entries, got shape {sim.shape[1:]}")
        sim = np.ascontiguousarray(sim, dtype=np.float64)
        next_sim = np.empty_like(sim)
        ctrl, frame_skip = d.ctrl, u.frame_skip
        for i in range(len(sim)):
            mujoco.mj_setState(m, d, sim[i], SIM_SPEC)
            ctrl[:] = action[i]
            mujoco.mj_step(m, d, frame_skip)
            mujoco.mj_getState(m, d, next_sim[i], SIM_SPEC)
        obs, reward, terminated = self._task(u, sim[:, :nq], next_sim[:, :nq], next_sim[:, nq:nq + nv], action)
        return obs, reward, terminated, next_sim
