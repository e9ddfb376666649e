"""Probabilistic ensemble of Gaussian state-delta networks (PETS; MBPO sec. 4.1).

Every member is an MLP with a Gaussian head N(mu, exp(logvar)) over the standardised delta.
The members are one set of tensors: each layer's weight is (members, in, out) and the whole
ensemble runs with one `torch.baddbmm` per layer. The log-variance is soft-clamped between a
learned per-member upper and lower bound, as in PETS/MBPO, so it cannot run off to +-inf outside
the data; a small penalty pulls the bounds together. Each member trains on its own bootstrap
resample; it keeps its weights from the epoch with its best holdout MSE, and the `elites` are
the members best on the holdout. `step` picks a random elite per sample per step (MBPO) and
runs each sample through that elite only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.dynamics_base import ModelState, Transitions
from engine.models.mlp import activation
from engine.models.normalizer import Normalizer
from engine.models.training import (
    FitConfig, as_float32, check_transitions, deltas, holdout_mask, rollout_by_steps, seeded_init,
)

STEP_MODES = ("sample", "member", "mean")


@dataclass(frozen=True)
class EnsembleConfig:
    """Probabilistic ensemble (MBPO's code defaults unless said otherwise)."""

    members: int = 7
    """Networks in the ensemble (MBPO: 7)."""
    elites: int = 5
    """Members kept for prediction, best on the holdout (MBPO: 5)."""
    hidden: int = 200
    """Width of each hidden layer (MBPO: 200)."""
    layers: int = 4
    """Hidden layers (MBPO: 4)."""
    activation: str = "silu"
    """Hidden activation (MBPO: swish = SiLU)."""
    max_logvar: float = 0.5
    """Initial upper bound of the standardised log-variance (MBPO's code: 0.5)."""
    min_logvar: float = -10.0
    """Initial lower bound of the standardised log-variance (MBPO's code: -10)."""
    logvar_bound_penalty: float = 0.01
    """Weight of sum(max_logvar) - sum(min_logvar) in the loss (MBPO's code: 0.01)."""
    bootstrap: bool = True
    """Train each member on its own resample with replacement (PETS/MBPO)."""
    step_mode: str = "sample"
    """`step`: "sample" (random elite, then a draw from its Gaussian: MBPO), "member" (random
    elite's mean) or "mean" (mean of the elites' means)."""
    fit: FitConfig = field(default_factory=lambda: FitConfig(batch_size=256, weight_decay=5e-5))
    """Adam and early stopping (MBPO: batch 256, lr 1e-3, weight decay 2.5e-5..1e-4 on weights)."""
    seed: int = 0
    """Seeds initial weights, holdout split, bootstrap, minibatch order and member choice."""

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.members:
            raise ValueError("need 1 <= elites <= members")
        if self.step_mode not in STEP_MODES:
            raise ValueError(f"step_mode must be one of {STEP_MODES}, not {self.step_mode!r}")


class EnsembleLinear(nn.Module):
    """`members` independent affine maps applied in one batched matmul."""

    def __init__(self, members: int, n_in: int, n_out: int) -> None:
        super().__init__()
        std = 1.0 / (2.0 * math.sqrt(n_in))  # MBPO's truncated-normal initialisation
        self.weight = nn.Parameter(nn.init.trunc_normal_(torch.empty(members, n_in, n_out), std=std,
                                                         a=-2 * std, b=2 * std))
        self.bias = nn.Parameter(torch.zeros(members, 1, n_out))

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        """(members, batch, in) -> (members, batch, out); with `members` (k,) indices, only those
        members: (k, batch, in) -> (k, batch, out)."""
        if members is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[members], x, self.weight[members])


