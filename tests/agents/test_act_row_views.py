"""`mlp_row` keeps numpy views of a net's parameters between calls: it must always compute with
the net's current weights (after training steps, a new Parameter, a new module, a loaded state,
a dtype change), agree with the torch forward, and not keep a dropped net alive."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from engine.agents.common import _ROW_PLANS, mlp_row


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3), nn.Tanh())


def _torch_row(net: nn.Sequential, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.as_tensor(obs, dtype=next(net.parameters()).dtype)).numpy()


OBS = np.random.default_rng(0).normal(size=5).astype(np.float32)


def _check(net: nn.Sequential) -> None:
    np.testing.assert_allclose(mlp_row(net, OBS), _torch_row(net, OBS), rtol=1e-5, atol=1e-6)


def test_views_follow_adam_steps_in_place() -> None:
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    before = mlp_row(net, OBS).copy()
    for _ in range(3):
        opt.zero_grad()
        net(torch.as_tensor(OBS)).sum().backward()
        opt.step()
        _check(net)
    assert not np.allclose(before, mlp_row(net, OBS))  # the steps changed the output


@pytest.mark.parametrize("change", ["parameter", "module", "load_state_dict", "data", "double"])
def test_views_are_rebuilt_when_the_net_changes(change: str) -> None:
    net = _net()
    _check(net)
    if change == "parameter":
        net[2].weight = nn.Parameter(torch.randn(16, 16))
    elif change == "module":
        net[4] = nn.Linear(16, 3)
    elif change == "load_state_dict":  # copies into the same storages: the old views stay right
        net.load_state_dict({k: torch.randn_like(v) for k, v in net.state_dict().items()})
    elif change == "data":
        net[0].bias.data = torch.randn(16)
    else:
        net.double()
    _check(net)


def test_a_dropped_net_is_freed_with_its_views() -> None:
    net = _net()
    mlp_row(net, OBS)
    assert net in _ROW_PLANS
    ref = weakref.ref(net)
    del net
    gc.collect()
    assert ref() is None
