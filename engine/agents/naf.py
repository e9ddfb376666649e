"""Normalized advantage functions (Gu et al., 2016, sec. 4): Q-learning with a quadratic advantage.

Q(s, u) = V(s) + A(s, u),  A(s, u) = -1/2 (u - mu(s))^T P(s) (u - mu(s)),  P = L L^T,
with L lower-triangular and its diagonal exponentiated, so P is positive definite, Q is concave
in u and argmax_u Q = mu(s) in closed form: no actor network. u is the unit-box action
([-1, 1]^d, mu = tanh(.)), so P does not depend on the env's action units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from engine.agents.base import Batch, CriticTargets, one_step_targets
from engine.agents.common import (
    NOISE_KINDS, ActionScale, ExplorationNoise, check_spaces, make_generator, obs_tensor,
    polyak_update, seeded, target_copy,
)
from engine.models.mlp import mlp


@dataclass(frozen=True)
class NAFConfig:
    """NAF hyperparameters; defaults from the NAF paper (sec. 6 and appendix 8.4) unless stated."""

    gamma: float = 0.99
    """Discount factor (Lillicrap et al., whose setup NAF reuses)."""
    hidden: int = 200
    """Hidden width of each head's network (NAF sec. 6: two layers of 200 ReLU units per output)."""
    layers: int = 2
    """Hidden layers of each head's network (NAF sec. 6)."""
    activation: str = "relu"
    """Hidden activation (NAF sec. 6: rectified linear units)."""
    lr: float = 1e-3
    """Adam learning rate (NAF appendix 8.4, the fixed setting; searched over {1e-4, 1e-3, 1e-2})."""
    tau: float = 1e-3
    """Polyak rate of the target network (NAF does not say; Lillicrap et al.'s 0.001)."""
    batch_size: int = 64
    """Minibatch size the training loop should sample (NAF does not say; Lillicrap et al.'s 64)."""
    noise: str = "ou"
    """Exploration noise on mu in unit-box units: "ou" (NAF sec. 8.2) or "gaussian"."""
    noise_sigma: float = 0.3
    """Exploration noise scale (NAF appendix 8.4: 0.3; searched over {0.1, 0.3, 1.0})."""
    ou_theta: float = 0.15
    """Mean-reversion rate of the OU process (Lillicrap et al.)."""

    def __post_init__(self) -> None:
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}, not {self.noise!r}")
        if not (0.0 < self.gamma <= 1.0 and 0.0 < self.tau <= 1.0):
            raise ValueError("need 0 < gamma <= 1 and 0 < tau <= 1")


class NAFNetwork(nn.Module):
    """The heads V(s), mu(s) and L(s); each is its own MLP, as in NAF sec. 6."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: NAFConfig) -> None:
        super().__init__()
        self.act_dim = act_dim
        self.value = mlp(obs_dim, 1, cfg.hidden, cfg.layers, cfg.activation)
        self.mean = mlp(obs_dim, act_dim, cfg.hidden, cfg.layers, cfg.activation)
        rows, cols = torch.tril_indices(act_dim, act_dim)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)
        self.entries = mlp(obs_dim, len(rows), cfg.hidden, cfg.layers, cfg.activation)

    def v(self, obs: Tensor) -> Tensor:
        """State value V(s), (batch,)."""
        return self.value(obs).squeeze(-1)

    def mu(self, obs: Tensor) -> Tensor:
        """Greedy unit-box action mu(s) = tanh(.), (batch, act_dim)."""
        return torch.tanh(self.mean(obs))

    def cholesky(self, obs: Tensor) -> Tensor:
        """L(s), (batch, act_dim, act_dim): lower-triangular with exp'd (so positive) diagonal."""
        flat = self.entries(obs)  # (batch, d (d + 1) / 2)
        raw = flat.new_zeros(flat.shape[0], self.act_dim, self.act_dim)
        raw[:, self._rows, self._cols] = flat
        return raw.tril(-1) + torch.diag_embed(raw.diagonal(dim1=-2, dim2=-1).exp())

    def precision(self, obs: Tensor) -> Tensor:
        """P(s) = L L^T, (batch, act_dim, act_dim), positive definite."""
        L = self.cholesky(obs)
        return L @ L.transpose(-1, -2)

    def advantage(self, obs: Tensor, unit_action: Tensor) -> Tensor:
        """A(s, u) = -1/2 |L^T (u - mu)|^2 = -1/2 (u-mu)^T P (u-mu) <= 0, (batch,)."""
        d = unit_action - self.mu(obs)
        Ltd = torch.einsum("bji,bj->bi", self.cholesky(obs), d)  # L^T d, (batch, act_dim)
        return -0.5 * Ltd.pow(2).sum(-1)

    def q(self, obs: Tensor, unit_action: Tensor) -> Tensor:
        """Q(s, u) = V(s) + A(s, u), (batch,)."""
        return self.v(obs) + self.advantage(obs, unit_action)


