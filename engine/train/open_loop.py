"""Study 1 measurement: open-loop model error vs horizon from real start states.

From a start t, the model is rolled with the recorded actions a_t .. a_{t+H-1}; prediction h is
compared with the real s_{t+h} = next_obs[t+h-1]. A start is valid only if its whole window lies
in one episode with no termination before its last step, so no rollout crosses an episode end.
For an ensemble the elites' disagreement at each step is kept beside the error (a calibration
view: does the spread predict the error?). The predicted trajectory itself is kept too (the
rollout viewer draws it against the replay's true one), with the elites' spread per dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from engine.models.dynamics_base import Dynamics, ModelState
from engine.models.ensemble import GaussianEnsemble, SpreadTracking
from engine.train.replay import Replay
from engine.train.branched import time_in_episode


def window_starts(episode: np.ndarray, terminated: np.ndarray, horizon: int, rows: np.ndarray | None = None,
                  lo: int = 0) -> np.ndarray:
    """Row indices t >= lo whose window t .. t+horizon-1 lies in one episode, with no termination
    before its last step, and (if `rows` (n,) bool is given) only on rows where `rows` is True."""
    n = len(episode) - horizon + 1
    if n <= lo:
        return np.zeros(0, np.int64)
    t = np.arange(lo, n)
    ok = episode[t + horizon - 1] == episode[t]
    # a termination inside the window (before its last step) would end the episode early
    term_cum = np.concatenate([[0], np.cumsum(terminated)])
    ok &= (term_cum[t + horizon - 1] - term_cum[t]) == 0
    if rows is not None:
        outside = np.concatenate([[0], np.cumsum(~rows)])
        ok &= (outside[t + horizon] - outside[t]) == 0
    return t[ok]


def valid_starts(replay: Replay, horizon: int, lo: int = 0, holdout_only: bool = False) -> np.ndarray:
    """Indices t >= lo whose window t .. t+horizon-1 stays in one episode (and in holdout)."""
    n = replay.size
    rows = replay.holdout[:n] if holdout_only else None
    return window_starts(replay.episode[:n], replay.terminated[:n], horizon, rows, lo)


def choose(candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` starts spread evenly over the candidates' age (random within strata); -1 pads."""
    out = np.full(n, -1, np.int64)
    if len(candidates) == 0:
        return out
    if len(candidates) <= n:
        out[: len(candidates)] = candidates
        return out
    edges = np.linspace(0, len(candidates), n + 1).astype(int)
    picks = [rng.integers(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return candidates[np.array(picks)]


class _DimSpread(SpreadTracking):
    """`SpreadTracking` keeping each step's per-dimension spread (batch, obs_dim), not its L2 norm,
    so the trajectory's band per dimension and `disagreement` (its norm) come from one rollout."""

    @staticmethod
    def reduce(spread: torch.Tensor) -> torch.Tensor:
        return spread  # (batch, obs_dim)


@dataclass(frozen=True)
class OpenLoop:
    """Study 1 arrays for one split, named as the `model_error` variables; NaN rows where the
    start is -1 (padding)."""

    error: np.ndarray
    """(start, horizon) L2 norm of predicted minus true observation."""
    error_normalized: np.ndarray
    """(start, horizon) the same after dividing each dimension by its standard deviation."""
    disagreement: np.ndarray
    """(start, horizon) ensemble disagreement at each step of the rollout (the elites' spread of
    predicted means from the state the rollout reached; L2 norm of `prediction_spread`); NaN for
    other models."""
    prediction: np.ndarray
    """(start, horizon, obs_dim) the predicted observations the error measures."""
    prediction_spread: np.ndarray
    """(start, horizon, obs_dim) the elites' std of predicted means per dimension; NaN for other
    models."""

    @classmethod
    def empty(cls, starts: int, horizon: int, obs_dim: int) -> OpenLoop:
        """All NaN: no model yet, or no valid start."""
        nan = lambda *shape: np.full(shape, np.nan, np.float32)  # noqa: E731
        return cls(nan(starts, horizon), nan(starts, horizon), nan(starts, horizon),
                   nan(starts, horizon, obs_dim), nan(starts, horizon, obs_dim))


def snapshot_record(splits: list[OpenLoop], starts: np.ndarray) -> dict[str, np.ndarray]:
    """One snapshot's `model_error` arrays: every `OpenLoop` field stacked over the splits
    (split, start, ...), and `start_step` = `starts` (split, start)."""
    out = {f.name: np.stack([getattr(r, f.name) for r in splits]) for f in fields(OpenLoop)}
    return {**out, "start_step": starts}


def open_loop(model: Dynamics, replay: Replay, starts: np.ndarray, horizon: int, obs_std: np.ndarray) -> OpenLoop:
    """Roll `model` open loop from every start with the recorded actions and compare."""
    out = OpenLoop.empty(len(starts), horizon, replay.obs.shape[1])
    ok = starts >= 0
    if not ok.any():
        return out
    t = starts[ok]
    window = t[:, None] + np.arange(horizon)[None, :]  # (start, horizon) replay rows
    sim = replay.sim_state[t] if replay.sim_state.shape[1] else None
    # a time-varying model (linear-tv) starts at each start's time step within its episode
    time = torch.as_tensor(time_in_episode(replay, t)) if getattr(model, "time_indexed", False) else None
    state = ModelState(torch.as_tensor(replay.obs[t]), sim, time)
    tracker = _DimSpread(model) if isinstance(model, GaussianEnsemble) and len(model.elites) > 1 else None
    with torch.no_grad():
        pred = (tracker or model).rollout(state, torch.as_tensor(replay.action[window])).numpy()  # (start, H, obs)
    true = replay.next_obs[window]  # (start, H, obs)
    diff = pred - true
    out.error[ok] = np.linalg.norm(diff, axis=-1)
    out.error_normalized[ok] = np.linalg.norm(diff / np.maximum(obs_std, 1e-8), axis=-1)
    out.prediction[ok] = pred
    if tracker is not None:
        spread = torch.stack(tracker.take(), dim=1)  # (start, H, obs)
        out.prediction_spread[ok] = spread.numpy()
        out.disagreement[ok] = spread.norm(dim=-1).numpy()
    return out


def open_loop_errors(
    model: Dynamics, replay: Replay, starts: np.ndarray, horizon: int, obs_std: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """L2 error and per-dimension-standardised L2 error, each (len(starts), horizon); NaN rows
    where the start is -1 (padding)."""
    result = open_loop(model, replay, starts, horizon, obs_std)
    return result.error, result.error_normalized
