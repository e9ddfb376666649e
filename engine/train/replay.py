"""The in-memory replay buffer the learner samples from (the store keeps the durable copy).

Every transition also carries its episode, the behaviour-policy snapshot that collected it, the
simulator states before and after it (for oracle dynamics), and whether it is held out from model
fitting. Holdout is decided per block of consecutive steps (a random fraction of blocks, so it
spreads across the buffer's whole age): an open-loop rollout from a block's start stays on data
the model never saw, which single held-out transitions would not give (Study 1's `holdout`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.agents.base import Batch
from engine.models.dynamics_base import Transitions
from engine.models.training import episode_positions


@dataclass
class Replay:
    """Append-only arrays with a fill pointer; capacity is the run's total step budget."""

    obs: np.ndarray  # (capacity, obs_dim)
    action: np.ndarray  # (capacity, act_dim)
    reward: np.ndarray  # (capacity,)
    next_obs: np.ndarray  # (capacity, obs_dim)
    terminated: np.ndarray  # (capacity,) bool
    truncated: np.ndarray  # (capacity,) bool
    episode: np.ndarray  # (capacity,) int64
    policy_version: np.ndarray  # (capacity,) int64
    holdout: np.ndarray  # (capacity,) bool
    sim_state: np.ndarray  # (capacity, sim_dim) float64; sim_dim 0 without a simulator
    next_sim_state: np.ndarray  # (capacity, sim_dim)
    size: int = 0

    @classmethod
    def empty(cls, capacity: int, obs_dim: int, act_dim: int, sim_dim: int) -> Replay:
        """A buffer for `capacity` transitions."""
        f32 = np.float32
        return cls(
            obs=np.zeros((capacity, obs_dim), f32), action=np.zeros((capacity, act_dim), f32),
            reward=np.zeros(capacity, f32), next_obs=np.zeros((capacity, obs_dim), f32),
            terminated=np.zeros(capacity, bool), truncated=np.zeros(capacity, bool),
            episode=np.zeros(capacity, np.int64), policy_version=np.zeros(capacity, np.int64),
            holdout=np.zeros(capacity, bool), sim_state=np.zeros((capacity, sim_dim)),
            next_sim_state=np.zeros((capacity, sim_dim)),
        )

    def add(self, **row: object) -> None:
        """Append one transition (keyword per field)."""
        i = self.size
        for name, value in row.items():
            getattr(self, name)[i] = value
        self.size += 1

    def fields(self) -> dict[str, np.ndarray]:
        """Views of the filled part of every field."""
        n = self.size
        return {name: getattr(self, name)[:n] for name in self.__dataclass_fields__ if name != "size"}

    def load(self, fields: dict[str, np.ndarray]) -> None:
        """Refill from stored arrays (resume): the store is the source of truth."""
        n = len(fields["obs"])
        for name, values in fields.items():
            getattr(self, name)[:n] = values
        self.size = n

    def sample(self, batch_size: int, rng: np.random.Generator, with_sim: bool = False) -> Batch:
        """A uniform batch of real transitions (holdout ones included: only the model skips them)."""
        idx = rng.integers(0, self.size, batch_size)
        # `take` + `from_numpy`: 45 us per batch instead of 115 for fancy indexing + `as_tensor`
        t = lambda x: torch.from_numpy(x.take(idx, axis=0))  # noqa: E731
        return Batch(
            obs=t(self.obs), action=t(self.action), reward=t(self.reward), next_obs=t(self.next_obs),
            terminated=torch.from_numpy(self.terminated.take(idx).astype(np.float32)),
            sim_state=self.next_sim_state[idx] if with_sim else None,
        )

    def model_data(self) -> Transitions:
        """Transitions the dynamics model may fit (holdout excluded).

        `episode` is returned as a segment id that also changes across removed holdout blocks,
        so multi-step models never treat the rows around a gap as consecutive; `step` is each
        row's time step within its real episode (time-varying models index by it).
        """
        f = self.fields()
        keep = ~f["holdout"]
        boundary = np.ones(self.size, bool)
        boundary[1:] = (f["episode"][1:] != f["episode"][:-1]) | (keep[1:] != keep[:-1])
        segment = np.cumsum(boundary) - 1
        return Transitions(
            obs=f["obs"][keep], action=f["action"][keep], reward=f["reward"][keep],
            next_obs=f["next_obs"][keep], terminated=f["terminated"][keep], episode=segment[keep],
            step=episode_positions(f["episode"])[keep],
        )
