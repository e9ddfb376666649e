"""A ReLU MLP chain (Linear, ReLU, ..., Linear) as one autograd node with a hand-written backward.

Autograd records five to six nodes per layer of an `nn.Sequential` (the weight's transpose, the
`addmm`, the ReLU, one gradient accumulation per parameter). `relu_chain` runs the same layers as
one node: the forward keeps each layer's input (the previous ReLU's output, which is also the
ReLU's mask), and the backward (`chain_backward`) is, per layer, `mm` for the weight and input
gradients, a `sum` for the bias and an in-place ReLU mask, only for the gradients asked for (a
frozen critic gets the input gradient alone). As an autograd node alone it measured within noise
of the modules; `chain_backward` is what the DDPG and SAC steps by hand are built on, and those
are x0.87-0.91 of the update's time (bench/README.md). In float32 the values and gradients are
autograd's bit for bit in the tests (tests/agents/test_agents_chain.py). Not supported through
`relu_chain`: forward-mode derivatives and double backward (no engine code takes either through
the agents' networks).

Two layouts: `nn.Linear` weights (out, in) on (batch, in) inputs, and `StackedMLP` weights
(members, in, out) on (members, batch, in) inputs with one `bmm` per layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from engine.agents.stacked import StackedMLP


def chain_forward(x: Tensor, params: Sequence[Tensor], stacked: bool, keep: list[Tensor] | None) -> Tensor:
    """The chain on x; appends every layer's input to `keep` if given. params = W1, b1, ..., Wn, bn."""
    h, last = x, len(params) // 2 - 1
    for k in range(last + 1):
        w, b = params[2 * k], params[2 * k + 1]
        if keep is not None:
            keep.append(h)
        # bmm + add_: no broadcast copy of the bias first (bench/README.md); addmm is as fast in 2-D
        h = torch.bmm(h, w).add_(b) if stacked else torch.addmm(b, h, w.t())
        if k < last:
            h = h.relu_()  # in place on the fresh output: it is the next layer's saved input and mask
    return h


def chain_backward(
    g: Tensor, inputs: Sequence[Tensor], params: Sequence[Tensor], stacked: bool, need: Sequence[bool],
    out: Sequence[Tensor | None] | None = None,
) -> tuple[Tensor | None, list[Tensor | None]]:
    """Back-propagate g (the output's gradient) through the chain whose layer inputs `chain_forward` kept.

    need = (input, W1, b1, ..., Wn, bn) flags of the gradients wanted; `out`, if given, holds
    buffers (like `params`, None where not wanted) that the parameter gradients are written into
    instead of new tensors. Returns (input gradient or None, [gW1, gb1, ..., gWn, gbn]).
    """
    n = len(inputs)
    grads: list[Tensor | None] = [None] * (2 * n)
    dest = out if out is not None else grads
    for k in range(n - 1, -1, -1):
        h, w = inputs[k], params[2 * k]
        if need[1 + 2 * k]:  # weight: (out, in) = g^T h, or (members, in, out) = h^T g per member
            o = dest[2 * k] if out is not None else None
            grads[2 * k] = torch.bmm(h.transpose(1, 2), g, out=o) if stacked else torch.mm(g.t(), h, out=o)
        if need[2 + 2 * k]:  # bias: (out,) or (members, 1, out)
            o = dest[2 * k + 1] if out is not None else None
            grads[2 * k + 1] = torch.sum(g, 1, keepdim=True, out=o) if stacked else torch.sum(g, 0, out=o)
        if k == 0 and not need[0]:
            return None, grads
        g = torch.bmm(g, w.transpose(1, 2)) if stacked else torch.mm(g, w)  # (.., batch, in)
        if k > 0:  # through the ReLU whose output h is: zero where it was cut, in place
            g = torch.ops.aten.threshold_backward.grad_input(g, h, 0.0, grad_input=g)
    return g, grads


class _ReluChain(torch.autograd.Function):
    """forward(x, stacked, W1, b1, ..., Wn, bn) -> output; see the module docstring."""

    @staticmethod
    def forward(ctx, x: Tensor, stacked: bool, *params: Tensor) -> Tensor:  # noqa: ANN001 - ctx
        keep: list[Tensor] = []
        out = chain_forward(x, params, stacked, keep)
        ctx.stacked, ctx.layers = stacked, len(keep)
        ctx.save_for_backward(*keep, *params)
        return out

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001 - ctx
        saved = ctx.saved_tensors
        need = ctx.needs_input_grad
        g_in, grads = chain_backward(g, saved[:ctx.layers], saved[ctx.layers:], ctx.stacked, (need[0], *need[2:]))
        return (g_in, None, *grads)


def chain_params(net: nn.Sequential | StackedMLP) -> list[Tensor] | None:
    """[W1, b1, ..., Wn, bn] of a ReLU MLP (`engine.models.mlp` or `StackedMLP`), or None if the
    net is not a chain of Linear layers with ReLUs between them (then call the net itself)."""
    if isinstance(net, StackedMLP):
        if not isinstance(net.act, nn.ReLU):
            return None
        return [p for w, b in zip(net.weights, net.biases, strict=True) for p in (w, b)]
    mods = list(net)
    if not mods or len(mods) % 2 == 0:
        return None
    if not all(isinstance(m, nn.Linear) for m in mods[0::2]) or not all(isinstance(m, nn.ReLU) for m in mods[1::2]):
        return None
    return [p for m in mods[0::2] for p in (m.weight, m.bias)]


def relu_chain(net: nn.Sequential | StackedMLP, x: Tensor) -> Tensor:
    """`net(x)` as one autograd node (or without one when no gradient is needed); nets that are
    not ReLU chains are called as they are.

    (batch, in) -> (batch, out) for an `nn.Sequential`; (batch, in) shared by all members or
    (members, batch, in) -> (members, batch, out) for a `StackedMLP`.
    """
    params = chain_params(net)
    if params is None:
        return net(x)
    stacked = isinstance(net, StackedMLP)
    if stacked and x.dim() == 2:
        x = x.expand(net.members, *x.shape)
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        return _ReluChain.apply(x, stacked, *params)
    return chain_forward(x, params, stacked, None)


def grad_buffers(params: Sequence[Tensor]) -> list[Tensor]:
    """Each parameter's `.grad`, made (uninitialised: `chain_backward` overwrites it) if None:
    the steps by hand write every update's gradients into the same buffers."""
    for p in params:
        if p.grad is None:
            p.grad = torch.empty_like(p)
    return [p.grad for p in params]
