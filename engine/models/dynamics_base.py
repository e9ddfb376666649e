"""The one interface every dynamics model offers: learned (MLP, ensemble, GRU) and oracle.

A model moves a `ModelState` forward. For learned models the state is the observation (plus,
for recurrent models, their hidden state); the oracle also carries the simulator state
(qpos, qvel, ...) because observations of Hopper/Walker2d clip velocities and cannot be turned
back into simulator states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from torch import Tensor


@dataclass(frozen=True)
class ModelState:
    """Where a (batch of) imagined trajectories is."""

    obs: Tensor
    """(batch, obs_dim) observation"""
    sim: np.ndarray | None = None
    """(batch, S) simulator state, qpos then qvel first; only oracle dynamics use it. S is
    nq + 2 nv + na as stored by `engine.envs.mujoco_state.get_sim_state` (bit-exact restore),
    or nq + nv (qpos, qvel only: restores to ~1e-14)"""
    hidden: Tensor | None = None
    """(batch, ...) recurrent state of a learned model (GRU: (batch, layers, width)); None
    starts from the model's initial state"""


@dataclass(frozen=True)
class Transitions:
    """Training data for a model: consecutive real transitions with episode ids."""

    obs: np.ndarray
    """(n, obs_dim)"""
    action: np.ndarray
    """(n, act_dim)"""
    reward: np.ndarray
    """(n,)"""
    next_obs: np.ndarray
    """(n, obs_dim)"""
    terminated: np.ndarray
    """(n,) bool"""
    episode: np.ndarray
    """(n,) int episode index; consecutive rows of one episode are consecutive steps"""
    step: np.ndarray | None = None
    """(n,) int time step of each row within its episode (what time-varying models index by);
    None: the row's position within its run of equal `episode` ids"""


class Dynamics(Protocol):
    """Predicts next observations (and rewards, terminations where it has learned them)."""

    differentiable: bool
    """Whether `step` is differentiable in obs and action (False for the oracle)."""

    def fit(self, data: Transitions) -> dict[str, float]:
        """Fit to `data` (the oracle does nothing); returns metrics such as train/holdout loss."""
        ...

    def step(self, state: ModelState, action: Tensor) -> ModelState:
        """One step from `state` with `action` (batch, act_dim)."""
        ...

    def rollout(self, state: ModelState, actions: Tensor) -> Tensor:
        """Open-loop predictions for actions (batch, H, act_dim) -> observations (batch, H, obs_dim)."""
        ...
