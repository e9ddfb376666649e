"""Deterministic MLP dynamics predicting state differences (MVE sec. 3.2 and 5).

    s' = s + denorm_delta( f( norm_in([s, a]) ) )

Inputs and the regression target (the delta) are standardised with statistics of the training
split, so one learning rate suits every task. The loss is the MSE of standardised deltas.
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
    FitConfig, as_float32, check_transitions, deltas, fit_supervised, holdout_mask, rollout_by_steps,
    seeded_init,
)


@dataclass(frozen=True)
class MLPDynamicsConfig:
    """Deterministic state-delta MLP (MVE): architecture, fitting and seed."""

    hidden: int = 128
    """Width of each hidden layer (MVE sec. 5: 128)."""
    layers: int = 4
    """Hidden layers (MVE sec. 5: 8; 4 trains about twice as fast on 2 CPU cores)."""
    activation: str = "relu"
    """Hidden activation (MVE does not say; ReLU as in its DDPG networks)."""
    fit: FitConfig = field(default_factory=lambda: FitConfig(batch_size=512))
    """Adam, minibatches and early stopping (MVE appendix A: batch 512, lr 1e-3)."""
    seed: int = 0
    """Seeds the initial weights, the holdout split and the minibatch order."""


class MLPDynamics(nn.Module):
    """One deterministic network; `step` is differentiable in obs and action."""

    differentiable = True

    def __init__(self, obs_dim: int, act_dim: int, config: MLPDynamicsConfig | None = None) -> None:
        super().__init__()
        self.config = config or MLPDynamicsConfig()
        c = self.config
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.net = seeded_init(c.seed, lambda: mlp(obs_dim + act_dim, obs_dim, c.hidden, c.layers, c.activation))
        self.in_norm = Normalizer(obs_dim + act_dim)
        self.out_norm = Normalizer(obs_dim)
        self._gen = torch.Generator().manual_seed(c.seed)
        self._rng = np.random.default_rng(c.seed)
        # (n,) bool over the rows of the last fit's data: never trained on (holdout starts)
        self.held_out: np.ndarray | None = None

    def predict_delta(self, obs: Tensor, action: Tensor) -> Tensor:
        """(batch, obs_dim) predicted s' - s in observation units."""
        z = self.net(self.in_norm.normalize(torch.cat([obs, action], dim=-1)))
        return self.out_norm.denormalize(z)

    def step(self, state: ModelState, action: Tensor) -> ModelState:
        return ModelState(obs=state.obs + self.predict_delta(state.obs, action))

    def rollout(self, state: ModelState, actions: Tensor) -> Tensor:
        return rollout_by_steps(self.step, state, actions)

    def fit(self, data: Transitions) -> dict[str, float]:
        """Refit the normalisers on the training split, then continue training the weights."""
        check_transitions(data)
        c = self.config.fit
        held = holdout_mask(data.episode, c.holdout_ratio, c.max_holdout, 1, self._rng)
        self.held_out = held
        x = np.concatenate([np.asarray(data.obs, np.float64), np.asarray(data.action, np.float64)], axis=1)
        d = deltas(data)
        self.in_norm.fit(x[~held])
        self.out_norm.fit(d[~held])
        X = self.in_norm.normalize(as_float32(x))
        Y = self.out_norm.normalize(as_float32(d))
        metrics = fit_supervised(self, self.net, X, Y, nn.functional.mse_loss, held, c, self._gen)
        if held.any():
            with torch.no_grad():
                err = self.out_norm.denormalize(self.net(X[held])) - as_float32(d[held])
            metrics["holdout_mse"] = float(err.pow(2).mean())
        return metrics
