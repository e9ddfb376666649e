"""Learned reward and termination models (SAC-SVG sec. 4.2, eqs. 12-13).

Both are small MLPs on standardised transition features; which features is a choice:
SVG conditions on (s, a); the MuJoCo tasks' rewards are functions of (s, a, s') and their
terminations of s', so those are the defaults. The reward model regresses the standardised
reward (eq. 12); the termination model outputs a logit trained with the Bernoulli NLL (eq. 13)
on true terminations only (time-limit cuts are not terminations in `Transitions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.dynamics_base import Transitions
from engine.models.mlp import mlp
from engine.models.normalizer import Normalizer
from engine.models.training import FitConfig, as_float32, check_transitions, fit_supervised, holdout_mask, seeded_init

INPUTS = ("obs_action", "next_obs", "all")


@dataclass(frozen=True)
class TransitionModelConfig:
    """A reward or termination MLP (SVG table 3: 2 hidden layers of 512, lr 1e-3)."""

    inputs: str = "all"
    """Features: "obs_action" (SVG eqs. 12-13), "next_obs", or "all" = (s, a, s')."""
    hidden: int = 128
    """Width of each hidden layer (SVG: 512)."""
    layers: int = 2
    """Hidden layers (SVG: 2)."""
    activation: str = "relu"
    """Hidden activation."""
    fit: FitConfig = field(default_factory=FitConfig)
    """Adam, minibatches and early stopping."""
    seed: int = 0
    """Seeds the initial weights, the holdout split and the minibatch order."""

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, not {self.inputs!r}")


class _TransitionMLP(nn.Module):
    """Shared plumbing: feature selection, input standardisation, holdout fitting."""

    def __init__(self, obs_dim: int, act_dim: int, config: TransitionModelConfig) -> None:
        super().__init__()
        self.config = c = config
        n_in = {"obs_action": obs_dim + act_dim, "next_obs": obs_dim, "all": 2 * obs_dim + act_dim}[c.inputs]
        self.net = seeded_init(c.seed, lambda: mlp(n_in, 1, c.hidden, c.layers, c.activation))
        self.in_norm = Normalizer(n_in)
        self._gen = torch.Generator().manual_seed(c.seed)
        self._rng = np.random.default_rng(c.seed)
        # (n,) bool over the rows of the last fit's data: never trained on (holdout starts)
        self.held_out: np.ndarray | None = None

    def _features(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        parts = {"obs_action": [obs, action], "next_obs": [next_obs], "all": [obs, action, next_obs]}
        return torch.cat(parts[self.config.inputs], dim=-1)

    def _raw(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """(batch,) network output on standardised features."""
        return self.net(self.in_norm.normalize(self._features(obs, action, next_obs))).squeeze(-1)

    def _fit(self, data: Transitions, target: np.ndarray, loss_kind: str) -> dict[str, float]:
        check_transitions(data)
        c = self.config.fit
        held = holdout_mask(data.episode, c.holdout_ratio, c.max_holdout, 1, self._rng)
        self.held_out = held
        feats = self._features(*(torch.as_tensor(np.asarray(a, np.float64))
                                 for a in (data.obs, data.action, data.next_obs)))
        self.in_norm.fit(feats[torch.as_tensor(~held)])
        X = self.in_norm.normalize(as_float32(feats.numpy()))
        y = as_float32(target)
        loss = F.mse_loss if loss_kind == "mse" else F.binary_cross_entropy_with_logits
        return fit_supervised(self, lambda x: self.net(x).squeeze(-1), X, y, loss, held, c, self._gen)


class RewardModel(_TransitionMLP):
    """r(s, a, s') regressed with squared error (SVG eq. 12); call it like a known reward."""

    def __init__(self, obs_dim: int, act_dim: int, config: TransitionModelConfig | None = None) -> None:
        super().__init__(obs_dim, act_dim, config or TransitionModelConfig())
        self.out_norm = Normalizer(1)

    def forward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """(batch,) predicted reward."""
        return self.out_norm.denormalize(self._raw(obs, action, next_obs).unsqueeze(-1)).squeeze(-1)

    def fit(self, data: Transitions) -> dict[str, float]:
        """Standardise rewards on all rows (a scale only), then fit; losses are standardised MSE."""
        r = np.asarray(data.reward, np.float64).reshape(-1, 1)
        self.out_norm.fit(r)
        return self._fit(data, ((r - self.out_norm.mean.item()) / self.out_norm.std.item())[:, 0], "mse")


class TerminationModel(_TransitionMLP):
    """Probability that a transition ends the episode, as a logit (SVG eq. 13)."""

    def __init__(self, obs_dim: int, act_dim: int, config: TransitionModelConfig | None = None) -> None:
        super().__init__(obs_dim, act_dim, config or TransitionModelConfig(inputs="next_obs"))

    def logit(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """(batch,) log-odds of termination."""
        return self._raw(obs, action, next_obs)

    def forward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """(batch,) termination probability in [0, 1]."""
        return torch.sigmoid(self.logit(obs, action, next_obs))

    def fit(self, data: Transitions) -> dict[str, float]:
        """Bernoulli NLL on the terminated flags; losses are mean BCE (nats)."""
        return self._fit(data, np.asarray(data.terminated, np.float64), "bce")