class NAF:
    """Continuous Q-learning with NAF (NAF Algorithm 1): one network, its Polyak target."""

    def __init__(
        self,
        obs_space: spaces.Box,
        act_space: spaces.Box,
        config: NAFConfig | None = None,
        targets: CriticTargets = one_step_targets,
        seed: int = 0,
    ) -> None:
        obs_dim = check_spaces(obs_space, act_space)
        self.config = cfg = config or NAFConfig()
        self.gamma = cfg.gamma
        self.targets = targets
        self.scale = ActionScale(act_space)
        with seeded(seed):
            self.net = NAFNetwork(obs_dim, self.scale.dim, cfg)
        self.net_target = target_copy(self.net)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, fused=True)
        self.generator = make_generator(seed)
        self.noise = ExplorationNoise(
            cfg.noise, cfg.noise_sigma, cfg.ou_theta, self.scale.dim, self.generator
        )
        self.updates = 0

    def policy(self, obs: Tensor) -> Tensor:
        """The greedy action argmax_a Q(s, a) = mu(s), (batch, act_dim) in env units."""
        return self.scale.to_env(self.net.mu(obs))

    # -- Agent interface -------------------------------------------------------------------

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        with torch.inference_mode():
            unit = self.net.mu(obs_tensor(obs))[0]
            if not deterministic:
                unit = unit + self.noise.sample()
            action = self.scale.to_env(unit)
        return self.scale.clip(action.numpy())

    def sample(self, obs: Tensor) -> tuple[Tensor, None]:
        """Behaviour actions for imagination rollouts (NAF Alg. 2: mu(x) + N), (batch, act_dim) in
        env units: mu plus independent Gaussian noise of `noise_sigma` in the unit box, clipped to
        it. Independent per row even with OU exploration: imagined branches share no episode."""
        with torch.no_grad():
            unit = self.net.mu(obs)
            eps = torch.randn(unit.shape, generator=self.generator)
            unit = (unit + self.config.noise_sigma * eps).clamp(-1.0, 1.0)
        return self.scale.to_env(unit), None

    def reset(self) -> None:
        """Call at the start of each episode: restarts the OU noise (no-op for Gaussian)."""
        self.noise.reset()

    def q_value(self, obs: Tensor, action: Tensor) -> Tensor:
        return self.net.q(obs, self.scale.to_unit(action))

    def target_action(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return self.scale.to_env(self.net_target.mu(obs)), torch.zeros(obs.shape[0])

    def target_value(self, obs: Tensor) -> Tensor:
        """V'(s) = max_u Q'(s, u), from the target network."""
        with torch.no_grad():
            return self.net_target.v(obs)

    def update(self, batch: Batch) -> dict[str, float]:
        data = self.targets(batch, self)
        v = self.net.v(data.obs)  # the advantage of the batch's actions is q - v <= 0
        q = v + self.net.advantage(data.obs, self.scale.to_unit(data.action))  # = q_value(obs, action)
        loss = F.mse_loss(q, data.target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        polyak_update(self.net_target, self.net, self.config.tau)
        self.updates += 1
        with torch.no_grad():  # one conversion to Python floats instead of one per metric
            c_loss, q_mean, v_mean = torch.stack([loss, q.mean(), v.mean()]).tolist()
        return {"critic_loss": c_loss, "q_mean": q_mean, "v_mean": v_mean}

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "net_target": self.net_target.state_dict(),
            "opt": self.opt.state_dict(),
            "updates": self.updates,
            "generator": self.generator.get_state(),
            "noise_state": self.noise.state.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.net_target.load_state_dict(state["net_target"])
        self.opt.load_state_dict(state["opt"])
        self.updates = int(state["updates"])
        self.generator.set_state(state["generator"])
        self.noise.state = state["noise_state"].clone()
