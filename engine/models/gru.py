"""Deterministic multi-step GRU dynamics (SAC-SVG sec. 4.2, eq. 11).

    z_t = enc([x̂_t, u_t]),  h_{t+1} = GRU(z_t, h_t),  x̂_{t+1} = x̂_t + dec(h_{t+1}),  h_1 = 0

The model is trained on windows of `seq_len` consecutive transitions of one episode: from the
true x_1 it predicts x̂_2..x̂_{k+1} open loop, feeding back its own predictions, and the loss is
the squared error of all of them (eq. 11). A window never crosses an episode end, and no
training window overlaps a held-out one. The recurrent state travels in `ModelState.hidden`
(batch, gru_layers, hidden), so a rollout equals repeated `step`s; as in SVG every imagined
trajectory starts from a real state with h = 0 (a `ModelState` without hidden).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from engine.models.dynamics_base import ModelState, Transitions
from engine.models.mlp import mlp
from engine.models.normalizer import Normalizer
from engine.models.training import (
    FitConfig, as_float32, check_transitions, deltas, episode_positions, fit_early_stopping, holdout_mask,
    rollout_by_steps, seeded_init,
)


@dataclass(frozen=True)
class GRUDynamicsConfig:
    """Multi-step GRU model (SVG table 3 values noted; widths reduced for 2 CPU cores)."""

    seq_len: int = 5
    """Transitions per training window, k in eq. 11 (SVG trains on its expansion horizon)."""
    hidden: int = 128
    """Width of the GRU state and of the encoding z (SVG: 512)."""
    gru_layers: int = 2
    """Stacked GRU layers (SVG: 2)."""
    mlp_hidden: int = 128
    """Width of the encoder and decoder MLPs' hidden layers (SVG: 512)."""
    mlp_layers: int = 2
    """Hidden layers of the encoder and decoder MLPs (SVG: 2)."""
    activation: str = "relu"
    """Hidden activation of the encoder and decoder."""
    fit: FitConfig = field(default_factory=lambda: FitConfig(batch_size=256))
    """Adam and early stopping on windows (SVG: lr 1e-3, 1024 windows per batch)."""
    seed: int = 0
    """Seeds the initial weights, the holdout split and the minibatch order."""

    def __post_init__(self) -> None:
        if self.seq_len < 1:
            raise ValueError("seq_len must be >= 1")


def sequence_starts(episode: np.ndarray, terminated: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
    """Rows s such that s..s+k-1 are consecutive steps of one episode, all `allowed`.

    Rows are one episode's steps while the episode id stays the same; a terminated row ends
    its episode even if the id (wrongly) continues.
    """
    n = len(episode)
    if n < k:
        return np.zeros(0, dtype=np.int64)
    pos = episode_positions(episode)
    run = np.cumsum(pos == 0)
    ok = np.asarray(allowed, bool)
    # run id after a terminated row must change: count terminations into the id
    run = run + np.r_[0, np.cumsum(np.asarray(terminated, bool))[:-1]]
    win_run = np.lib.stride_tricks.sliding_window_view(run, k)
    win_ok = np.lib.stride_tricks.sliding_window_view(ok, k)
    valid = (win_run[:, 0] == win_run[:, -1]) & win_ok.all(axis=1)
    return np.flatnonzero(valid)


class GRUDynamics(nn.Module):
    """Encoder MLP -> stacked GRU -> decoder MLP predicting the standardised delta."""

    differentiable = True

    def __init__(self, obs_dim: int, act_dim: int, config: GRUDynamicsConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or GRUDynamicsConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim

        def build() -> nn.ModuleDict:
            return nn.ModuleDict({
                "enc": mlp(obs_dim + act_dim, c.hidden, c.mlp_hidden, c.mlp_layers, c.activation),
                "gru": nn.GRU(c.hidden, c.hidden, num_layers=c.gru_layers),
                "dec": mlp(c.hidden, obs_dim, c.mlp_hidden, c.mlp_layers, c.activation),
            })

        self.net = seeded_init(c.seed, build)
        self.in_norm = Normalizer(obs_dim + act_dim)
        self.out_norm = Normalizer(obs_dim)
        self._gen = torch.Generator().manual_seed(c.seed)
        self._rng = np.random.default_rng(c.seed)
        # (n,) bool over the rows of the last fit's data: never trained on (holdout starts)
        self.held_out: np.ndarray | None = None

    def step(self, state: ModelState, action: Tensor) -> ModelState:
        batch = state.obs.shape[0]
        if state.hidden is None:
            h = state.obs.new_zeros((self.config.gru_layers, batch, self.config.hidden))
        else:
            h = state.hidden.transpose(0, 1).contiguous()  # GRU wants (layers, batch, hidden)
        z = self.net["enc"](self.in_norm.normalize(torch.cat([state.obs, action], dim=-1)))
        out, h = self.net["gru"](z.unsqueeze(0), h)  # a sequence of length 1
        nxt = state.obs + self.out_norm.denormalize(self.net["dec"](out[0]))
        return ModelState(obs=nxt, hidden=h.transpose(0, 1))

    def rollout(self, state: ModelState, actions: Tensor) -> Tensor:
        return rollout_by_steps(self.step, state, actions)

    def _sequence_loss(self, obs0: Tensor, actions: Tensor, targets: Tensor) -> Tensor:
        """Eq. 11 from obs0 (W, obs_dim), actions (W, k, act_dim), targets (W, k, obs_dim).

        Errors are divided by the one-step delta std so the first term equals the one-step
        models' standardised loss.
        """
        pred = self.rollout(ModelState(obs=obs0), actions)
        return ((pred - targets) / self.out_norm.std).pow(2).mean()

    def fit(self, data: Transitions) -> dict[str, float]:
        """Refit normalisers on the training rows, then train on windows of `seq_len` steps."""
        check_transitions(data)
        c, f = self.config, self.config.fit
        k = c.seq_len
        held = holdout_mask(data.episode, f.holdout_ratio, f.max_holdout, k, self._rng)
        self.held_out = held
        x = np.concatenate([np.asarray(data.obs, np.float64), np.asarray(data.action, np.float64)], axis=1)
        self.in_norm.fit(x[~held])
        self.out_norm.fit(deltas(data)[~held])
        train = sequence_starts(data.episode, data.terminated, k, ~held)
        hold = sequence_starts(data.episode, data.terminated, k, held)
        if len(train) == 0:
            raise ValueError(f"no window of {k} consecutive training steps inside one episode")
        obs, act, nxt = as_float32(data.obs), as_float32(data.action), as_float32(data.next_obs)

        def windows(starts: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
            rows = torch.as_tensor(starts[:, None] + np.arange(k))  # (W, k)
            return obs[rows[:, 0]], act[rows], nxt[rows]

        tr, ho = windows(train), windows(hold if len(hold) else train)

        def holdout_loss() -> float:
            with torch.no_grad():
                return self._sequence_loss(*ho).item()

        metrics = fit_early_stopping(
            self, lambda idx: self._sequence_loss(tr[0][idx], tr[1][idx], tr[2][idx]),
            holdout_loss, len(train), f, self._gen,
        )
        return {**metrics, "n_train_windows": float(len(train)), "n_holdout_windows": float(len(hold))}
