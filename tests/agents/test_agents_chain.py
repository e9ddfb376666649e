"""The hand-written backward equals autograd: `relu_chain` against the nn modules it replaces, and
the DDPG and SAC steps by hand against the same steps through autograd, update after update."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agent_kit import ACT_SPACE, OBS_SPACE, SMALL, random_batch
from engine.agents import DDPG, SAC, DDPGConfig, SACConfig, sac_steps
from engine.agents.chain import chain_params, relu_chain
from engine.agents.stacked import StackedMLP
from engine.agents.svg import PathwiseSAC
from engine.models.mlp import mlp

UNIT_BOX = spaces.Box(-np.ones(2, np.float32), np.ones(2, np.float32))


def _nets(stacked: bool, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(3)
    net = StackedMLP([mlp(7, 3, 32, 2) for _ in range(2)]) if stacked else mlp(7, 3, 32, 3)
    net = net.to(dtype)
    return net, copy.deepcopy(net)


@pytest.mark.parametrize("stacked", [False, True])
@pytest.mark.parametrize(("input_grad", "weight_grads"), [(True, True), (True, False), (False, True)])
def test_relu_chain_equals_the_modules_in_value_and_every_gradient(stacked: bool, input_grad: bool,
                                                                   weight_grads: bool) -> None:
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 0.0)):
        net, ref = _nets(stacked, dtype)
        for n in (net, ref):
            n.requires_grad_(weight_grads)
        x = torch.randn(50, 7, dtype=dtype, requires_grad=input_grad)
        x_ref = x.detach().clone().requires_grad_(input_grad)
        out, out_ref = relu_chain(net, x), ref(x_ref)
        torch.testing.assert_close(out, out_ref, rtol=0, atol=tol)
        w = torch.randn(out.shape, dtype=dtype)  # a loss weighing every output (and member) differently
        (w * out).sum().backward()
        (w * out_ref).sum().backward()
        if input_grad:
            torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=tol)
        for p, q in zip(net.parameters(), ref.parameters(), strict=True):
            assert (p.grad is None) == (q.grad is None) == (not weight_grads)
            if weight_grads:
                torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=tol)


def test_relu_chain_without_gradients_and_for_other_activations() -> None:
    net, ref = _nets(False, torch.float32)
    x = torch.randn(9, 7)
    with torch.no_grad():
        assert torch.equal(relu_chain(net, x), ref(x))
    tanh_net = mlp(7, 3, 16, 2, "tanh")
    assert chain_params(tanh_net) is None and chain_params(net) is not None
    assert torch.equal(relu_chain(tanh_net, x), tanh_net(x))  # not a ReLU chain: the module itself


def _run(agent: DDPG | SAC, steps: Callable, act_space: spaces.Box) -> list[torch.Tensor]:
    """The step functions' outputs over five updates (new batches, the agent's own targets)."""
    out: list[torch.Tensor] = []
    for k in range(5):
        batch = random_batch(seed=k, act_space=act_space)
        data = agent.targets(batch, agent)
        out += [t.detach().clone() for t in steps(agent, data, batch.obs)]
    return out


def _params(agent: DDPG | SAC) -> list[torch.Tensor]:
    if isinstance(agent, DDPG):
        return [*agent.actor.parameters(), *agent.critic.parameters()]
    return [*agent.actor.parameters(), *agent.critics.parameters(), agent.log_alpha]


def _assert_same_training(agent: DDPG | SAC, act_space: spaces.Box, hand_steps: Callable, auto_steps: Callable) -> None:
    """Five updates each way: losses, Q values, log-probs, gradients and parameters agree to float32
    rounding (the DDPG steps bit for bit), and training moved the parameters."""
    hand, auto = agent, copy.deepcopy(agent)
    before = [p.detach().clone() for p in _params(hand)]
    got, want = _run(hand, hand_steps, act_space), _run(auto, auto_steps, act_space)
    exact = isinstance(hand, DDPG)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0 if exact else 1e-5, atol=0 if exact else 1e-6)
    for p, q, p0 in zip(_params(hand), _params(auto), before, strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=0 if exact else 1e-5, atol=0 if exact else 1e-7)
        torch.testing.assert_close(p, q, rtol=0 if exact else 1e-6, atol=0 if exact else 1e-6)
    assert not all(torch.equal(p, p0) for p, p0 in zip(_params(hand), before, strict=True))


@pytest.mark.parametrize("act_space", [ACT_SPACE, UNIT_BOX], ids=["box", "unit-box"])
def test_ddpg_steps_by_hand_equal_the_autograd_steps(act_space: spaces.Box) -> None:
    agent = DDPG(OBS_SPACE, act_space, SMALL["ddpg"], seed=0)
    _assert_same_training(agent, act_space, lambda a, d, o: a._steps_by_hand(d, o), lambda a, d, o: a._steps_by_autograd(d, o))


@pytest.mark.parametrize("act_space", [ACT_SPACE, UNIT_BOX], ids=["box", "unit-box"])
def test_sac_steps_by_hand_equal_the_autograd_steps(act_space: spaces.Box) -> None:
    # a temperature far from 1 and a wide log-std range, so that every term of the actor's gradient counts
    cfg = SACConfig(hidden=16, batch_size=32, actor_lr=1e-3, critic_lr=1e-3, init_alpha=0.7, log_std_min=-3.0)
    agent = SAC(OBS_SPACE, act_space, cfg, seed=0)

    def by_hand(a: SAC, data, obs):  # noqa: ANN001, ANN202
        return (*sac_steps.critic_step(a, data), *sac_steps.actor_step(a, obs, -1.5))

    def by_autograd(a: SAC, data, obs):  # noqa: ANN001, ANN202
        return (*SAC._critic_step(a, data), *SAC._actor_step(a, obs, -1.5))

    _assert_same_training(agent, act_space, by_hand, by_autograd)


def test_update_takes_the_steps_by_hand_for_relu_nets_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for name in ("critic_step", "actor_step"):
        fn = getattr(sac_steps, name)
        monkeypatch.setattr(sac_steps, name, lambda *a, _fn=fn, _n=name: calls.append(_n) or _fn(*a))
    by_hand = DDPG._steps_by_hand
    monkeypatch.setattr(DDPG, "_steps_by_hand", lambda *a: calls.append("ddpg") or by_hand(*a))
    batch = random_batch()
    for activation, expected in (("relu", ["critic_step", "actor_step", "ddpg"]), ("tanh", [])):
        calls.clear()
        SAC(OBS_SPACE, ACT_SPACE, SACConfig(hidden=16, activation=activation), seed=0).update(batch)
        DDPG(OBS_SPACE, ACT_SPACE, DDPGConfig(hidden=16, activation=activation), seed=0).update(batch)
        assert calls == expected
    calls.clear()  # SVG(H)'s own actor loss goes through autograd; its critic step is SAC's
    PathwiseSAC(OBS_SPACE, ACT_SPACE, SACConfig(hidden=16), seed=0).update(batch)
    assert calls == ["critic_step"]
