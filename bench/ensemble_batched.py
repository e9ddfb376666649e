"""Batched ensemble (7 members, one batched matmul per layer) vs 7 separate models (issue 8).

Both sides compute the same thing: MBPO's ensemble (4 x 200 SiLU layers, Gaussian head with
soft log-variance bounds) on HalfCheetah-sized inputs (17 + 6 -> 2 x 17). The separate models
are built from the ensemble's own weights, and the bench first checks that both give the same
outputs, so the ratio compares two implementations of one function. Timed, interleaved:

- `train`: a fit step (forward on (members, batch, in), Gaussian NLL, backward, Adam step);
- `rollout`: a no-grad forward of a rollout batch through every member (the same FLOPs on
  both sides: what batching alone buys);
- `step`: MBPO's model step on a rollout batch (`step_mode` "sample": each state steps with a
  random elite): `GaussianEnsemble._predict_drawn` (each state through its drawn elite only,
  grouped into one batched matmul per layer) vs the separate models each run on the states
  that drew it, and vs the ensemble's step before (every member on every state, then a pick).

    python bench/ensemble_batched.py [--batch 256] [--rollout-batch 1000] [--repeats 7]

Prints medians of per-pair ratios other/batched (> 1: the batched ensemble is faster); goal >= 3.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's engine first
from torch.nn import functional as F

from engine.models.ensemble import EnsembleConfig, GaussianEnsemble  # noqa: E402 - after the path

OBS, ACT = 17, 6


class Separate(nn.Module):
    """The ensemble's members as `members` independent nn.Sequential MLPs (same weights)."""

    def __init__(self, ens: GaussianEnsemble) -> None:
        super().__init__()
        self.nets = nn.ModuleList()
        for m in range(ens.config.members):
            layers: list[nn.Module] = []
            for i, el in enumerate(ens.layers):
                lin = nn.Linear(el.weight.shape[1], el.weight.shape[2])
                with torch.no_grad():
                    lin.weight.copy_(el.weight[m].T)
                    lin.bias.copy_(el.bias[m, 0])
                layers.append(lin)
                if i < len(ens.layers) - 1:
                    layers.append(nn.SiLU())
            self.nets.append(nn.Sequential(*layers))
        self.max_logvar = nn.Parameter(ens.max_logvar.detach().clone())  # (members, 1, obs)
        self.min_logvar = nn.Parameter(ens.min_logvar.detach().clone())

    def predict_drawn(self, ens: GaussianEnsemble, obs: Tensor, action: Tensor, draw: Tensor) -> tuple[Tensor, Tensor]:
        """Each state through the elite it drew (`draw`: (batch,) positions in the elites), one
        member model at a time on its states: next-observation mean and variance (batch, obs)."""
        xn = ens._normalized_inputs(obs, action)
        mu, logvar = xn.new_empty(len(xn), OBS), xn.new_empty(len(xn), OBS)
        for k, m in enumerate(ens.elites):
            rows = torch.nonzero(draw == k).squeeze(1)
            out_mu, out_logvar = self.forward_member(m, xn[rows])
            mu[rows], logvar[rows] = out_mu, out_logvar
        return ens._next_obs(obs, mu, logvar)

    def forward_member(self, m: int, xn: Tensor) -> tuple[Tensor, Tensor]:
        """(batch, in) -> mean, log-variance (batch, obs) of member m."""
        mu, logvar = self.nets[m](xn).chunk(2, dim=-1)
        logvar = self.max_logvar[m] - F.softplus(self.max_logvar[m] - logvar)
        return mu, self.min_logvar[m] + F.softplus(logvar - self.min_logvar[m])

    def forward(self, xn: Tensor) -> tuple[Tensor, Tensor]:
        """(members, batch, in) -> mean, log-variance (members, batch, obs): one model per member."""
        mus, logvars = [], []
        for m in range(len(self.nets)):
            mu, logvar = self.forward_member(m, xn[m])
            mus.append(mu)
            logvars.append(logvar)
        return torch.stack(mus), torch.stack(logvars)


