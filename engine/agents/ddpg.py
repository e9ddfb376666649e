"""DDPG (Lillicrap et al., 2016) with the hyperparameters MVE tuned for HalfCheetah.

The critic regresses on whatever the injected `CriticTargets` returns (1-step by default, MVE
H-step later), so model-based value expansion plugs in without touching this file. With ReLU
nets `update` takes the critic and actor steps with their gradients written out
(`_steps_by_hand`, bit for bit the autograd steps' gradients; bench/README.md: x0.86 of the time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from engine.agents.base import Batch, CriticData, CriticTargets, one_step_targets
from engine.agents.chain import chain_backward, chain_forward, chain_params, grad_buffers, relu_chain
from engine.agents.common import (
    NOISE_KINDS, ActionScale, ExplorationNoise, FusedAdam, check_spaces, make_generator, mlp_row, obs_tensor,
    polyak_update, relu_in_place, seeded, target_copy,
)
from engine.models.mlp import mlp


@dataclass(frozen=True)
class DDPGConfig:
    """DDPG hyperparameters; defaults are MVE's Table 1 (cheetah) unless stated."""

    gamma: float = 0.99
    """Discount factor (MVE and Lillicrap et al.)."""
    hidden: int = 64
    """Hidden width of actor and critic (MVE Table 1: 2 hidden layers of 64 units)."""
    layers: int = 2
    """Hidden layers of actor and critic (MVE Table 1)."""
    activation: str = "relu"
    """Hidden activation (MVE does not say; ReLU as in Lillicrap et al.)."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actor (MVE Table 1, cheetah)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critic (MVE Table 1, cheetah)."""
    tau: float = 1e-2
    """Polyak rate of the target networks, theta' <- (1-tau) theta' + tau theta (MVE Table 1 "decay")."""
    batch_size: int = 512
    """Minibatch size the training loop should sample (MVE appendix A: always 512 with learned models)."""
    noise: str = "gaussian"
    """Exploration noise on the unit-box action: "gaussian" or "ou" (Ornstein-Uhlenbeck)."""
    noise_sigma: float = 0.2
    """Noise std in unit-box action units (MVE used parameter-space noise with std target 0.2)."""
    ou_theta: float = 0.15
    """Mean-reversion rate of the OU process (Lillicrap et al.)."""

    def __post_init__(self) -> None:
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}, not {self.noise!r}")
        if not (0.0 < self.gamma <= 1.0 and 0.0 < self.tau <= 1.0):
            raise ValueError("need 0 < gamma <= 1 and 0 < tau <= 1")