class GaussianEnsemble(nn.Module):
    """Ensemble of Gaussian delta models; `step` differentiable (reparameterised sampling)."""

    differentiable = True

    def __init__(self, obs_dim: int, act_dim: int, config: EnsembleConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or EnsembleConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        M, widths = c.members, [obs_dim + act_dim] + [c.hidden] * c.layers + [2 * obs_dim]
        self.layers = seeded_init(c.seed, lambda: nn.ModuleList(
            EnsembleLinear(M, a, b) for a, b in zip(widths[:-1], widths[1:])))
        self.act = activation(c.activation)
        self.max_logvar = nn.Parameter(torch.full((M, 1, obs_dim), c.max_logvar))
        self.min_logvar = nn.Parameter(torch.full((M, 1, obs_dim), c.min_logvar))
        self.in_norm = Normalizer(obs_dim + act_dim)
        self.out_norm = Normalizer(obs_dim)
        self.register_buffer("elite_idx", torch.arange(c.elites))
        self.step_mode = c.step_mode  # settable later, e.g. "mean" for evaluation
        self._gen = torch.Generator().manual_seed(c.seed)
        self._step_gen = torch.Generator().manual_seed(c.seed + 1)
        self._rng = np.random.default_rng(c.seed)
        # (n,) bool over the rows of the last fit's data: never trained on (holdout starts)
        self.held_out: np.ndarray | None = None

    @property
    def elites(self) -> list[int]:
        """Indices of the elite members, best holdout MSE first."""
        return self.elite_idx.tolist()

    def forward_normalized(self, xn: Tensor, members: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Standardised inputs (members, batch, in) -> mean, log-variance (members, batch, obs_dim);
        with `members` (k,) indices, only those members run: (k, batch, in) -> (k, batch, obs_dim)."""
        h = xn
        for layer in self.layers[:-1]:
            h = self.act(layer(h, members))
        mu, logvar = self.layers[-1](h, members).chunk(2, dim=-1)
        hi, lo = (self.max_logvar, self.min_logvar) if members is None else (
            self.max_logvar[members], self.min_logvar[members])
        logvar = hi - F.softplus(hi - logvar)
        logvar = lo + F.softplus(logvar - lo)
        return mu, logvar

    def _normalized_inputs(self, obs: Tensor, action: Tensor) -> Tensor:
        """(batch, in): standardised [obs, action]."""
        return self.in_norm.normalize(torch.cat([obs, action], dim=-1))

    def _inputs(self, obs: Tensor, action: Tensor) -> Tensor:
        return self._normalized_inputs(obs, action).unsqueeze(0).expand(self.config.members, -1, -1)

    def _next_obs(self, obs: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised delta mean and log-variance -> next-observation mean and variance."""
        return obs + self.out_norm.denormalize(mu), logvar.exp() * self.out_norm.std.pow(2)

    def predict_members(self, obs: Tensor, action: Tensor, members: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Every member's next-observation mean and variance, each (members, batch, obs_dim); with
        `members` (k,) indices, only those members are computed: (k, batch, obs_dim)."""
        xn = self._normalized_inputs(obs, action)
        k = self.config.members if members is None else len(members)
        return self._next_obs(obs, *self.forward_normalized(xn.unsqueeze(0).expand(k, -1, -1), members))

    def step(self, state: ModelState, action: Tensor) -> ModelState:
        """One step as `step_mode` says, computing only what it uses: the elites for "mean", and
        for "sample" / "member" each sample through its drawn elite only (`_predict_drawn`), a
        seventh of the arithmetic of running all 7 members on every sample."""
        if self.step_mode == "mean":
            return self.next_state(*self.predict_members(state.obs, action, self.elite_idx))
        draw = self._draw(state.obs.shape[0])
        mean, var = self._predict_drawn(state.obs, action, draw)
        return self._sampled(mean, var)

    def next_state(self, mean: Tensor, var: Tensor) -> ModelState:
        """The next state from the elites' predictions, each (elites, batch, obs_dim) in the
        order of `elite_idx` (`predict_members(obs, action, model.elite_idx)`), as `step_mode`
        says (for callers that also need the elites' spread: they predict once)."""
        if self.step_mode == "mean":
            return ModelState(obs=mean.mean(0))
        draw = self._draw(mean.shape[1])
        rows = torch.arange(mean.shape[1])
        return self._sampled(mean[draw, rows], var[draw, rows])  # (batch, obs_dim): elite draw[i] for sample i

    def _draw(self, batch: int) -> Tensor:
        """(batch,) positions in `elite_idx`: the elite each sample steps with."""
        return torch.randint(len(self.elite_idx), (batch,), generator=self._step_gen)

    def _sampled(self, mean: Tensor, var: Tensor) -> ModelState:
        """(batch, obs_dim) drawn elites' mean and variance -> the next state ("sample": a draw)."""
        if self.step_mode == "sample":
            noise = torch.randn(mean.shape, generator=self._step_gen, dtype=mean.dtype)
            mean = mean + var.sqrt() * noise
        return ModelState(obs=mean)

    def _predict_drawn(self, obs: Tensor, action: Tensor, draw: Tensor) -> tuple[Tensor, Tensor]:
        """Each sample's next-observation mean and variance under its drawn elite only, each
        (batch, obs_dim). The samples are grouped by elite into one (elites, largest group, in)
        tensor (zero-padded), so the ensemble still runs as one batched matmul per layer, on
        about batch x (1 + group imbalance) rows instead of members x batch."""
        e = len(self.elite_idx)
        order = torch.argsort(draw, stable=True)  # samples grouped by elite
        counts = torch.bincount(draw, minlength=e)  # (elites,)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.empty_like(draw)
        slot[order] = torch.arange(len(draw)) - starts[draw[order]]  # (batch,) row within its group
        xn = self._normalized_inputs(obs, action)
        grouped = xn.new_zeros(e, int(counts.max()), xn.shape[-1]).index_put((draw, slot), xn)
        mu, logvar = self.forward_normalized(grouped, self.elite_idx)  # (elites, largest group, obs_dim)
        return self._next_obs(obs, mu[draw, slot], logvar[draw, slot])

    def rollout(self, state: ModelState, actions: Tensor) -> Tensor:
        return rollout_by_steps(self.step, state, actions)

    def nll(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """(members,) mean Gaussian negative log-likelihood per dimension of the standardised delta."""
        mu, logvar = self.forward_normalized(self._inputs(obs, action))
        return _gaussian_nll(mu, logvar, self.out_norm.normalize(next_obs - obs).unsqueeze(0))

    def fit(self, data: Transitions) -> dict[str, float]:
        """Bootstrap NLL training with per-member early stopping on the holdout MSE; sets `elites`.

        Metrics: train_loss = last epoch's mean NLL per member (standardised), holdout_mse of
        the elites and of all members (standardised deltas), epochs, row counts.
        """
        check_transitions(data)
        c, f = self.config, self.config.fit
        held = holdout_mask(data.episode, f.holdout_ratio, f.max_holdout, 1, self._rng)
        self.held_out = held
        x = np.concatenate([np.asarray(data.obs, np.float64), np.asarray(data.action, np.float64)], axis=1)
        d = deltas(data)
        self.in_norm.fit(x[~held])
        self.out_norm.fit(d[~held])
        X, Y = self.in_norm.normalize(as_float32(x)), self.out_norm.normalize(as_float32(d))
        train = torch.as_tensor(np.flatnonzero(~held))
        hold = torch.as_tensor(np.flatnonzero(held)) if held.any() else train
        M, n = c.members, len(train)
        boot = (torch.as_tensor(self._rng.integers(n, size=(M, n))) if c.bootstrap
                else torch.arange(n).expand(M, n))

        def holdout_mse() -> Tensor:  # (members,)
            with torch.no_grad():
                mu, _ = self.forward_normalized(X[hold].expand(M, -1, -1))
                return (mu - Y[hold]).pow(2).mean(dim=(1, 2))

        opt = torch.optim.Adam(self.parameters(), lr=f.lr)
        best = holdout_mse()
        snapshot = {k: v.detach().clone() for k, v in self.named_parameters()}
        since, epoch, last = 0, 0, float("nan")
        for epoch in range(1, f.max_epochs + 1):
            order = torch.argsort(torch.rand(M, n, generator=self._gen), dim=1)
            rows = train[torch.gather(boot, 1, order)]  # (members, n): each member's own shuffle
            total = 0.0
            for i in range(0, n, f.batch_size):
                idx = rows[:, i:i + f.batch_size]
                mu, logvar = self.forward_normalized(X[idx])
                # members' losses are summed so each member gets its own, unscaled gradient
                nll = _gaussian_nll(mu, logvar, Y[idx]).sum()
                loss = nll + c.logvar_bound_penalty * (self.max_logvar.sum() - self.min_logvar.sum())
                # L2 on weights only (MBPO): decaying the log-variance bounds would bias them
                loss = loss + 0.5 * f.weight_decay * sum(layer.weight.pow(2).sum() for layer in self.layers)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += nll.item() * idx.shape[1]
            last = total / n / M
            current = holdout_mse()
            improved = current < best - f.min_improvement * best.abs()
            if improved.any():
                best = torch.where(improved, current, best)
                with torch.no_grad():
                    for k, v in self.named_parameters():
                        snapshot[k][improved] = v[improved]
                since = 0
            else:
                since += 1
                if since > f.patience:
                    break
        with torch.no_grad():
            for k, v in self.named_parameters():
                v.copy_(snapshot[k])
        self.elite_idx.copy_(torch.argsort(best)[: c.elites])
        return {
            "epochs": float(epoch), "train_loss": last,
            "holdout_mse": float(best[self.elite_idx].mean()), "holdout_mse_all": float(best.mean()),
            "n_train": float(n), "n_holdout": float(held.sum()),
        }


class SpreadTracking:
    """The ensemble stepping as usual, keeping each step's disagreement per sample: the L2 norm
    over dimensions of the std (Bessel-corrected) across elites of the predicted next-observation
    means, in observation units like an L2 prediction error. Needs >= 2 elites."""

    differentiable = False

    def __init__(self, ensemble: GaussianEnsemble) -> None:
        if len(ensemble.elites) < 2:
            raise ValueError("disagreement needs at least 2 elites")
        self.ensemble = ensemble
        self._spread: list[Tensor] = []  # (batch,) per step since the last `take`

    def step(self, state: ModelState, action: Tensor) -> ModelState:
        ens = self.ensemble
        mean, var = ens.predict_members(state.obs, action, ens.elite_idx)  # (elites, batch, obs_dim)
        self._spread.append(self.reduce(mean.std(dim=0)))
        return ens.next_state(mean, var)

    @staticmethod
    def reduce(spread: Tensor) -> Tensor:
        """A step's (batch, obs_dim) per-dimension spread -> what `take` returns for it: the
        L2 norm over dimensions, (batch,). Subclasses may keep more."""
        return spread.norm(dim=-1)

    def rollout(self, state: ModelState, actions: Tensor) -> Tensor:
        return rollout_by_steps(self.step, state, actions)

    def take(self) -> list[Tensor]:
        """Each step's disagreement (`reduce`d, (batch,)) since the last call, oldest first."""
        values, self._spread = self._spread, []
        return values


def _gaussian_nll(mu: Tensor, logvar: Tensor, target: Tensor) -> Tensor:
    """(members,) NLL averaged over batch and dimensions; target broadcasts to mu."""
    nll = 0.5 * ((mu - target).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi))
    return nll.mean(dim=(1, 2))