def nll(mu: Tensor, logvar: Tensor, target: Tensor) -> Tensor:
    return (0.5 * ((mu - target).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi))).mean()


def timed(fn: Callable[[], None], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256, help="fit mini-batch per member")
    ap.add_argument("--rollout-batch", type=int, default=1000, help="states per member in a rollout step")
    ap.add_argument("--repeats", type=int, default=7, help="interleaved timing pairs")
    ap.add_argument("--iters", type=int, default=30, help="calls per timing")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (both sides)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ens = GaussianEnsemble(OBS, ACT, EnsembleConfig())
    sep = Separate(ens)
    M = ens.config.members
    x = torch.randn(M, args.batch, OBS + ACT)  # (members, batch, in): bootstrap batches differ per member
    y = torch.randn(M, args.batch, OBS)
    xr = torch.randn(M, args.rollout_batch, OBS + ACT)
    with torch.no_grad():
        for a, b in zip(ens.forward_normalized(xr), sep(xr)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # same function on both sides

    obs, act = torch.randn(args.rollout_batch, OBS), torch.randn(args.rollout_batch, ACT)
    draw = torch.randint(ens.config.elites, (args.rollout_batch,))  # each state's elite (a position in elites)
    rows = torch.arange(args.rollout_batch)

    def all_members() -> tuple[Tensor, Tensor]:  # the step before: every member on every state, then a pick
        mean, var = ens.predict_members(obs, act)  # (members, batch, obs)
        return mean[ens.elite_idx[draw], rows], var[ens.elite_idx[draw], rows]

    with torch.no_grad():
        want = all_members()
        for got in (ens._predict_drawn(obs, act, draw), sep.predict_drawn(ens, obs, act, draw)):
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    opt_e = torch.optim.Adam(ens.parameters(), lr=1e-3)
    opt_s = torch.optim.Adam(sep.parameters(), lr=1e-3)

    def train(model: nn.Module, forward: Callable, opt: torch.optim.Optimizer) -> Callable[[], None]:
        def step() -> None:
            opt.zero_grad(set_to_none=True)
            nll(*forward(x), y).backward()
            opt.step()
        return step

    def rollout(forward: Callable) -> Callable[[], None]:
        def step() -> None:
            with torch.no_grad():
                forward(xr)
        return step

    def no_grad(fn: Callable[[], object]) -> Callable[[], None]:
        def step() -> None:
            with torch.no_grad():
                fn()
        return step

    cases = {
        "train": (train(ens, ens.forward_normalized, opt_e), train(sep, sep, opt_s)),
        "rollout": (rollout(ens.forward_normalized), rollout(sep)),
        "step": (no_grad(lambda: ens._predict_drawn(obs, act, draw)),
                 no_grad(lambda: sep.predict_drawn(ens, obs, act, draw))),
        "step vs all members": (no_grad(lambda: ens._predict_drawn(obs, act, draw)), no_grad(all_members)),
    }
    print(f"load {os.getloadavg()[0]:.1f}; {M} members, 4 x 200 SiLU, batch {args.batch}, "
          f"rollout batch {args.rollout_batch}, {args.threads} thread(s); CPU time per call")
    for name, (batched, separate) in cases.items():
        batched(), separate()  # warm-up
        ratios, tb, ts = [], [], []
        for _ in range(args.repeats):
            b = timed(batched, args.iters)
            s = timed(separate, args.iters)
            ratios.append(s / b)
            tb.append(b)
            ts.append(s)
        print(f"{name:19s} batched {statistics.median(tb) * 1e3:7.2f} ms  other "
              f"{statistics.median(ts) * 1e3:7.2f} ms  other/batched x{statistics.median(ratios):.2f} "
              f"(range x{min(ratios):.2f}-x{max(ratios):.2f}; goal >= x3)")


if __name__ == "__main__":
    main()
