"""Soft actor-critic (Haarnoja et al., 2018) as configured in the SAC-SVG paper.

Tanh-squashed Gaussian actor, twin critics with a min in the target, learned temperature
alpha, optional decaying target entropy (SVG eq. 14). `actor_loss` and `policy_dist` are public
so that model-based agents (SVG(H), MAAC) can replace the actor objective and Study 3 can
compute policy KLs.

Choices for speed (docs/training.md, bench/README.md): the twin critics are one `StackedMLP`
(both Q-heads in one batched matmul per layer); the temperature's loss reuses the log-probs of
the actor loss's own sample (drawn before the actor step), as Haarnoja et al.'s code and
Stable-Baselines3 do, instead of a third sample after it, and actor and log alpha step in one
Adam (two parameter groups). With ReLU nets `update` takes the steps with their gradients
written out (`sac_steps.py`, the same gradients up to float32 rounding); `_critic_step` and
`_actor_step` are the autograd steps for other activations and for subclasses' own actor loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from engine.agents.base import Batch, CriticData, CriticTargets, one_step_targets
from engine.agents.chain import chain_params, relu_chain
from engine.agents.common import (
    ActionScale, FusedAdam, check_spaces, make_generator, mlp_row, obs_tensor, polyak_update, relu_in_place,
    seeded, target_copy,
)
from engine.agents.stacked import StackedMLP
from engine.models.mlp import mlp


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters; defaults are SAC-SVG's Table 3 (shared by all tasks) unless stated."""

    gamma: float = 0.99
    """Discount factor (SVG Table 3)."""
    hidden: int = 512
    """Hidden width of actor and critics (SVG Table 3: 2 hidden layers of 512 units)."""
    layers: int = 2
    """Hidden layers of actor and critics (SVG Table 3)."""
    activation: str = "relu"
    """Hidden activation (ReLU, as in Haarnoja et al.)."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor (SVG Table 3)."""
    critic_lr: float = 1e-4
    """Adam learning rate of the twin critics (SVG Table 3)."""
    alpha_lr: float = 5e-4
    """Adam learning rate of log alpha (SVG Table 3, "temperature LR")."""
    init_alpha: float = 0.1
    """Initial temperature alpha (SVG Table 3)."""
    tau: float = 5e-3
    """Polyak rate of the target critics, theta' <- (1-tau) theta' + tau theta (SVG Table 3)."""
    batch_size: int = 512
    """Minibatch size the training loop should sample (SVG Table 3, single-step batch size)."""
    log_std_min: float = -5.0
    """Lower bound of the pre-tanh log std (SVG Table 3)."""
    log_std_max: float = 2.0
    """Upper bound of the pre-tanh log std (SVG Table 3)."""
    target_entropy: float | None = None
    """Target entropy, or its initial value H_init when decaying; None means -act_dim (Haarnoja et al.)."""
    target_entropy_final: float | None = None
    """Final target entropy H_final of the SVG eq. 14 schedule; None keeps the target constant."""
    target_entropy_decay_steps: int = 0
    """Length T of the decay in agent updates (SVG counts env steps, with one update per step)."""
    target_entropy_decay_power: float = 1.0
    """Exponent beta of SVG eq. 14 (which the paper calls exponential decay); 1.0 is linear."""

    def __post_init__(self) -> None:
        if not (0.0 < self.gamma <= 1.0 and 0.0 < self.tau <= 1.0 and self.init_alpha > 0.0):
            raise ValueError("need 0 < gamma <= 1, 0 < tau <= 1 and init_alpha > 0")
        if self.log_std_min >= self.log_std_max:
            raise ValueError("need log_std_min < log_std_max")
        if self.target_entropy_final is not None and self.target_entropy_decay_steps <= 0:
            raise ValueError("a final target entropy needs target_entropy_decay_steps > 0")
        if self.target_entropy_decay_power <= 0.0:
            raise ValueError("target_entropy_decay_power must be > 0")

    def target_entropy_at(self, step: int, act_dim: int) -> float:
        """SVG eq. 14: H_t = (H_init - H_final)(1 - t/T)^beta + H_final, held at H_final after T."""
        start = -float(act_dim) if self.target_entropy is None else self.target_entropy
        if self.target_entropy_final is None:
            return start
        remaining = max(0.0, 1.0 - step / self.target_entropy_decay_steps)
        final = self.target_entropy_final
        return (start - final) * remaining**self.target_entropy_decay_power + final


