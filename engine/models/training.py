"""What the learned models share: fit settings, the holdout split, early stopping, rollouts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from engine.models.dynamics_base import ModelState, Transitions


@dataclass(frozen=True)
class FitConfig:
    """How a learned model is fitted: Adam on minibatches, early stopping on a holdout split."""

    lr: float = 1e-3
    """Adam learning rate (MVE sec. 5 and SVG table 3: 1e-3; MBPO's code: 1e-3)."""
    batch_size: int = 256
    """Minibatch size (MBPO's code: 256; MVE: 512; SVG multi-step batches: 1024)."""
    max_epochs: int = 200
    """Upper bound on passes over the training split in one `fit` call."""
    patience: int = 5
    """Stop after this many epochs without holdout improvement (MBPO's max_epochs_since_update)."""
    min_improvement: float = 0.01
    """Relative holdout improvement that counts as one (MBPO's code: 1%)."""
    holdout_ratio: float = 0.2
    """Fraction of the data held out for early stopping (MBPO's code: 0.2)."""
    max_holdout: int = 5000
    """Cap on the number of held-out rows (MBPO's code: 5000)."""
    weight_decay: float = 0.0
    """L2 penalty: Adam's weight_decay, or on weights only in the ensemble as in MBPO's code
    (2.5e-5..1e-4 rising with depth there; 0 for MVE/SVG)."""
    max_updates: int | None = None
    """Cap on minibatch updates of a refit, i.e. a fit of weights already fitted once (the first
    fit runs to early stopping; a cut epoch is still judged on the holdout); None: no cap.
    Refits continue from the current weights, so a capped one costs the same however large the
    data has grown. Read by `fit_early_stopping` (MLP, GRU, reward models), not the ensemble."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.holdout_ratio < 1.0 or self.batch_size < 1 or self.max_epochs < 0:
            raise ValueError("need 0 <= holdout_ratio < 1, batch_size >= 1, max_epochs >= 0")
        if self.max_updates is not None and self.max_updates < 1:
            raise ValueError("max_updates must be >= 1 (or None for no cap)")


def check_transitions(data: Transitions) -> int:
    """Number of rows, after checking that every array has it."""
    n = len(data.obs)
    for name in ("action", "reward", "next_obs", "terminated", "episode"):
        if len(getattr(data, name)) != n:
            raise ValueError(f"Transitions.{name} has {len(getattr(data, name))} rows, obs has {n}")
    if n == 0:
        raise ValueError("cannot fit a model on empty data")
    return n


def episode_positions(episode: np.ndarray) -> np.ndarray:
    """(n,) index of each row within its run of equal consecutive episode ids."""
    episode = np.asarray(episode)
    starts = np.r_[True, episode[1:] != episode[:-1]]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(episode)), 0))
    return np.arange(len(episode)) - run_start


def holdout_mask(episode: np.ndarray, ratio: float, max_holdout: int, block: int,
                 rng: np.random.Generator) -> np.ndarray:
    """(n,) bool: rows held out, chosen as whole aligned blocks of `block` rows of one episode.

    block = 1 is MBPO's random transitions; multi-step models use their window length so that
    no training window overlaps a held-out one (overlap would leak holdout targets).
    """
    n = len(episode)
    pos = episode_positions(episode)
    block_id = np.cumsum(pos % block == 0) - 1
    target = min(int(n * ratio), max_holdout)
    mask = np.zeros(n, dtype=bool)
    if target == 0:
        return mask
    order = rng.permutation(block_id[-1] + 1)
    filled = np.cumsum(np.bincount(block_id)[order])
    k = int(np.searchsorted(filled, target)) + 1
    if filled[k - 1] >= n:  # blocks too coarse: keep at least one block for training
        k -= 1
    chosen = order[:k]
    mask[np.isin(block_id, chosen)] = True
    return mask


def as_float32(x: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def deltas(data: Transitions) -> np.ndarray:
    """(n, obs_dim) next_obs - obs, taken in float64: HalfCheetah's x grows large, its step doesn't."""
    return np.asarray(data.next_obs, dtype=np.float64) - np.asarray(data.obs, dtype=np.float64)


_FITTED = "_fit_early_stopping_done"


def mark_fitted(module: nn.Module) -> None:
    """Declare `module`'s weights fitted (e.g. restored from a checkpoint): its next fit is a
    refit, capped by `FitConfig.max_updates`."""
    setattr(module, _FITTED, True)


def fit_early_stopping(
    module: nn.Module,
    train_loss: Callable[[Tensor], Tensor],
    holdout_loss: Callable[[], float],
    n_train: int,
    cfg: FitConfig,
    gen: torch.Generator,
) -> dict[str, float]:
    """Adam over shuffled minibatches of row indices; keeps the weights best on the holdout.

    `train_loss(idx)` is the loss on training rows `idx`; `holdout_loss()` the metric that
    decides stopping (lower is better). The starting weights compete too, so a refit on new
    data never ends worse on its holdout than the model it started from. A refit (any fit after
    the first, see `mark_fitted`) makes at most `cfg.max_updates` minibatch updates if set.
    """
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    best = holdout_loss()
    best_state = copy.deepcopy(module.state_dict())
    refit = getattr(module, _FITTED, False)
    budget = cfg.max_updates if (refit and cfg.max_updates is not None) else float("inf")
    since, epoch, last, updates = 0, 0, float("nan"), 0
    for epoch in range(1, cfg.max_epochs + 1):
        perm = torch.randperm(n_train, generator=gen)
        total, seen = 0.0, 0
        for i in range(0, n_train, cfg.batch_size):
            if updates >= budget:
                break
            idx = perm[i:i + cfg.batch_size]
            loss = train_loss(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            updates += 1
        last = total / seen
        current = holdout_loss()
        if current < best - cfg.min_improvement * abs(best):
            best, best_state, since = current, copy.deepcopy(module.state_dict()), 0
        else:
            since += 1
            if since > cfg.patience:
                break
        if updates >= budget:
            break
    module.load_state_dict(best_state)
    mark_fitted(module)
    return {"epochs": float(epoch), "train_loss": last, "holdout_loss": best, "updates": float(updates)}


def rollout_by_steps(step: Callable[[ModelState, Tensor], ModelState], state: ModelState,
                     actions: Tensor) -> Tensor:
    """Open loop: actions (batch, H, act_dim) -> observations (batch, H, obs_dim)."""
    out = []
    for t in range(actions.shape[1]):
        state = step(state, actions[:, t])
        out.append(state.obs)
    if not out:
        return state.obs.new_zeros((state.obs.shape[0], 0, state.obs.shape[1]))
    return torch.stack(out, dim=1)


def seeded_init(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module with its own seed, leaving the global torch RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def fit_supervised(
    module: nn.Module,
    predict: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    loss: Callable[[Tensor, Tensor], Tensor],
    held_out: np.ndarray,
    cfg: FitConfig,
    gen: torch.Generator,
) -> dict[str, float]:
    """Fit `predict(x) ~ y` under `loss` on the rows not `held_out`, stopping on the others.

    With no holdout (holdout_ratio = 0) the training rows decide stopping.
    """
    train = torch.as_tensor(np.flatnonzero(~held_out))
    hold = torch.as_tensor(np.flatnonzero(held_out))
    if len(train) == 0:
        raise ValueError("no training rows left after the holdout split")
    judge = hold if len(hold) else train

    def holdout_loss() -> float:
        with torch.no_grad():
            return loss(predict(x[judge]), y[judge]).item()

    metrics = fit_early_stopping(
        module, lambda idx: loss(predict(x[train[idx]]), y[train[idx]]), holdout_loss, len(train), cfg, gen
    )
    return {**metrics, "n_train": float(len(train)), "n_holdout": float(len(hold))}