class DDPG:
    """Deterministic actor mu(s) = tanh(net(s)) scaled to the Box, critic Q(s, a), target copies."""

    def __init__(
        self,
        obs_space: spaces.Box,
        act_space: spaces.Box,
        config: DDPGConfig | None = None,
        targets: CriticTargets = one_step_targets,
        seed: int = 0,
    ) -> None:
        obs_dim = check_spaces(obs_space, act_space)
        self.config = cfg = config or DDPGConfig()
        self.gamma = cfg.gamma
        self.targets = targets
        self.scale = ActionScale(act_space)
        act_dim = self.scale.dim
        with seeded(seed):
            self.actor = mlp(obs_dim, act_dim, cfg.hidden, cfg.layers, cfg.activation)
            self.critic = mlp(obs_dim + act_dim, 1, cfg.hidden, cfg.layers, cfg.activation)
        self.actor_target = target_copy(self.actor)
        self.critic_target = target_copy(self.critic)
        for net in (self.actor, self.critic, self.actor_target, self.critic_target):
            relu_in_place(net)
        self.actor_opt = FusedAdam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = FusedAdam(self.critic.parameters(), lr=cfg.critic_lr)
        self.generator = make_generator(seed)
        self.noise = ExplorationNoise(cfg.noise, cfg.noise_sigma, cfg.ou_theta, act_dim, self.generator)
        self.updates = 0

    # -- networks in env units -------------------------------------------------------------

    def _mu(self, actor: torch.nn.Module, obs: Tensor) -> Tensor:
        """Deterministic action (batch, act_dim) in env units."""
        return self.scale.to_env(torch.tanh(relu_chain(actor, obs)))

    def _q(self, critic: torch.nn.Module, obs: Tensor, action: Tensor) -> Tensor:
        """Q(s, a) (batch,) for env-unit actions."""
        return relu_chain(critic, torch.cat([obs, self.scale.to_unit(action)], dim=-1)).squeeze(-1)

    def policy(self, obs: Tensor) -> Tensor:
        """The online deterministic policy mu(s), (batch, act_dim) in env units, differentiable."""
        return self._mu(self.actor, obs)

    # -- Agent interface -------------------------------------------------------------------

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        if self.config.activation in ("relu", "tanh"):  # one row in numpy (common.mlp_row)
            unit = np.tanh(mlp_row(self.actor, obs))
        else:
            with torch.inference_mode():
                unit = torch.tanh(self.actor(obs_tensor(obs)))[0].numpy()
        if not deterministic:
            unit = unit + self.noise.sample().numpy()
        return self.scale.to_env_np(unit)

    def sample(self, obs: Tensor) -> tuple[Tensor, None]:
        """Behaviour actions for imagined rollouts (ib-ddpg), (batch, act_dim) in env units:
        mu(s) plus independent Gaussian noise of `noise_sigma` in the unit box, clipped to it.
        Independent per row even with OU exploration: imagined branches share no episode."""
        with torch.no_grad():
            unit = torch.tanh(self.actor(obs))
            eps = torch.randn(unit.shape, generator=self.generator)
            unit = (unit + self.config.noise_sigma * eps).clamp(-1.0, 1.0)
        return self.scale.to_env(unit), None

    def reset(self) -> None:
        """Call at the start of each episode: restarts the OU noise (no-op for Gaussian)."""
        self.noise.reset()

    def q_value(self, obs: Tensor, action: Tensor) -> Tensor:
        return self._q(self.critic, obs, action)

    def target_action(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            a = self._mu(self.actor_target, obs)
        return a, torch.zeros(obs.shape[0])

    def target_value(self, obs: Tensor) -> Tensor:
        with torch.no_grad():
            return self._q(self.critic_target, obs, self._mu(self.actor_target, obs))

    def actor_loss(self, obs: Tensor) -> Tensor:
        """The DDPG actor loss -mean_s Q(s, mu(s)) (deterministic policy gradient)."""
        return -self._q(self.critic, obs, self.policy(obs)).mean()

    def update(self, batch: Batch) -> dict[str, float]:
        data = self.targets(batch, self)
        if chain_params(self.actor) is not None and chain_params(self.critic) is not None:
            critic_loss, q, actor_loss = self._steps_by_hand(data, batch.obs)
        else:
            critic_loss, q, actor_loss = self._steps_by_autograd(data, batch.obs)
        polyak_update((self.actor_target, self.critic_target), (self.actor, self.critic), self.config.tau)
        self.updates += 1
        with torch.no_grad():  # one conversion to Python floats instead of one per metric
            c_loss, a_loss, q_mean, target_mean = torch.stack(
                [critic_loss, actor_loss, q.mean(), data.target.mean()]
            ).tolist()
        return {"critic_loss": c_loss, "actor_loss": a_loss, "q_mean": q_mean, "target_mean": target_mean}

    def _steps_by_autograd(self, data: CriticData, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Critic step on `data`, then actor step on `obs`; (critic loss, q (batch,), actor loss)."""
        q = self.q_value(data.obs, data.action)
        critic_loss = F.mse_loss(q, data.target)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        # the actor's gradient flows through the critic but must not fill its grads: freezing
        # it skips that work
        self.critic.requires_grad_(False)
        try:
            actor_loss = self.actor_loss(obs)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
        finally:
            self.critic.requires_grad_(True)
        self.actor_opt.step()
        return critic_loss, q, actor_loss

    @torch.no_grad()
    def _steps_by_hand(self, data: CriticData, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`_steps_by_autograd` for ReLU nets with the gradients written out (`chain_backward`):
        no autograd graph, the parameter gradients written into the same buffers every update,
        and no gradient of the critic's weights in the actor step. The same gradients up to
        float32 rounding (tests/agents/test_agents_chain.py)."""
        scale, ap, cp = self.scale, chain_params(self.actor), chain_params(self.critic)
        # critic: loss mean((q - y)^2), d loss / d q = 2 (q - y) / n
        kept: list[Tensor] = []
        q = chain_forward(torch.cat([data.obs, scale.to_unit(data.action)], dim=-1), cp, False, kept).squeeze(-1)
        diff = q - data.target  # (n,)
        critic_loss = diff.square().mean()
        g = diff.mul_(2.0 / diff.numel()).unsqueeze(-1)  # (n, 1)
        chain_backward(g, kept, cp, False, (False, *[True] * len(cp)), grad_buffers(cp))
        self.critic_opt.step()
        # actor: loss -mean_s Q(s, mu(s)); d loss / d Q = -1 / n, back through the critic to its
        # action input only, then through to_unit, to_env, tanh and the actor
        kept_a, kept_c = [], []
        mu = torch.tanh(chain_forward(obs, ap, False, kept_a))  # (n, act_dim) in the unit box
        q_pi = chain_forward(torch.cat([obs, scale.to_unit(scale.to_env(mu))], dim=-1), cp, False, kept_c)
        actor_loss = -q_pi.mean()
        g = torch.full_like(q_pi, -1.0 / q_pi.numel())  # (n, 1)
        g_x, _ = chain_backward(g, kept_c, cp, False, (True, *[False] * len(cp)))
        g_unit = g_x[:, obs.shape[1]:]  # (n, act_dim)
        if not scale.identity:  # the backward of to_unit, then of to_env, as autograd computes them
            g_unit = g_unit / scale.half_range * scale.half_range
        g_u = torch.ops.aten.tanh_backward(g_unit, mu)
        chain_backward(g_u, kept_a, ap, False, (False, *[True] * len(ap)), grad_buffers(ap))
        self.actor_opt.step()
        return critic_loss, q, actor_loss

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "updates": self.updates,
            "generator": self.generator.get_state(),
            "noise_state": self.noise.state.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.updates = int(state["updates"])
        self.generator.set_state(state["generator"])
        self.noise.state = state["noise_state"].clone()

