"""Time-varying linear-Gaussian dynamics, refitted on the newest episodes (NAF sec. 5.3).

    p_t(x_{t+1} | x_t, u_t) = N(F_t [x_t; u_t] + f_t, N_t)

At every time step t a Gaussian is fitted to the vectors z = [x_t; u_t; x_{t+1}] of the newest
`episodes` episodes and conditioned on [x_t; u_t] (Levine & Abbeel 2014, as NAF uses it with
n = 5). Five samples cannot pin down a Gaussian in more than four dimensions, so, as in Levine &
Abbeel's code, each step's Gaussian is the posterior under a normal-inverse-Wishart prior
centred on the Gaussian of all time steps pooled (their GMM prior with one cluster);
`prior_strength` = 0 gives the plain per-step fit. A linear system's data lie on x' = A x + B u at
every step, and so does any mixture of them: the fit recovers A, B exactly.

The time index is the model state's `hidden`: (batch,) int64 steps since the episode start.
`None` means t = 0 for every row; steps past the last fitted one use the last fitted model
(callers that must not extrapolate in time stop at `horizon`, as branched rollouts do).
Fitting reads each row's time step from `Transitions.step` when given (the replay's
`model_data` gives it, because held-out blocks split episodes into segments); the newest
`episodes` episodes are then the rows after the `episodes`-th last point where `step` fails to
increase (an episode whose first rows are all held out and that follows a shorter one is
counted with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from engine.models.dynamics_base import ModelState, Transitions
from engine.models.training import check_transitions, episode_positions, rollout_by_steps


@dataclass(frozen=True)
class LinearTVConfig:
    """Time-varying linear-Gaussian dynamics: data window, prior and prediction mode."""

    episodes: int = 5
    """Fit on the newest this many episodes of the data given to `fit` (NAF sec. 5.3: n = 5)."""
    prior_strength: float = 1.0
    """Pseudo-count of the pooled-data prior in each step's fit (0: per-step fit only)."""
    ridge: float = 1e-8
    """Added to the diagonal of Σ_[x;u] before conditioning, for rank-deficient data."""
    step_mode: Literal["mean", "sample"] = "mean"
    """`step` returns the mean F_t[x;u] + f_t, or a sample with covariance N_t."""
    seed: int = 0
    """Seeds the noise of `step_mode="sample"`."""

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.prior_strength < 0 or self.ridge < 0:
            raise ValueError("need episodes >= 1, prior_strength >= 0, ridge >= 0")
        if self.step_mode not in ("mean", "sample"):
            raise ValueError(f"step_mode must be 'mean' or 'sample', not {self.step_mode!r}")


