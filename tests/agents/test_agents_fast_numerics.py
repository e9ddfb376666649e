"""The cheaper update paths compute what they replace: FusedAdam vs Adam(fused=True), the identity
action scale, SAC's log-prob from its own draw, in-place ReLUs, Polyak over several networks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agent_kit import OBS_SPACE, SMALL, random_batch
from engine.agents import DDPG, SAC
from engine.agents.common import ActionScale, FusedAdam, polyak_update, relu_in_place
from engine.agents.sac import _drawn_log_prob, tanh_gaussian_log_prob
from engine.models.mlp import mlp

UNIT_BOX = spaces.Box(-np.ones(2, np.float32), np.ones(2, np.float32))


def _params(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(5, 4, generator=g, requires_grad=True), torch.randn(4, generator=g, requires_grad=True),
            torch.randn((), generator=g, requires_grad=True)]


def test_fused_adam_equals_torch_adam_bit_for_bit_and_takes_its_short_path(monkeypatch: pytest.MonkeyPatch) -> None:
    ours, ref = _params(0), _params(0)

    def groups(p: list[torch.Tensor]) -> list[dict]:  # two groups, one with weight decay (SAC: actor + alpha)
        return [{"params": p[:2], "lr": 1e-2, "weight_decay": 0.1}, {"params": p[2:], "lr": 5e-3}]

    opt, ref_opt = FusedAdam(groups(ours), betas=(0.8, 0.99)), torch.optim.Adam(groups(ref), betas=(0.8, 0.99), fused=True)
    adam_step, long_steps = torch.optim.Adam.step, []

    def counting(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        if isinstance(self, FusedAdam):
            long_steps.append(1)
        return adam_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", counting)
    g = torch.Generator().manual_seed(1)
    for k in range(6):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for o, r, gr in zip(ours, ref, grads, strict=True):
            # at step 3 the scalar gets no gradient: both optimisers must leave it (and its state) alone
            o.grad, r.grad = (None, None) if (k == 3 and o.dim() == 0) else (gr.clone(), gr.clone())
        opt.step()
        ref_opt.step()
        for o, r in zip(ours, ref, strict=True):
            assert torch.equal(o, r)
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(opt.state[o][key], ref_opt.state[r][key])
        opt.zero_grad()
        assert all(p.grad is None for p in ours)
    assert len(long_steps) == 1  # only the first step (state made lazily) went through Adam.step
    # the state dict is Adam's: a torch Adam continues where FusedAdam stopped
    ref_opt.load_state_dict(opt.state_dict())


def test_identity_action_scale_is_exact_on_the_unit_box() -> None:
    assert ActionScale(UNIT_BOX).identity and not ActionScale(spaces.Box(-2.0, 2.0, (2,))).identity
    for cls in (SAC, DDPG):
        fast = cls(OBS_SPACE, UNIT_BOX, SMALL[cls.__name__.lower()], seed=0)
        slow = copy.deepcopy(fast)
        slow.scale.identity = False  # the affine maps with centre 0 and half-range 1
        for k in range(3):
            batch = random_batch(seed=k, act_space=UNIT_BOX)
            assert fast.update(batch) == slow.update(batch)
        for a, b in zip(fast.state_dict().values(), slow.state_dict().values(), strict=True):
            if isinstance(a, torch.Tensor):
                assert torch.equal(a, b)


def test_log_prob_of_the_own_draw_equals_the_general_one_in_value_and_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    mean = (2.0 * torch.randn(64, 3, generator=g)).requires_grad_()
    log_std = (torch.rand(64, 3, generator=g) * 3.0 - 2.0).requires_grad_()
    eps = torch.randn(64, 3, generator=g)
    grads = []
    for fn in (lambda u: _drawn_log_prob(u, eps, log_std), lambda u: tanh_gaussian_log_prob(u, mean, log_std)):
        u = mean + log_std.exp() * eps
        lp = fn(u)
        grads.append((lp.detach(), *torch.autograd.grad(lp.sum(), [mean, log_std])))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_in_place_relus_give_the_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    net = mlp(3, 2, 16, 2, "relu")
    fast = copy.deepcopy(net)
    relu_in_place(fast)
    assert [m.inplace for m in fast if isinstance(m, torch.nn.ReLU)] == [True, True]
    x = torch.randn(8, 3, requires_grad=True)
    for n in (net, fast):
        n(x).square().sum().backward()
    assert torch.equal(net(x), fast(x))
    for a, b in zip(net.parameters(), fast.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)


def test_polyak_over_several_networks_equals_one_call_per_network() -> None:
    torch.manual_seed(0)
    online, target = [mlp(3, 2, 8), mlp(4, 1, 8)], [mlp(3, 2, 8), mlp(4, 1, 8)]
    separate = copy.deepcopy(target)
    polyak_update(target, online, 0.3)
    for t, o in zip(separate, online, strict=True):
        polyak_update(t, o, 0.3)
    for a, b in zip(target, separate, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(ValueError, match="differ"):
        polyak_update(target, online[:1], 0.3)
