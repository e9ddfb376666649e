"""Several MLPs of one shape evaluated together: one batched matmul per layer (SAC's twin critics).

Two separate critics cost two forward chains of small ops (and twice the autograd nodes and
optimiser parameters); stacking their weights runs both Q-heads with one `bmm` per layer.
The result is the same function as the separate networks, member by member (a test checks
forward and gradients against `nn.Sequential` copies); `member(i)` returns such a copy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class StackedMLP(nn.Module):
    """`members` MLPs with identical layer sizes; forward gives every member's output at once.

    Weights are stored as (members, in, out) so that a layer is `bmm(h, weight) + bias`.
    """

    def __init__(self, nets: Sequence[nn.Sequential]) -> None:
        super().__init__()
        if not nets:
            raise ValueError("StackedMLP needs at least one network")
        layers = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        acts = [m for m in nets[0] if not isinstance(m, nn.Linear)]
        if any([tuple(x.weight.shape) for x in ls] != [tuple(x.weight.shape) for x in layers[0]] for ls in layers):
            raise ValueError("stacked networks must have identical layer sizes")
        if len(nets[0]) != 2 * len(layers[0]) - 1 or len({type(a) for a in acts}) > 1:
            raise ValueError("stacked networks must alternate Linear layers and one activation (engine.models.mlp)")
        with torch.no_grad():
            # (members, in, out) and (members, 1, out) per layer
            self.weights = nn.ParameterList(
                nn.Parameter(torch.stack([ls[k].weight.T for ls in layers]).contiguous()) for k in range(len(layers[0]))
            )
            self.biases = nn.ParameterList(
                nn.Parameter(torch.stack([ls[k].bias for ls in layers]).unsqueeze(1)) for k in range(len(layers[0]))
            )
        # bias and ReLU in place on the fresh matmul output (bmm's backward does not need it): one
        # (members, batch, hidden) buffer fewer per layer
        self.act = nn.ReLU(inplace=True) if acts and isinstance(acts[0], nn.ReLU) else (acts[0] if acts else nn.Identity())

    @property
    def members(self) -> int:
        """Number of stacked networks."""
        return self.weights[0].shape[0]

    def forward(self, x: Tensor) -> Tensor:
        """(batch, in), shared by all members, or (members, batch, in) -> (members, batch, out)."""
        h = x.expand(self.members, *x.shape) if x.dim() == 2 else x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.bmm(h, w).add_(b)  # faster than baddbmm(b, h, w): no broadcast copy of b first
            if k < last:
                h = self.act(h)
        return h

    def member(self, i: int) -> nn.Sequential:
        """A separate `nn.Sequential` copy of member `i` (same weights; not tied to this module)."""
        mods: list[nn.Module] = []
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            lin = nn.Linear(w.shape[1], w.shape[2])
            with torch.no_grad():
                lin.weight.copy_(w[i].T)
                lin.bias.copy_(b[i, 0])
            mods.append(lin)
            if k < len(self.weights) - 1:
                mods.append(type(self.act)())
        return nn.Sequential(*mods).to(self.weights[0].dtype)
