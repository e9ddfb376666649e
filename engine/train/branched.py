"""MBPO's model usage (Janner et al. 2019, Alg. 2 and appendix C): branched k-step rollouts.

After every model fit, `rollout_batch_size` states are drawn uniformly from the real replay and
rolled k steps through the model with the current (stochastic) policy; every imagined transition
goes into a FIFO model buffer. A branch stops after the step at which the termination function
(the env's known one, a learned one thresholded at 0.5, or the simulator's with the oracle)
predicts the end; that terminal transition is kept, with its flag. k follows MBPO's schedule
[min_epoch, max_epoch, min_length, max_length], linear in epochs of `epoch_length` env steps;
the buffer holds `retain_epochs` epochs of rollouts: capacity = retain_epochs x k x
rollout_batch_size x epoch_length / fit_interval, as in MBPO's code (`_reallocate_model_pool`).
SAC's batches mix `real_ratio` real transitions with model ones (all real while the buffer is
empty). With a probabilistic ensemble each imagined step draws a random elite per sample and a
Gaussian sample from it (`step_mode` "sample"), and the spread of the elites' means is kept as
the rollout's ensemble disagreement.

NAF's imagination rollouts (Gu et al. 2016, Alg. 2) are the same machinery with three options:
branches start from the states of the newest `start_episodes` episodes (`starts` "latest", the
batch B_old the local model was fitted on) instead of the whole replay; a time-indexed model
(engine/models/linear_tv.py, `time_indexed`) gets each start's time step within its episode and
a branch stops before stepping past the model's last fitted step (`horizon`); and after
`stop_after_episodes` completed episodes no rollouts are made and batches are all real (NAF sec.
5.2: imagination helps early and can hurt later), the model buffer left as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from engine.agents.base import Batch
from engine.models.dynamics_base import ModelState
from engine.models.ensemble import SpreadTracking
from engine.train.mve import Imagination
from engine.train.replay import Replay

#: MBPO appendix C rollout schedules [min_epoch, max_epoch, min_length, max_length] (k = 1 on
#: InvertedPendulum, Walker2d, HalfCheetah; Hopper 1 -> 15 over epochs 20 -> 100, Ant 1 -> 25
#: over 20 -> 100, Humanoid 1 -> 25 over 20 -> 300). MBPO's code configs use 150 for Hopper.
MBPO_SCHEDULES: dict[str, tuple[int, int, int, int]] = {
    "InvertedPendulum-v5": (1, 15, 1, 1), "Hopper-v5": (20, 100, 1, 15), "Walker2d-v5": (20, 150, 1, 1),
    "HalfCheetah-v5": (20, 150, 1, 1), "Ant-v5": (20, 100, 1, 25), "Humanoid-v5": (20, 300, 1, 25),
}
DEFAULT_SCHEDULE = (20, 100, 1, 1)  # MBPO's code default: k = 1 throughout
DONE_THRESHOLD = 0.5  # a learned termination probability above this ends a branch
STARTS = ("replay", "latest")


@dataclass(frozen=True)
class RolloutConfig:
    """Branched rollouts and the real/model mix (MBPO appendix C and its code's task configs)."""

    rollout_batch_size: int = 100_000
    """Branches started at every model fit (MBPO's code: 100k every 250 steps, i.e. M = 400
    rollouts per env step as in appendix C)."""
    schedule: tuple[int, int, int, int] | None = None
    """[min_epoch, max_epoch, min_length, max_length] of the rollout length k; None: the MBPO
    appendix C value for the env (MBPO_SCHEDULES), else k = 1 throughout."""
    epoch_length: int = 1000
    """Environment steps per epoch of the schedule and the buffer capacity (MBPO: E = 1000)."""
    retain_epochs: int = 1
    """Epochs of rollouts the model buffer keeps (MBPO's code: model_retain_epochs = 1)."""
    real_ratio: float = 0.05
    """Fraction of real transitions in each SAC batch (MBPO: 0.05)."""
    chunk: int = 10_000
    """Branches imagined at once (memory: the ensemble's activations are members x chunk x width)."""
    starts: str = "replay"
    """Where branches start: "replay" (uniform over the whole replay, MBPO) or "latest" (the
    states of the newest `start_episodes` episodes, NAF Alg. 2's B_old)."""
    start_episodes: int = 5
    """Episodes the "latest" starts come from (NAF sec. 5.3: batches of n = 5 episodes)."""
    stop_after_episodes: int | None = None
    """No rollouts, and all-real batches, once this many episodes are complete (NAF sec. 6.3:
    130 on the gripper); None: never stop."""

    def __post_init__(self) -> None:
        if self.schedule is not None:
            object.__setattr__(self, "schedule", tuple(int(v) for v in self.schedule))
            lo_e, hi_e, lo_k, hi_k = self.schedule  # a wrong length fails here, by name
            if not (0 <= lo_e < hi_e and 1 <= lo_k and 1 <= hi_k):
                raise ValueError("schedule needs 0 <= min_epoch < max_epoch and lengths >= 1")
        if min(self.rollout_batch_size, self.epoch_length, self.retain_epochs, self.chunk) < 1:
            raise ValueError("rollout_batch_size, epoch_length, retain_epochs and chunk must be >= 1")
        if not 0.0 <= self.real_ratio <= 1.0:
            raise ValueError("real_ratio must be in [0, 1]")
        if self.starts not in STARTS:
            raise ValueError(f"starts must be one of {STARTS}, not {self.starts!r}")
        if self.start_episodes < 1 or (self.stop_after_episodes is not None and self.stop_after_episodes < 0):
            raise ValueError("start_episodes must be >= 1 and stop_after_episodes >= 0 (or None)")

    def for_env(self, env_id: str) -> RolloutConfig:
        """This config with `schedule` resolved (the env's MBPO value if it was None)."""
        if self.schedule is not None:
            return self
        return replace(self, schedule=MBPO_SCHEDULES.get(env_id, DEFAULT_SCHEDULE))

    def length(self, env_step: int) -> int:
        """k at `env_step` (MBPO's `_set_rollout_length`; epoch = env_step // epoch_length)."""
        min_epoch, max_epoch, min_length, max_length = self.schedule or DEFAULT_SCHEDULE
        epoch = env_step // self.epoch_length
        frac = 0.0 if epoch <= min_epoch else min((epoch - min_epoch) / (max_epoch - min_epoch), 1.0)
        return int(frac * (max_length - min_length) + min_length)

    def active(self, replay: Replay) -> bool:
        """Whether imagination is still on: fewer than `stop_after_episodes` complete episodes."""
        return self.stop_after_episodes is None or completed_episodes(replay) < self.stop_after_episodes

    def capacity(self, length: int, fit_interval: int) -> int:
        """Model buffer size for rollout length k (MBPO's `_reallocate_model_pool`)."""
        rollouts_per_epoch = self.rollout_batch_size * self.epoch_length / fit_interval
        return self.retain_epochs * int(length * rollouts_per_epoch)


class ModelBuffer:
    """FIFO ring of imagined transitions; resizing keeps the newest ones."""

    FIELDS = ("obs", "action", "reward", "next_obs", "terminated")

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 0) -> None:
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        f32 = np.float32
        self.capacity, self.size, self.ptr = capacity, 0, 0
        self.obs = np.zeros((capacity, self.obs_dim), f32)  # (capacity, obs_dim)
        self.action = np.zeros((capacity, self.act_dim), f32)  # (capacity, act_dim)
        self.reward = np.zeros(capacity, f32)
        self.next_obs = np.zeros((capacity, self.obs_dim), f32)
        self.terminated = np.zeros(capacity, f32)  # 0/1, as Batch.terminated

    def ordered(self) -> dict[str, np.ndarray]:
        """Every stored field, oldest row first."""
        idx = (self.ptr - self.size + np.arange(self.size)) % max(self.capacity, 1)
        return {name: getattr(self, name)[idx] for name in self.FIELDS}

    def resize(self, capacity: int) -> None:
        """New capacity, keeping the newest min(size, capacity) rows."""
        if capacity == self.capacity:
            return
        rows = self.ordered()
        self._alloc(capacity)
        self.add(**rows)

    def add(self, **rows: np.ndarray) -> None:
        """Append rows (leading axis); the oldest are overwritten once full."""
        n = len(rows["obs"])
        if self.capacity == 0 or n == 0:
            return
        skip = max(0, n - self.capacity)  # more rows than room: only the last `capacity` stay
        idx = (self.ptr + np.arange(skip, n)) % self.capacity
        for name in self.FIELDS:
            getattr(self, name)[idx] = rows[name][skip:]
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """`n` rows drawn uniformly with replacement."""
        idx = rng.integers(0, self.size, n)
        return {name: getattr(self, name)[idx] for name in self.FIELDS}

    def state_dict(self) -> dict[str, Any]:
        """Capacity, write position and the rows, oldest first (tensors, for checkpoints)."""
        return {"capacity": self.capacity, "ptr": self.ptr,
                **{k: torch.as_tensor(v) for k, v in self.ordered().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned, each row at its old slot: `sample` draws slots, so
        the same generator state then draws the same rows as the uninterrupted run."""
        self._alloc(int(state["capacity"]))
        n = len(state["obs"])
        if self.capacity:  # `add` from the slot that puts the newest row just before the saved `ptr`
            # (checkpoints before 2026-11-22 have no ptr: rows from slot 0)
            self.ptr = (int(state.get("ptr", n % self.capacity)) - n) % self.capacity
        self.add(**{k: state[k].numpy() for k in self.FIELDS})


def mixed_batch(replay: Replay, buffer: ModelBuffer, batch_size: int, real_ratio: float,
                rng: np.random.Generator) -> Batch:
    """int(batch_size x real_ratio) real rows then the rest from the model buffer (MBPO's
    `_get_training_batch`); all real while the buffer is empty."""
    n_model = batch_size - int(batch_size * real_ratio) if buffer.size else 0
    real = replay.sample(batch_size - n_model, rng)
    if n_model == 0:
        return real
    m = {k: torch.as_tensor(v) for k, v in buffer.sample(n_model, rng).items()}
    cat = lambda name: torch.cat([getattr(real, name), m[name]])  # noqa: E731
    return Batch(obs=cat("obs"), action=cat("action"), reward=cat("reward"), next_obs=cat("next_obs"),
                 terminated=cat("terminated"))


class BranchedRollouts:
    """Fills a model buffer with k-step branches from real states and mixes the agent's batches."""

    def __init__(self, config: RolloutConfig, imagination: Imagination, obs_dim: int, act_dim: int,
                 fit_interval: int, spread: SpreadTracking | None = None) -> None:
        self.config, self.imagination, self.spread = config, imagination, spread
        self.fit_interval = fit_interval
        dynamics = getattr(imagination, "dynamics", None)  # a ModelImagination's model
        self.timed = dynamics if getattr(dynamics, "time_indexed", False) else None
        self.is_active = True  # imagination on (False once `stop_after_episodes` are complete)
        self.buffer = ModelBuffer(obs_dim, act_dim)
        self.length = 0  # k of the latest rollout (0: none yet)
        self.mean_length = math.nan  # imagined steps per branch in the latest rollout
        self.disagreement = math.nan  # ensemble disagreement over the latest rollout

    def rollout(self, replay: Replay, agent: Any, env_step: int, rng: np.random.Generator) -> None:
        """MBPO Alg. 2 lines 6-8 for a whole fit interval at once (as MBPO's code does)."""
        c = self.config
        self.is_active = c.active(replay)
        if not self.is_active:  # switched off: the buffer stays as it is, unused
            return
        self.length = c.length(env_step)
        self.buffer.resize(c.capacity(self.length, self.fit_interval))
        starts = self._starts(replay, rng)
        with_sim = replay.sim_state.shape[1] > 0
        steps = 0
        for i in range(0, len(starts), c.chunk):
            idx = starts[i:i + c.chunk]
            time = None if self.timed is None else torch.as_tensor(time_in_episode(replay, idx))
            state = ModelState(torch.as_tensor(replay.obs[idx]), replay.sim_state[idx] if with_sim else None, time)
            steps += self._branch(state, agent, self.length)
        self.mean_length = steps / len(starts)
        if self.spread is not None:  # mean over every imagined sample-step of this rollout
            spread = self.spread.take()
            self.disagreement = float(torch.cat(spread).mean()) if spread else math.nan

    def _starts(self, replay: Replay, rng: np.random.Generator) -> np.ndarray:
        """(rollout_batch_size,) replay rows to branch from, uniform over the replay or over the
        newest `start_episodes` episodes (episode ids never decrease along the replay)."""
        c = self.config
        first = 0
        if c.starts == "latest":
            episode = replay.episode[:replay.size]
            first = int(np.searchsorted(episode, episode[-1] - c.start_episodes + 1))
        return rng.integers(first, replay.size, c.rollout_batch_size)

    @torch.no_grad()
    def _branch(self, state: ModelState, agent: Any, k: int) -> int:
        """Roll `state` (batch of branches) up to k steps; returns the sample-steps added."""
        added = 0
        for _ in range(k):
            if self.timed is not None:  # a time-varying model has nothing past its last fitted step
                state = _select(state, state.hidden < self.timed.horizon)
                if len(state.obs) == 0:
                    break
            action = agent.sample(state.obs)[0]  # the current stochastic policy, env units
            nxt, reward, done = self.imagination.step(state, action)
            ended = done > DONE_THRESHOLD  # (batch,)
            self.buffer.add(obs=state.obs.numpy(), action=action.numpy(), reward=reward.float().numpy(),
                            next_obs=nxt.obs.float().numpy(), terminated=ended.float().numpy())
            added += len(ended)
            alive = ~ended
            if not alive.any():
                break
            state = _select(nxt, alive)
        return added

    def _real_ratio(self) -> float:
        return self.config.real_ratio if self.is_active else 1.0

    def batch(self, replay: Replay, batch_size: int, rng: np.random.Generator) -> Batch:
        """The agent's training batch: the real/model mix (all real once imagination is off)."""
        self.is_active = self.config.active(replay)
        return mixed_batch(replay, self.buffer, batch_size, self._real_ratio(), rng)

    def metrics(self, batch_size: int) -> dict[str, float]:
        """Per-update train metrics: buffer size, rollout length, disagreement, model share,
        whether imagination is on."""
        n_model = batch_size - int(batch_size * self._real_ratio()) if self.buffer.size else 0
        return {"model_buffer_size": float(self.buffer.size), "rollout_length": float(self.length),
                "rollout_mean_length": self.mean_length, "ensemble_disagreement": self.disagreement,
                "model_batch_fraction": n_model / batch_size, "imagination_active": float(self.is_active)}

    def state_dict(self) -> dict[str, Any]:
        """The buffer and the latest rollout's metrics (for checkpoints)."""
        return {"buffer": self.buffer.state_dict(), "length": self.length, "mean_length": self.mean_length,
                "disagreement": self.disagreement}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.buffer.load_state_dict(state["buffer"])
        self.length = int(state["length"])
        self.mean_length, self.disagreement = float(state["mean_length"]), float(state["disagreement"])


def completed_episodes(replay: Replay) -> int:
    """Episodes that have ended in the replay (ids count up from 0 along it)."""
    if replay.size == 0:
        return 0
    last = replay.size - 1
    return int(replay.episode[last]) + int(replay.terminated[last] or replay.truncated[last])


def time_in_episode(replay: Replay, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) int64 time step of each replay row within its episode."""
    episode = replay.episode[:replay.size]
    return (rows - np.searchsorted(episode, episode[rows])).astype(np.int64)


def _select(state: ModelState, keep: torch.Tensor) -> ModelState:
    """The rows `keep` (batch,) bool of a model state (observations as float32)."""
    mask = keep.numpy()
    return ModelState(state.obs[keep].float(), None if state.sim is None else state.sim[mask],
                      None if state.hidden is None else state.hidden[keep])
