"""The pathwise actor of SAC-SVG(H) and MAAC (engine/agents/svg.py): SAC at H = 0, explicit
sums and finite differences through a hand-made linear model, real models' gradients."""

from __future__ import annotations

import pytest
import torch
from agent_kit import ACT_SPACE, OBS_DIM, OBS_SPACE, SMALL, random_batch
from torch import nn

from engine.agents import SAC
from engine.agents.svg import PathwiseSAC
from engine.models.dynamics_base import ModelState
from engine.models.ensemble import GaussianEnsemble
from engine.models.gru import GRUDynamics
from engine.models.imagination import ModelImagination

ACT_DIM = 2


class _LinearWorld(nn.Module):
    """s' = A s + B a, r = -|s'|^2 - 0.1 |a|^2, termination probability 0.25 at every step."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.A = nn.Parameter(0.9 * torch.eye(OBS_DIM) + 0.1 * torch.randn(OBS_DIM, OBS_DIM, generator=g))
        self.B = nn.Parameter(torch.randn(OBS_DIM, ACT_DIM, generator=g))

    def step(self, state: ModelState, action: torch.Tensor):
        nxt = state.obs @ self.A.T + action @ self.B.T
        r = -(nxt**2).sum(1) - 0.1 * (action**2).sum(1)
        return ModelState(nxt), r, torch.full_like(r, 0.25)


def _real_imagination(kind: str) -> ModelImagination:
    model = GRUDynamics(OBS_DIM, ACT_DIM) if kind == "gru" else GaussianEnsemble(OBS_DIM, ACT_DIM)
    reward = lambda obs, action, nxt: -(nxt**2).sum(1) - (action**2).sum(1)  # noqa: E731
    done = lambda obs, action, nxt: (nxt[:, 0].abs() > 10.0).float()  # noqa: E731
    return ModelImagination(model, reward, done)


def _pair(imagination, horizon: int, seed: int = 3, **kw) -> tuple[SAC, PathwiseSAC]:
    sac = SAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=seed)
    svg = PathwiseSAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=seed, imagination=imagination, horizon=horizon, **kw)
    return sac, svg


@pytest.mark.parametrize("kind", ["gru", "ensemble"])  # SAC-SVG's model, MAAC's
def test_horizon_zero_is_sacs_actor_loss_exactly(kind):
    obs = random_batch(seed=1).obs
    sac, svg = _pair(_real_imagination(kind), horizon=0)
    for _ in range(2):  # the generators advance alike
        l_sac, l_svg = sac.actor_loss(obs), svg.actor_loss(obs)
        assert torch.equal(l_sac, l_svg)
        g_sac = torch.autograd.grad(l_sac, list(sac.actor.parameters()))
        g_svg = torch.autograd.grad(l_svg, list(svg.actor.parameters()))
        assert all(torch.equal(a, b) for a, b in zip(g_sac, g_svg, strict=True))
    # the same through the explicit-horizon entry point of an agent configured with H > 0
    sac, svg = _pair(_real_imagination(kind), horizon=3)
    assert torch.equal(sac.actor_loss(obs), svg.expanded_actor_loss(obs, 0))


def test_before_the_model_is_ready_the_loss_is_sacs():
    obs = random_batch(seed=2).obs
    sac, svg = _pair(_LinearWorld(), horizon=2, ready=lambda: False)
    assert torch.equal(sac.actor_loss(obs), svg.actor_loss(obs))


def _double(agent: PathwiseSAC) -> PathwiseSAC:
    agent.actor.double()
    agent.critics.double()
    return agent


def test_loss_is_the_explicit_entropy_regularised_expansion():
    world = _LinearWorld().double()
    svg = _double(_pair(world, horizon=2)[1])
    obs = random_batch(seed=4).obs.double()
    state = svg.generator.get_state()
    loss = svg.actor_loss(obs)
    svg.generator.set_state(state)
    alpha, gamma = float(svg.alpha), svg.gamma
    s, total, weight = obs, 0.0, 1.0
    for _ in range(2):
        a, lp = svg.sample(s)
        nxt, r, done = world.step(ModelState(s), a)
        total = total + weight * (r - alpha * lp)
        weight = weight * gamma * (1.0 - done)
        s = nxt.obs
    a, lp = svg.sample(s)
    total = total + weight * (svg._twin_q(svg.critics, s, a).min(0).values - alpha * lp)
    torch.testing.assert_close(loss, -total.mean(), rtol=1e-12, atol=1e-12)


def test_actor_gradient_through_the_model_matches_finite_differences():
    world = _LinearWorld().double()
    svg = _double(_pair(world, horizon=3)[1])
    obs = random_batch(n=8, seed=6).obs.double()
    state = svg.generator.get_state()
    bias = svg.actor[-1].bias if isinstance(svg.actor, nn.Sequential) else list(svg.actor.parameters())[-1]

    def loss() -> torch.Tensor:
        svg.generator.set_state(state)  # the same noise: a deterministic function of the weights
        return svg.actor_loss(obs)

    grad = torch.autograd.grad(loss(), bias)[0]
    assert grad.abs().max() > 0
    eps = 1e-6
    for j in range(bias.numel()):
        with torch.no_grad():
            bias[j] += eps
            up = loss()
            bias[j] -= 2 * eps
            down = loss()
            bias[j] += eps
        torch.testing.assert_close(grad[j], (up - down) / (2 * eps), rtol=1e-5, atol=1e-7)
    # the model matters: a different B changes the actor's gradient
    with torch.no_grad():
        world.B.mul_(2.0)
    assert not torch.allclose(torch.autograd.grad(loss(), bias)[0], grad)


@pytest.mark.parametrize("kind", ["gru", "ensemble", "linear"])
def test_update_trains_the_actor_through_the_model_and_leaves_the_model_alone(kind):
    imagination = _LinearWorld() if kind == "linear" else _real_imagination(kind)
    svg = _pair(imagination, horizon=2)[1]
    model = imagination if kind == "linear" else imagination.dynamics
    before = [p.detach().clone() for p in model.parameters()]
    actor_before = [p.detach().clone() for p in svg.actor.parameters()]
    metrics = svg.update(random_batch(seed=7))
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, svg.actor.parameters(), strict=True))
    # actor gradients through the model are non-zero
    loss = svg.actor_loss(random_batch(seed=8).obs)
    grads = torch.autograd.grad(loss, list(svg.actor.parameters()))
    assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().max() > 0 for g in grads)


def test_a_horizon_needs_an_imagination():
    with pytest.raises(ValueError, match="imagination"):
        PathwiseSAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], horizon=2)