class LinearTVDynamics:
    """F_t, f_t, N_t per time step; differentiable in obs and action (it is linear)."""

    differentiable = True
    time_indexed = True
    """`hidden` is the time step: start states need theirs (`initial_state(obs, t)`)."""

    def __init__(self, obs_dim: int, act_dim: int, config: LinearTVConfig | None = None) -> None:
        self.config = config or LinearTVConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.F = np.zeros((0, obs_dim, obs_dim + act_dim))  # (T, obs, obs + act)
        self.f = np.zeros((0, obs_dim))  # (T, obs)
        self.N = np.zeros((0, obs_dim, obs_dim))  # (T, obs, obs)
        self._gen = torch.Generator().manual_seed(self.config.seed)

    @property
    def horizon(self) -> int:
        """Number of fitted time steps T."""
        return len(self.F)

    def fit(self, data: Transitions) -> dict[str, float]:
        """Refit every step's model on the newest `episodes` episodes of `data`."""
        check_transitions(data)
        if data.step is None:
            episode, t = np.asarray(data.episode), episode_positions(data.episode)
        else:
            t = np.asarray(data.step, np.int64)
            episode = np.cumsum(np.r_[True, t[1:] <= t[:-1]])  # a new episode where t does not rise
        keep = np.isin(episode, _newest(episode, self.config.episodes))
        t = t[keep]
        z = np.concatenate([np.asarray(data.obs, np.float64), np.asarray(data.action, np.float64),
                            np.asarray(data.next_obs, np.float64)], axis=1)[keep]  # (n, 2 obs + act)
        mu0, sigma0 = _moments(z)
        horizon = int(t.max()) + 1
        d = self.obs_dim + self.act_dim
        F, f, N = np.empty((horizon, self.obs_dim, d)), np.empty((horizon, self.obs_dim)), \
            np.empty((horizon, self.obs_dim, self.obs_dim))
        for step in range(horizon):
            mu, sigma = _posterior(z[t == step], mu0, sigma0, self.config.prior_strength)
            F[step], f[step], N[step] = _condition(mu, sigma, d, self.config.ridge)
        self.F, self.f, self.N = F, f, N
        residual = z[:, d:] - (np.einsum("nij,nj->ni", F[t], z[:, :d]) + f[t])
        return {"train_loss": float(np.mean(residual ** 2)), "n_train": float(len(z)),
                "horizon": float(horizon)}

    def initial_state(self, obs: Tensor, t: Tensor | np.ndarray | int = 0) -> ModelState:
        """A model state at time step(s) `t` (scalar or (batch,)) since the episode start."""
        steps = torch.as_tensor(t, dtype=torch.int64).expand(obs.shape[0]).clone()
        return ModelState(obs=obs, hidden=steps)

    def step(self, state: ModelState, action: Tensor) -> ModelState:
        if self.horizon == 0:
            raise RuntimeError("LinearTVDynamics.step before fit")
        obs = state.obs
        steps = state.hidden if state.hidden is not None else torch.zeros(len(obs), dtype=torch.int64)
        idx = steps.clamp(max=self.horizon - 1)
        F = torch.as_tensor(self.F, dtype=obs.dtype)[idx]  # (batch, obs, obs + act)
        f = torch.as_tensor(self.f, dtype=obs.dtype)[idx]  # (batch, obs)
        nxt = torch.einsum("bij,bj->bi", F, torch.cat([obs, action.to(obs.dtype)], dim=-1)) + f
        if self.config.step_mode == "sample":
            chol = torch.as_tensor(_psd_cholesky(self.N), dtype=obs.dtype)[idx]  # (batch, obs, obs)
            noise = torch.randn(nxt.shape, generator=self._gen, dtype=obs.dtype)
            nxt = nxt + torch.einsum("bij,bj->bi", chol, noise)
        return ModelState(obs=nxt, hidden=steps + 1)

    def rollout(self, state: ModelState, actions: Tensor) -> Tensor:
        return rollout_by_steps(self.step, state, actions)

    def state_dict(self) -> dict[str, Tensor]:
        """F, f, N as tensors (checkpoints load with `weights_only=True`)."""
        return {"F": torch.as_tensor(self.F), "f": torch.as_tensor(self.f), "N": torch.as_tensor(self.N)}

    def load_state_dict(self, state: dict[str, Tensor | np.ndarray]) -> None:
        self.F, self.f, self.N = (np.asarray(state[k], np.float64) for k in ("F", "f", "N"))


def _newest(episode: np.ndarray, n: int) -> np.ndarray:
    """The ids of the last n distinct episodes, in order of appearance."""
    _, first = np.unique(episode, return_index=True)
    order = episode[np.sort(first)]
    return order[-n:]


def _moments(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = z.mean(axis=0)
    dz = z - mu
    return mu, dz.T @ dz / len(z)


def _posterior(z: np.ndarray, mu0: np.ndarray, sigma0: np.ndarray, strength: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of z under a normal-inverse-Wishart prior (mu0, sigma0, strength).

    With Ψ = strength·Σ0 and m = n0 = strength (Levine & Abbeel's prior), the posterior mode's
    covariance is (Ψ + n S + n m/(n + m) (μ̂ - μ0)(μ̂ - μ0)ᵀ) / (n + n0); no data gives the prior.
    """
    n = len(z)
    if n == 0:
        return mu0, sigma0
    mu_hat, s = _moments(z)
    if strength == 0:
        return mu_hat, s
    diff = (mu_hat - mu0)[:, None]
    sigma = (strength * sigma0 + n * s + n * strength / (n + strength) * diff @ diff.T) / (n + strength)
    mu = (strength * mu0 + n * mu_hat) / (strength + n)
    return mu, sigma


def _condition(mu: np.ndarray, sigma: np.ndarray, d: int, ridge: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Condition N(mu, sigma) of z = [xu (d); y] on xu: y = F xu + f + N(0, N)."""
    s_xx = sigma[:d, :d] + ridge * np.eye(d)
    s_xy = sigma[:d, d:]
    F = np.linalg.solve(s_xx, s_xy).T  # (obs, d)
    f = mu[d:] - F @ mu[:d]
    N = sigma[d:, d:] - F @ s_xy
    return F, f, 0.5 * (N + N.T)


def _psd_cholesky(N: np.ndarray) -> np.ndarray:
    """(T, obs, obs) Cholesky factors of the noise covariances, clipped to be PSD."""
    w, v = np.linalg.eigh(N)
    return np.linalg.cholesky(v @ (np.clip(w, 1e-12, None)[..., None] * np.swapaxes(v, -1, -2)))
