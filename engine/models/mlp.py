"""The multilayer perceptron every model and critic is built from."""

from __future__ import annotations

from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU, "elu": nn.ELU,
}


def mlp(n_in: int, n_out: int, hidden: int = 256, layers: int = 2, activation: str = "relu") -> nn.Sequential:
    """`layers` hidden layers of width `hidden`, linear output."""
    act = _ACTIVATIONS[activation]
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), act()]
        width = hidden
    mods.append(nn.Linear(width, n_out))
    return nn.Sequential(*mods)


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (the names `mlp` accepts)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()
