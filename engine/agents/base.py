"""What every agent offers the training loop, and what a critic-target strategy needs from it.

Agents are small and readable; model use is composed in from outside:

- the training loop calls `act` and `update(batch) -> dict[str, float]` (metric keys become
  variables of the store's `train` group);
- a `CriticTargets` strategy (1-step, or MVE H-step with/without TD-k) turns a real batch into
  (obs, action, target) triples using the agent's *target* networks through `target_action` and
  `target_value`; the agent regresses its critic on them;
- recorders read the critic through `q_value` (Study 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """A batch of real transitions (tensors on the agent's device, float32)."""

    obs: Tensor
    """(batch, obs_dim)"""
    action: Tensor
    """(batch, act_dim), in the env's action units"""
    reward: Tensor
    """(batch,)"""
    next_obs: Tensor
    """(batch, obs_dim)"""
    terminated: Tensor
    """(batch,) 1.0 where the episode truly ended (no bootstrap); time-limit cuts are 0.0"""
    sim_state: np.ndarray | None = None
    """(batch, nq + nv) simulator state of next_obs, for oracle dynamics; None otherwise"""


@dataclass(frozen=True)
class CriticData:
    """What the critic regresses on: Q(obs, action) -> target (no gradient through target)."""

    obs: Tensor
    """(n, obs_dim)"""
    action: Tensor
    """(n, act_dim)"""
    target: Tensor
    """(n,)"""


class TargetSource(Protocol):
    """The parts of an agent a critic-target strategy uses."""

    gamma: float

    def target_action(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Action of the target policy at `obs` and its entropy-bonus term (zeros if none):
        SAC returns (a ~ pi(.|s), -alpha * log pi(a|s)); DDPG returns (mu'(s), 0)."""
        ...

    def target_value(self, obs: Tensor) -> Tensor:
        """Soft/hard state value from the target networks: V'(s) = Q'(s, a') + bonus, (batch,)."""
        ...


class CriticTargets(Protocol):
    """Builds the critic's regression data from a real batch (1-step or MVE)."""

    def __call__(self, batch: Batch, agent: TargetSource) -> CriticData: ...


def one_step_targets(batch: Batch, agent: TargetSource) -> CriticData:
    """The usual TD(0) target r + gamma (1 - terminated) V'(s')."""
    with torch.no_grad():
        y = batch.reward + agent.gamma * (1.0 - batch.terminated) * agent.target_value(batch.next_obs)
    return CriticData(batch.obs, batch.action, y)


class Agent(TargetSource, Protocol):
    """An actor-critic (or NAF) learner."""

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action for one observation (obs_dim,) -> (act_dim,), in env units; exploration
        noise unless `deterministic` (the mean/deterministic action used for evaluation)."""
        ...

    def q_value(self, obs: Tensor, action: Tensor) -> Tensor:
        """The critic's estimate Q(s, a), (batch,) (the minimum of twin critics for SAC)."""
        ...

    def reset(self) -> None:
        """Called when a training episode starts (restarts temporally correlated noise)."""
        ...

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient update of critic (via the agent's CriticTargets), actor, temperature
        and target networks; returns scalar metrics (losses, alpha, q mean, ...)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers and counters, for checkpoints (torch tensors only)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        ...
