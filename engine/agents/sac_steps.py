"""SAC's critic and actor steps with the gradients written out, for ReLU actor and critics.

What `SAC.update` computes through autograd (`SAC._critic_step`, `SAC._actor_step`), here with
the backward of the MLPs by `chain_backward` into the same gradient buffers every update and
the backward of the elementwise tanh-Gaussian chain spelled out: no autograd graph and no
gradient of the frozen critics' weights. It measured x0.88-0.91 of the autograd update's time
(bench/README.md). The same gradients up to float32 rounding (tests/agents/test_agents_chain.py);
the random draw is the same one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.agents.base import CriticData
from engine.agents.chain import chain_backward, chain_forward, chain_params, grad_buffers
from engine.agents.sac import _drawn_log_prob

if TYPE_CHECKING:
    from engine.agents.sac import SAC


@torch.no_grad()
def critic_step(agent: SAC, data: CriticData) -> tuple[Tensor, Tensor]:
    """One Adam step of the twin critics on mean squared error to data.target; (loss, q (2, n))."""
    cp = chain_params(agent.critics)
    kept: list[Tensor] = []
    x = torch.cat([data.obs, agent.scale.to_unit(data.action)], dim=-1)
    q_both = chain_forward(x.expand(2, *x.shape), cp, True, kept).squeeze(-1)  # (2, n)
    n = q_both.shape[1]
    critic_loss = F.mse_loss(q_both, data.target.expand_as(q_both), reduction="sum") / n
    # d loss / d q = 2 (q - y) / n, in the order autograd multiplies it out
    g = (q_both - data.target).mul_(2.0).mul_(1.0 / n).unsqueeze(-1)  # (2, n, 1)
    chain_backward(g, kept, cp, True, (False, *[True] * len(cp)), grad_buffers(cp))
    agent.critic_opt.step()
    return critic_loss, q_both


@torch.no_grad()
def actor_step(agent: SAC, obs: Tensor, target_entropy: float) -> tuple[Tensor, Tensor, Tensor]:
    """One Adam step of actor and log alpha (`SAC.actor_loss` and the temperature loss on the
    same draw); (actor loss, alpha loss, log pi (n,))."""
    ap, cp, scale, cfg = chain_params(agent.actor), chain_params(agent.critics), agent.scale, agent.config
    kept_a: list[Tensor] = []
    mean, raw = chain_forward(obs, ap, False, kept_a).chunk(2, dim=-1)  # (n, d) each
    # `SAC.sample`: log std squashed into [lo, hi], u = mean + std eps, a = tanh(u)
    t_raw = torch.tanh(raw)
    half = 0.5 * (cfg.log_std_max - cfg.log_std_min)
    log_std = cfg.log_std_min + half * (t_raw + 1.0)
    std = log_std.exp()
    eps = torch.randn(mean.shape, generator=agent.generator)
    u = mean + std * eps
    a_unit = torch.tanh(u)
    log_prob = _drawn_log_prob(u, eps, log_std)  # (n,)
    n = log_prob.shape[0]
    alpha, exp_log_alpha = agent.alpha, agent.log_alpha.exp()
    alpha_loss = (exp_log_alpha * (-log_prob - target_entropy)).mean()

    kept_c: list[Tensor] = []
    x = torch.cat([obs, scale.to_unit(scale.to_env(a_unit))], dim=-1)
    q_both = chain_forward(x.expand(2, *x.shape), cp, True, kept_c).squeeze(-1)  # (2, n)
    q_min, which = q_both.min(dim=0)  # (n,)
    actor_loss = (alpha * log_prob - q_min).mean()

    # actor loss = mean(alpha log pi - min_i Q_i): -1/n to the smaller critic's Q, back to its action input
    g_q = torch.zeros_like(q_both).scatter_(0, which.unsqueeze(0), -1.0 / n).unsqueeze(-1)  # (2, n, 1)
    g_x, _ = chain_backward(g_q, kept_c, cp, True, (True, *[False] * len(cp)))
    g_unit = g_x.sum(0)[:, obs.shape[1]:]  # (n, d): both members share the input
    if not scale.identity:  # the backward of to_unit, then of to_env, as autograd computes them
        g_unit = g_unit / scale.half_range * scale.half_range
    g_u = torch.ops.aten.tanh_backward(g_unit, a_unit)
    # alpha log pi: log pi = sum_j [2 (u + softplus(-2u)) - log_std - eps^2 / 2] - const
    g_terms = (alpha * (1.0 / n)).expand(n, 1).expand_as(u)  # (n, d): d loss / d (each summed term)
    g_two = g_terms * 2.0
    g_u = g_u + g_two + torch.ops.aten.softplus_backward(g_two, -2.0 * u, 1.0, 20.0) * -2.0
    # u = mean + exp(log_std) eps; log_std = lo + half (tanh(raw) + 1)
    g_log_std = g_u * eps * std - g_terms
    g_raw = torch.ops.aten.tanh_backward(g_log_std * half, t_raw)
    chain_backward(torch.cat([g_u, g_raw], dim=-1), kept_a, ap, False, (False, *[True] * len(ap)), grad_buffers(ap))
    # d alpha loss / d log alpha = exp(log alpha) mean(-log pi - H)
    agent.log_alpha.grad = ((-log_prob - target_entropy) * (1.0 / n)).sum() * exp_log_alpha
    agent.actor_opt.step()
    return actor_loss, alpha_loss, log_prob
