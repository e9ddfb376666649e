"""Oracle dynamics: the true MuJoCo simulator, restored to any stored state (MVE appendix A).

The oracle owns one private, unwrapped env (no time limit, no checker). For every sample it
restores the simulator state carried in `ModelState.sim` (see engine/envs/mujoco_state.py),
applies the action and reads the next observation, reward, termination and simulator state.
Restoring is bit-exact, so an oracle step reproduces the real env's step exactly. Targets only,
not differentiable. HalfCheetah, Hopper, Walker2d and InvertedPendulum (v5) step through
`BatchStepper` (engine/models/oracle_batch.py: native MuJoCo stepping, task functions in numpy
over the batch, about the speed of bare `mj_step`, bench/oracle_rollout.py); other envs go
through the env's own `step` one sample at a time (the reference path, `per_sample=True`).
Past a termination it keeps simulating; callers mask with the flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from engine.envs.mujoco_state import get_sim_state, quiet_mujoco_warnings, set_sim_state, sim_state_size
from engine.models.dynamics_base import ModelState, Transitions
from engine.models.oracle_batch import BatchStepper
from engine.models.training import rollout_by_steps


@dataclass(frozen=True)
class OracleConfig:
    """How the oracle builds its private env."""

    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for gym.make; must match the env the states came from."""
    dtype: str = "float32"
    """dtype of the observation/reward tensors it returns ("float64" keeps them exact)."""


class OracleDynamics:
    """True dynamics of a MuJoCo env; `step` needs `state.sim` (batch, sim_state_size)."""

    differentiable = False

    def __init__(self, env_id: str, obs_dim: int | None = None, config: OracleConfig | None = None) -> None:
        self.config = config or OracleConfig()
        self.env_id = env_id
        quiet_mujoco_warnings()
        kwargs = dict(self.config.env_kwargs)
        env = gym.make(env_id, **kwargs).unwrapped
        n_obs = env.observation_space.shape[0]
        if obs_dim is not None and n_obs != obs_dim and n_obs + 1 == obs_dim \
                and "exclude_current_positions_from_observation" not in kwargs:
            # the caller's observations include x (fully observable variant, e.g. HalfCheetah)
            env.close()
            kwargs["exclude_current_positions_from_observation"] = False
            env = gym.make(env_id, **kwargs).unwrapped
            n_obs = env.observation_space.shape[0]
        if obs_dim is not None and n_obs != obs_dim:
            raise ValueError(f"{env_id} with {kwargs} gives {n_obs}-dim observations, expected {obs_dim}")
        self.env_kwargs = kwargs
        self._env = env
        self._env.reset(seed=0)  # initialises internal buffers; every step restores its own state
        self.obs_dim = n_obs
        self.sim_dim = sim_state_size(env)
        self._dtype = getattr(torch, self.config.dtype)
        self._batch = BatchStepper(env) if BatchStepper.supports(env) else None

    def fit(self, data: Transitions) -> dict[str, float]:
        """Nothing to learn."""
        return {}

    def step_numpy(self, sim: np.ndarray, action: np.ndarray, *, per_sample: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """sim (batch, S), action (batch, act_dim) -> next_obs (batch, obs_dim), reward (batch,),
        terminated (batch,) bool, next_sim (batch, sim_dim); all float64 except the flag.
        `per_sample` forces the reference path (the env's own `step` per sample)."""
        sim = np.asarray(sim, dtype=np.float64)
        # in the action space's dtype (float32), as real steps get them: the envs compute the
        # control cost in that dtype, so float64 actions would shift rewards by ~1e-8
        action = np.asarray(action, dtype=self._env.action_space.dtype)
        if sim.ndim != 2 or action.ndim != 2 or len(sim) != len(action):
            raise ValueError(f"need sim (batch, S) and action (batch, act_dim), got {sim.shape}, {action.shape}")
        if self._batch is not None and not per_sample:
            return self._batch.step(sim, action)
        n = len(sim)
        next_obs = np.empty((n, self.obs_dim))
        reward, terminated = np.empty(n), np.empty(n, dtype=bool)
        next_sim = np.empty((n, self.sim_dim))
        for i in range(n):
            set_sim_state(self._env, sim[i])
            next_obs[i], reward[i], terminated[i], _, _ = self._env.step(action[i])
            next_sim[i] = get_sim_state(self._env)
        return next_obs, reward, terminated, next_sim

    def step_with_reward(self, state: ModelState, action: Tensor) -> tuple[ModelState, Tensor, Tensor]:
        """Next state, reward (batch,) and termination (batch,) as 0/1 floats."""
        if state.sim is None:
            raise ValueError("oracle dynamics need ModelState.sim (the simulator state)")
        a = action.detach().cpu().numpy()
        next_obs, reward, terminated, next_sim = self.step_numpy(state.sim, a)
        like = {"dtype": self._dtype, "device": action.device}
        return (
            ModelState(obs=torch.as_tensor(next_obs, **like), sim=next_sim),
            torch.as_tensor(reward, **like),
            torch.as_tensor(terminated, **like),
        )

    def step(self, state: ModelState, action: Tensor) -> ModelState:
        return self.step_with_reward(state, action)[0]

    def rollout(self, state: ModelState, actions: Tensor) -> Tensor:
        return rollout_by_steps(self.step, state, actions)

    def close(self) -> None:
        self._env.close()
