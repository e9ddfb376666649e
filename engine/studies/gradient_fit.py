"""Data, dynamics models and critics for the gradient-error study (Study 4).

Everything here works in float64: the study compares gradients, and the exactness test
(true dynamics + exact critic = truncated analytic series) must hold to 1e-6.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import engine.envs  # noqa: F401  (registers DoubleIntegrator-v0)
from engine.models import mlp

Dynamics = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (s, a) -> s'
Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (s, a) -> Q, shape (batch,)


@dataclass(frozen=True)
class Transitions:
    """Limited, noisy data collected in the real environment."""

    s: np.ndarray  # (n, 2)
    a: np.ndarray  # (n, 1)
    r: np.ndarray  # (n,)
    s_next: np.ndarray  # (n, 2)


def collect(
    env_kwargs: dict, K: np.ndarray, n: int, episode_length: int, explore: float, seed: int
) -> Transitions:
    """Run the behaviour policy a = K s + N(0, explore^2) in `DoubleIntegrator-v0` for `n` steps."""
    env = gym.make("DoubleIntegrator-v0", max_episode_steps=episode_length, **env_kwargs)
    rng = np.random.default_rng(seed)
    s_buf, a_buf, r_buf, n_buf = [], [], [], []
    obs, _ = env.reset(seed=seed)
    while len(s_buf) < n:
        a = K @ obs + explore * rng.standard_normal(K.shape[0])
        nxt, r, terminated, truncated, _ = env.step(a)
        s_buf.append(obs)
        a_buf.append(a)
        r_buf.append(r)
        n_buf.append(nxt)
        obs = env.reset()[0] if (terminated or truncated) else nxt
    env.close()
    return Transitions(np.array(s_buf), np.array(a_buf), np.array(r_buf), np.array(n_buf))


def linear_dynamics(A: np.ndarray, B: np.ndarray) -> Dynamics:
    """s' = A s + B a as a differentiable torch function."""
    At, Bt = torch.as_tensor(A), torch.as_tensor(B)
    return lambda s, a: s @ At.T + a @ Bt.T


def fit_linear_dynamics(data: Transitions) -> Dynamics:
    """Least squares s' = [s, a, 1] W."""
    X = np.hstack([data.s, data.a, np.ones((len(data.s), 1))])
    W, *_ = np.linalg.lstsq(X, data.s_next, rcond=None)
    Wt = torch.as_tensor(W)
    return lambda s, a: torch.cat([s, a, torch.ones_like(s[:, :1])], dim=1) @ Wt


class _Normalizer(nn.Module):
    def __init__(self, x: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mu", torch.as_tensor(x.mean(0)))
        self.register_buffer("sd", torch.as_tensor(x.std(0) + 1e-8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mu) / self.sd


def _train(net: nn.Module, loss_fn: Callable[[], torch.Tensor], steps: int, lr: float) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss = torch.tensor(0.0)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        sched.step()
    return float(loss.detach())


def fit_mlp_dynamics(data: Transitions, hidden: int, steps: int, lr: float = 3e-3) -> Dynamics:
    """MLP on standardised (s, a) predicting the standardised state change (MVE-style deltas)."""
    x = np.hstack([data.s, data.a])
    delta = data.s_next - data.s
    norm_in = _Normalizer(x).double()
    d_mu, d_sd = torch.as_tensor(delta.mean(0)), torch.as_tensor(delta.std(0) + 1e-8)
    net = mlp(x.shape[1], delta.shape[1], hidden, 2, "tanh").double()
    X = torch.as_tensor(x)
    Y = (torch.as_tensor(delta) - d_mu) / d_sd
    _train(net, lambda: ((net(norm_in(X)) - Y) ** 2).mean(), steps, lr)
    net.requires_grad_(False)
    return lambda s, a: s + net(norm_in(torch.cat([s, a], dim=1))) * d_sd + d_mu


def _quad_features(x: torch.Tensor) -> torch.Tensor:
    """(batch, d) -> (batch, d(d+1)/2 + 1): monomials x_i x_j (i <= j) and a constant."""
    i, j = torch.triu_indices(x.shape[1], x.shape[1])
    return torch.cat([x[:, i] * x[:, j], torch.ones_like(x[:, :1])], dim=1)


def fit_quadratic_critic(data: Transitions, K: np.ndarray, gamma: float) -> Critic:
    """LSTD-Q with quadratic features: solves Phi^T (Phi - gamma Phi') w = Phi^T r."""
    s, a, sn = (torch.as_tensor(v) for v in (data.s, data.a, data.s_next))
    an = sn @ torch.as_tensor(K).T
    phi = _quad_features(torch.cat([s, a], 1))
    phi_n = _quad_features(torch.cat([sn, an], 1))
    w = torch.linalg.lstsq(phi.T @ (phi - gamma * phi_n), phi.T @ torch.as_tensor(data.r)).solution
    return lambda s, a: _quad_features(torch.cat([s, a], 1)) @ w


def fit_mlp_critic(
    data: Transitions, K: np.ndarray, gamma: float, hidden: int, iterations: int, steps_per_iteration: int,
    lr: float = 3e-3,
) -> Critic:
    """Fitted Q-evaluation of the policy a = K s: repeatedly regress Q on r + gamma Q_prev(s', K s')."""
    s, a, sn = (torch.as_tensor(v) for v in (data.s, data.a, data.s_next))
    r = torch.as_tensor(data.r)
    x = torch.cat([s, a], 1)
    xn = torch.cat([sn, sn @ torch.as_tensor(K).T], 1)
    norm_in = _Normalizer(np.vstack([x.numpy(), xn.numpy()])).double()
    scale = float(r.abs().mean()) / (1.0 - gamma)  # keeps targets O(1) for the network
    net = mlp(x.shape[1], 1, hidden, 2, "tanh").double()
    target = torch.zeros_like(r)
    for _ in range(iterations):
        with torch.no_grad():
            target = r / scale + gamma * net(norm_in(xn)).squeeze(1)
        _train(net, lambda: ((net(norm_in(x)).squeeze(1) - target) ** 2).mean(), steps_per_iteration, lr)
    net.requires_grad_(False)
    return lambda s, a: net(norm_in(torch.cat([s, a], 1))).squeeze(1) * scale


def exact_critic(W: np.ndarray) -> Critic:
    """Q^K(s, a) = -x^T W x (the noise constant drops out of every gradient)."""
    Wt = torch.as_tensor(W)
    return lambda s, a: -(torch.cat([s, a], 1) @ Wt * torch.cat([s, a], 1)).sum(1)


def moment_matched_normal(cov: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples whose sample mean is exactly 0 and sample covariance (1/n) exactly `cov`.

    Sample averages of quadratic functions are then exact expectations, so with linear
    dynamics and a quadratic critic the study's estimate carries no Monte-Carlo error;
    with learned models it is ordinary Monte Carlo with variance reduction.
    """
    d = len(cov)
    z = rng.standard_normal((n, d))
    z -= z.mean(0)
    C = z.T @ z / n
    z = z @ np.linalg.inv(np.linalg.cholesky(C)).T  # whiten: (1/n) z^T z = I
    return z @ np.linalg.cholesky(cov).T
