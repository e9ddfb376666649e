"""SAC: the squashed-Gaussian log-density, the twin-min target, the temperature, the entropy schedule."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from agent_kit import ACT_SPACE, OBS_SPACE, SMALL, random_batch
from engine.agents import SAC, SACConfig
from engine.agents.sac import tanh_gaussian_log_prob


def test_log_prob_matches_change_of_variables_in_float64() -> None:
    g = torch.Generator().manual_seed(0)
    mean = 2.0 * torch.randn(64, 3, generator=g)
    log_std = torch.rand(64, 3, generator=g) * 3.0 - 2.0
    u = mean + log_std.exp() * torch.randn(64, 3, generator=g)
    u64, m64, s64 = u.double(), mean.double(), log_std.double().exp()
    a = torch.tanh(u64)
    expected = torch.distributions.Normal(m64, s64).log_prob(u64).sum(-1) - torch.log1p(-a**2).sum(-1)
    got = tanh_gaussian_log_prob(u, mean, log_std).double()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # Far in the tails tanh(u) rounds to +-1 in float32, yet the log-density stays finite.
    big = torch.tensor([[12.0, -15.0, 30.0]])
    assert torch.isfinite(tanh_gaussian_log_prob(big, torch.zeros(1, 3), torch.zeros(1, 3))).all()


def test_log_prob_matches_a_monte_carlo_histogram_and_integrates_to_one() -> None:
    mean, log_std = torch.tensor([[0.6]]), torch.tensor([[math.log(0.9)]])
    g = torch.Generator().manual_seed(1)
    samples = torch.tanh(mean + log_std.exp() * torch.randn(400_000, 1, generator=g)).squeeze(-1)
    edges = torch.linspace(-1.0, 1.0, 21, dtype=torch.float64)
    counts = torch.histc(samples.double(), bins=20, min=-1.0, max=1.0) / len(samples)

    def density(a: torch.Tensor) -> torch.Tensor:  # p(a) on a grid strictly inside (-1, 1)
        u = torch.atanh(a).float()[:, None]
        return tanh_gaussian_log_prob(u, mean.expand(len(u), 1), log_std.expand(len(u), 1)).double().exp()

    mass = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        grid = torch.linspace(float(lo), float(hi), 401, dtype=torch.float64).clamp(-1 + 1e-7, 1 - 1e-7)
        mass.append(torch.trapezoid(density(grid), grid))
    mass = torch.stack(mass)
    np.testing.assert_allclose(mass.sum().item(), 1.0, atol=2e-3)
    np.testing.assert_allclose(mass.numpy(), counts.numpy(), atol=3e-3)


def test_agent_samples_report_the_log_prob_of_their_own_pre_tanh_draw() -> None:
    agent = SAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=0)
    obs = torch.randn(10, 3)
    state = agent.generator.get_state()
    action, log_prob = agent.sample(obs)
    agent.generator.set_state(state)
    mean, log_std = agent.policy_dist(obs)
    u = mean + log_std.exp() * torch.randn(mean.shape, generator=agent.generator)
    torch.testing.assert_close(action, agent.scale.to_env(torch.tanh(u)))
    torch.testing.assert_close(log_prob, tanh_gaussian_log_prob(u, mean, log_std))
    assert torch.all(log_std >= SMALL["sac"].log_std_min) and torch.all(log_std <= SMALL["sac"].log_std_max)


@pytest.mark.parametrize("lower", [0, 1])
def test_target_value_takes_the_minimum_of_the_twin_target_critics(lower: int) -> None:
    agent = SAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=0)
    with torch.no_grad():  # shift the *other* target critic up: the min must ignore it
        agent.critic_target.biases[-1][1 - lower].add_(100.0)  # (member, 1, out) of the output layer
    obs = torch.randn(8, 3)
    state = agent.generator.get_state()
    v = agent.target_value(obs)
    agent.generator.set_state(state)
    a, log_prob = agent.sample(obs)
    x = torch.cat([obs, agent.scale.to_unit(a)], -1)
    with torch.no_grad():
        q_low = agent.critic_target.member(lower)(x).squeeze(-1)
    torch.testing.assert_close(v, q_low - agent.alpha * log_prob.detach())
    # q_value is the min of the *online* twins, which the target shift did not touch.
    q_online = torch.stack([agent.critics.member(i)(x).squeeze(-1) for i in range(2)]).min(0).values
    torch.testing.assert_close(agent.q_value(obs, a), q_online)


@pytest.mark.parametrize("target, direction", [(5.0, +1), (-20.0, -1)])
def test_alpha_moves_toward_the_target_entropy(target: float, direction: int) -> None:
    # On the unit box entropy is at most sum_j log 2 (about 1.39 in 2-D) and far above -20:
    # alpha must rise to push entropy up toward +5 and fall to let it drop toward -20.
    cfg = dataclasses.replace(SMALL["sac"], target_entropy=target)
    agent = SAC(OBS_SPACE, ACT_SPACE, cfg, seed=0)
    alphas = [agent.alpha.item()]
    for k in range(5):
        metrics = agent.update(random_batch(seed=k))
        assert metrics["alpha"] == pytest.approx(agent.alpha.item())
        assert metrics["target_entropy"] == target
        assert direction * (target - metrics["entropy"]) > 0
        alphas.append(agent.alpha.item())
    assert all(direction * (b - a) > 0 for a, b in zip(alphas, alphas[1:]))


@pytest.mark.parametrize("offset", [+1.0, -1.0])
def test_alpha_follows_the_sign_of_entropy_minus_target_near_the_target(offset: float) -> None:
    # A narrow std makes the entropy clearly negative (about -4), so a target just above it and
    # one just below it sit on the same side of zero: only the sign of (entropy - target)
    # decides, not the sign of either term.
    cfg = dataclasses.replace(SMALL["sac"], log_std_min=-4.0, log_std_max=-3.0)
    agent = SAC(OBS_SPACE, ACT_SPACE, cfg, seed=0)
    with torch.no_grad():
        entropy = -agent.sample(random_batch(n=4096, seed=11).obs)[1].mean().item()
    assert entropy < -2.5
    agent = SAC(OBS_SPACE, ACT_SPACE, dataclasses.replace(cfg, target_entropy=entropy + offset), seed=0)
    alpha0 = agent.alpha.item()
    for k in range(3):
        agent.update(random_batch(seed=k))
    assert (agent.alpha.item() - alpha0) * offset > 0


def test_default_target_entropy_is_minus_the_action_dimension() -> None:
    agent = SAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=0)
    assert agent.target_entropy == -2.0
    agent.update(random_batch())
    assert agent.target_entropy == -2.0


@pytest.mark.parametrize("power", [1.0, 0.5, 4.0])
def test_entropy_schedule_follows_svg_eq_14_from_start_to_end(power: float) -> None:
    cfg = SACConfig(target_entropy=1.0, target_entropy_final=-3.0, target_entropy_decay_steps=200,
                    target_entropy_decay_power=power)
    at = lambda t: cfg.target_entropy_at(t, act_dim=2)  # noqa: E731
    assert at(0) == 1.0
    assert at(200) == -3.0 and at(10_000) == -3.0
    assert at(50) == pytest.approx(4.0 * 0.75**power - 3.0)
    values = [at(t) for t in range(0, 260, 10)]
    assert all(b <= a for a, b in zip(values, values[1:]))
    if power == 1.0:
        assert at(100) == pytest.approx(-1.0)  # linear: halfway in value at halfway in time


def test_agent_reads_the_schedule_at_its_update_count() -> None:
    cfg = dataclasses.replace(SMALL["sac"], target_entropy=0.0, target_entropy_final=-2.0,
                              target_entropy_decay_steps=4)
    agent = SAC(OBS_SPACE, ACT_SPACE, cfg, seed=0)
    seen = [agent.update(random_batch(seed=k))["target_entropy"] for k in range(6)]
    assert seen == pytest.approx([0.0, -0.5, -1.0, -1.5, -2.0, -2.0])
    assert agent.target_entropy == -2.0


def test_schedule_config_is_validated() -> None:
    with pytest.raises(ValueError):
        SACConfig(target_entropy_final=-3.0)  # no decay length
    with pytest.raises(ValueError):
        SACConfig(target_entropy_decay_power=0.0)


def test_update_uses_an_overridden_actor_loss() -> None:
    class Frozen(SAC):
        def actor_loss(self, obs: torch.Tensor, first=None) -> torch.Tensor:
            return 0.0 * self.sample(obs)[0].sum()

    agent = Frozen(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=0)
    before = [p.detach().clone() for p in agent.actor.parameters()]
    metrics = agent.update(random_batch())
    assert metrics["actor_loss"] == 0.0
    assert all(torch.equal(b, p) for b, p in zip(before, agent.actor.parameters()))
    # ... while the standard loss does move the actor.
    plain = SAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=0)
    plain.update(random_batch())
    assert not all(torch.equal(b, p) for b, p in zip(before, plain.actor.parameters()))