def tanh_gaussian_log_prob(u: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """log density (batch,) of a = tanh(u) in the unit box, u ~ N(mean, exp(log_std)^2) (batch, d).

    Change of variables: log p(a) = log N(u) - sum_j log(1 - tanh(u_j)^2), with
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) to stay finite when |u| is large.
    """
    z = (u - mean) * torch.exp(-log_std)
    gauss = (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2.0 * math.pi)).sum(-1)
    log_det = (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
    return gauss - log_det


def _drawn_log_prob(u: Tensor, eps: Tensor, log_std: Tensor) -> Tensor:
    """`tanh_gaussian_log_prob(u, mean, log_std)` for u = mean + exp(log_std) eps, (batch,).

    The standardised draw (u - mean) exp(-log_std) is eps itself, so the Gaussian term needs no
    subtraction, exp and product (nor their autograd nodes): the same value up to rounding, and
    the same gradient (that term's total derivative through the reparameterised u is zero).
    One sum over all terms. A test checks value and gradients against the general function.
    """
    const = u.shape[-1] * (0.5 * math.log(2.0 * math.pi) + 2.0 * math.log(2.0))
    return (2.0 * (u + F.softplus(-2.0 * u)) - log_std - 0.5 * eps.square()).sum(-1) - const


class SAC:
    """SAC with twin critics, learned temperature and Polyak target critics (no target actor)."""

    def __init__(
        self,
        obs_space: spaces.Box,
        act_space: spaces.Box,
        config: SACConfig | None = None,
        targets: CriticTargets = one_step_targets,
        seed: int = 0,
    ) -> None:
        obs_dim = check_spaces(obs_space, act_space)
        self.config = cfg = config or SACConfig()
        self.gamma = cfg.gamma
        self.targets = targets
        self.scale = ActionScale(act_space)
        self.act_dim = act_dim = self.scale.dim
        with seeded(seed):
            # actor outputs (mean, raw log std) of the pre-tanh Gaussian: (batch, 2 act_dim)
            self.actor = mlp(obs_dim, 2 * act_dim, cfg.hidden, cfg.layers, cfg.activation)
            # the same initial weights as two separate mlp critics, stacked: (2, in, out) per layer
            self.critics = StackedMLP(
                [mlp(obs_dim + act_dim, 1, cfg.hidden, cfg.layers, cfg.activation) for _ in range(2)]
            )
        relu_in_place(self.actor)
        self.critic_target = target_copy(self.critics)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_alpha)))
        # actor and temperature step together (each at its own rate): their losses are
        # independent (alpha enters the actor loss detached, log pi the alpha loss detached)
        self.actor_opt = FusedAdam(
            [{"params": self.actor.parameters(), "lr": cfg.actor_lr}, {"params": [self.log_alpha], "lr": cfg.alpha_lr}]
        )
        self.critic_opt = FusedAdam(self.critics.parameters(), lr=cfg.critic_lr)
        self.generator = make_generator(seed)
        self.updates = 0

    # -- policy --------------------------------------------------------------------------------

    @property
    def alpha(self) -> Tensor:
        """Current temperature (scalar tensor, no gradient)."""
        return self.log_alpha.detach().exp()

    @property
    def target_entropy(self) -> float:
        """Target entropy of the squashed unit-box action at the current update count."""
        return self.config.target_entropy_at(self.updates, self.act_dim)

    def policy_dist(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log std, each (batch, act_dim), of the pre-tanh Gaussian at `obs`.

        The policy is a = scale(tanh(u)), u ~ N(mean, exp(log_std)^2); the log std is squashed
        smoothly into [log_std_min, log_std_max]. KL between two such policies equals the KL of
        these Gaussians (the squash is a shared bijection).
        """
        mean, raw = relu_chain(self.actor, obs).chunk(2, dim=-1)
        return mean, self._log_std(raw, torch.tanh)

    def _log_std(self, raw, tanh):  # noqa: ANN001, ANN202 - tensor or numpy array, with its tanh
        lo, hi = self.config.log_std_min, self.config.log_std_max
        return lo + 0.5 * (hi - lo) * (tanh(raw) + 1.0)

    def sample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Reparameterised a ~ pi(.|s), (batch, act_dim) in env units, and log pi(a|s) (batch,).

        The log-probability is that of the squashed action in the unit box [-1, 1]^d (the
        convention the target entropy -act_dim refers to); in env units it would be lower by
        the constant sum_j log(half_range_j).
        """
        mean, log_std = self.policy_dist(obs)
        eps = torch.randn(mean.shape, generator=self.generator)
        u = mean + log_std.exp() * eps
        return self.scale.to_env(torch.tanh(u)), _drawn_log_prob(u, eps, log_std)

    def _twin_q(self, critics: StackedMLP, obs: Tensor, action: Tensor) -> Tensor:
        """Both critics' Q(s, a), (2, batch), for env-unit actions."""
        x = torch.cat([obs, self.scale.to_unit(action)], dim=-1)
        return relu_chain(critics, x).squeeze(-1)

    # -- Agent interface -------------------------------------------------------------------

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        if self.config.activation in ("relu", "tanh"):  # `policy_dist` on one row in numpy (common.mlp_row)
            out = mlp_row(self.actor, obs)  # (2 act_dim,): mean, then raw log-std
            half = len(out) // 2
            mean, raw = out[:half], out[half:]  # views, as np.split gives, without its 15 us
            log_std = None if deterministic else self._log_std(raw, np.tanh)
        else:
            with torch.inference_mode():
                mean, log_std = (t[0].numpy() for t in self.policy_dist(obs_tensor(obs)))
        u = mean
        if not deterministic:  # the draw `sample` makes, from the same generator
            u = mean + np.exp(log_std) * torch.randn(mean.shape, generator=self.generator).numpy()
        return self.scale.to_env_np(np.tanh(u))

    def reset(self) -> None:
        """Start of an episode: nothing to reset (exploration is the policy's own noise)."""

    def q_value(self, obs: Tensor, action: Tensor) -> Tensor:
        """min(Q_1, Q_2)(s, a), (batch,)."""
        return self._twin_q(self.critics, obs, action).min(dim=0).values

    def target_action(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            a, log_prob = self.sample(obs)
            return a, -self.alpha * log_prob

    def target_value(self, obs: Tensor) -> Tensor:
        with torch.no_grad():
            a, bonus = self.target_action(obs)
            return self._twin_q(self.critic_target, obs, a).min(dim=0).values + bonus

    def actor_loss(self, obs: Tensor, first: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """The SAC actor loss E_s E_{a~pi}[alpha log pi(a|s) - min_i Q_i(s, a)] (SVG eq. 8).

        Reparameterised through the sample, alpha held fixed. `first` is the draw
        `self.sample(obs)` to use (`update` passes the one whose log-probs also drive the
        temperature), drawn here if None. Model-based agents override this (e.g. SVG(H)
        eq. 10); `update` always calls it through `self`.
        """
        a, log_prob = self.sample(obs) if first is None else first
        q = self._twin_q(self.critics, obs, a).min(dim=0).values
        return (self.alpha * log_prob - q).mean()

    def update(self, batch: Batch) -> dict[str, float]:
        from engine.agents import sac_steps  # by hand for ReLU nets (bench/README.md); imports this module

        data = self.targets(batch, self)
        by_hand = chain_params(self.actor) is not None and chain_params(self.critics) is not None
        critic_loss, q_both = (sac_steps.critic_step if by_hand else self._critic_step)(self, data)
        target_entropy = self.target_entropy
        # the actor step by hand is SAC's own loss: subclasses with their own (SVG(H)) use autograd
        by_hand = by_hand and type(self).actor_loss is SAC.actor_loss
        actor_loss, alpha_loss, log_prob = (sac_steps.actor_step if by_hand else self._actor_step)(
            self, batch.obs, target_entropy)
        polyak_update(self.critic_target, self.critics, self.config.tau)
        self.updates += 1
        with torch.no_grad():  # one conversion to Python floats instead of one per metric
            c_loss, a_loss, t_loss, alpha, entropy, q_mean = torch.stack([
                critic_loss, actor_loss, alpha_loss, self.log_alpha.exp(), -log_prob.mean(),
                q_both.min(dim=0).values.mean(),
            ]).tolist()
        return {"critic_loss": c_loss, "actor_loss": a_loss, "alpha_loss": t_loss, "alpha": alpha,
                "entropy": entropy, "target_entropy": float(target_entropy), "q_mean": q_mean}

    @staticmethod
    def _critic_step(agent: SAC, data: CriticData) -> tuple[Tensor, Tensor]:
        """One Adam step of the twin critics on mean squared error to data.target; (loss, q (2, n))."""
        q_both = agent._twin_q(agent.critics, data.obs, data.action)  # (2, n)
        # the sum of the two critics' mean squared errors
        critic_loss = F.mse_loss(q_both, data.target.expand_as(q_both), reduction="sum") / q_both.shape[1]
        agent.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        agent.critic_opt.step()
        return critic_loss, q_both

    @staticmethod
    def _actor_step(agent: SAC, obs: Tensor, target_entropy: float) -> tuple[Tensor, Tensor, Tensor]:
        """One Adam step of actor and log alpha; (actor loss, alpha loss, log pi (n,), no grad)."""
        # SVG eq. 9: J(alpha) = E[-alpha log pi - alpha H_target], in log alpha for positivity,
        # on the log-probs of the actor loss's own draw (see the module docstring)
        first = agent.sample(obs)
        log_prob = first[1].detach()
        alpha_loss = (agent.log_alpha.exp() * (-log_prob - target_entropy)).mean()
        # the actor's gradient flows through the critics but must not fill their grads: freezing
        # them skips that work (bench/README.md: about 7 % of an update)
        agent.critics.requires_grad_(False)
        try:
            actor_loss = agent.actor_loss(obs, first)
            agent.actor_opt.zero_grad(set_to_none=True)
            (actor_loss + alpha_loss).backward()  # two independent graphs, one backward call
        finally:
            agent.critics.requires_grad_(True)
        agent.actor_opt.step()
        return actor_loss, alpha_loss, log_prob

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critics": self.critics.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "updates": self.updates,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critics.load_state_dict(state["critics"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.updates = int(state["updates"])
        self.generator.set_state(state["generator"])
