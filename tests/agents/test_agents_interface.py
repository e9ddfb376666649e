"""What all three agents promise the training loop: targets, checkpoints, Polyak targets, actions."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from agent_kit import ACT_SPACE, OBS_SPACE, SMALL, random_batch
from engine.agents import DDPG, NAF, SAC, AGENTS, Batch, CriticData, make_agent, one_step_targets


def build(name: str, seed: int = 0):
    return make_agent(name, OBS_SPACE, ACT_SPACE, SMALL[name], seed=seed)


def independent_target_value(agent, next_obs: torch.Tensor) -> torch.Tensor:
    """V'(s') from the raw target networks, without the agents' own helpers."""
    with torch.no_grad():
        if isinstance(agent, DDPG):
            unit = torch.tanh(agent.actor_target(next_obs))  # critic inputs are unit-box actions
            return agent.critic_target(torch.cat([next_obs, unit], -1)).squeeze(-1)
        if isinstance(agent, NAF):
            return agent.net_target.value(next_obs).squeeze(-1)
        assert isinstance(agent, SAC)
        mean, raw = agent.actor(next_obs).chunk(2, -1)  # SAC has no target actor
        lo, hi = agent.config.log_std_min, agent.config.log_std_max
        std = (lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1.0)).exp()
        u = mean + std * torch.randn(mean.shape, generator=agent.generator)
        a = torch.tanh(u.double())
        log_prob = torch.distributions.Normal(mean.double(), std.double()).log_prob(u.double()).sum(-1)
        log_prob = log_prob - torch.log1p(-a**2).sum(-1)
        x = torch.cat([next_obs, a.float()], -1)
        q = torch.minimum(agent.critic_target.member(0)(x), agent.critic_target.member(1)(x)).squeeze(-1)
        return q - agent.log_alpha.exp() * log_prob.float()


def test_one_step_targets_are_r_plus_discounted_target_value(agent_name: str) -> None:
    agent = build(agent_name)
    for _ in range(2):  # train a little so that target and online networks differ
        agent.update(random_batch(seed=5))
    batch = random_batch(seed=1)
    state = agent.generator.get_state()
    data = one_step_targets(batch, agent)
    agent.generator.set_state(state)  # SAC's V' samples a'; replay the same draw
    v_next = independent_target_value(agent, batch.next_obs)
    expected = batch.reward + agent.gamma * (1.0 - batch.terminated) * v_next
    assert isinstance(data, CriticData) and data.target.shape == (32,)
    torch.testing.assert_close(data.target, expected, rtol=1e-5, atol=1e-4)
    done = batch.terminated == 1.0
    torch.testing.assert_close(data.target[done], batch.reward[done])
    assert data.obs is batch.obs and data.action is batch.action


def test_target_action_is_in_env_units_inside_the_box(agent_name: str) -> None:
    agent = build(agent_name)
    a, bonus = agent.target_action(10.0 * torch.randn(64, 3))
    assert a.shape == (64, 2) and bonus.shape == (64,)
    assert agent.q_value(torch.zeros(64, 3), a).shape == (64,)
    assert torch.all(a >= torch.as_tensor(ACT_SPACE.low)) and torch.all(a <= torch.as_tensor(ACT_SPACE.high))
    if agent_name == "sac":
        assert torch.all(bonus != 0.0)
    else:
        assert torch.all(bonus == 0.0)


def test_state_dict_round_trip_reproduces_actions_q_values_and_training(agent_name: str) -> None:
    agent = build(agent_name, seed=0)
    for k in range(3):  # non-trivial optimiser moments, counters and noise state
        agent.update(random_batch(seed=k))
    agent.act(np.ones(3, np.float32))
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    restored = build(agent_name, seed=123)  # different init and sampling
    restored.load_state_dict(torch.load(buf, weights_only=True))

    batch = random_batch(seed=9)
    obs = np.array([0.3, -1.2, 0.7], np.float32)
    assert np.array_equal(agent.act(obs, deterministic=True), restored.act(obs, deterministic=True))
    assert np.array_equal(agent.act(obs), restored.act(obs))  # generator and noise restored too
    assert torch.equal(agent.q_value(batch.obs, batch.action), restored.q_value(batch.obs, batch.action))
    assert torch.equal(agent.target_value(batch.next_obs), restored.target_value(batch.next_obs))
    assert restored.updates == agent.updates == 3
    # Identical optimiser state: one more update lands on identical parameters and metrics.
    assert agent.update(batch) == restored.update(batch)
    for k, v in agent.state_dict().items():
        if isinstance(v, dict):
            for name, t in v.items():
                if isinstance(t, torch.Tensor):
                    assert torch.equal(t, restored.state_dict()[k][name]), (k, name)


def online_target_pairs(agent) -> list[tuple[nn.Module, nn.Module]]:
    if isinstance(agent, DDPG):
        return [(agent.actor, agent.actor_target), (agent.critic, agent.critic_target)]
    if isinstance(agent, SAC):
        return [(agent.critics, agent.critic_target)]
    return [(agent.net, agent.net_target)]


def test_update_changes_the_critic_and_moves_targets_by_the_polyak_rule(agent_name: str) -> None:
    agent = build(agent_name)
    tau = agent.config.tau
    agent.update(random_batch(seed=0))  # afterwards target != online
    pairs = online_target_pairs(agent)
    before = [([p.clone() for p in o.parameters()], [p.clone() for p in t.parameters()]) for o, t in pairs]
    q_before = agent.q_value(random_batch(seed=3).obs, random_batch(seed=3).action).detach()
    metrics = agent.update(random_batch(seed=1))
    for (online, target), (on0, tg0) in zip(pairs, before):
        for p0, p1, t0, t1 in zip(on0, online.parameters(), tg0, target.parameters()):
            assert not torch.equal(t0, p0)
            torch.testing.assert_close(t1, (1.0 - tau) * t0 + tau * p1.detach(), rtol=0, atol=1e-7)
        # And one number by hand: the first weight of the first layer.
        p1, t0, t1 = next(online.parameters()), tg0[0], next(target.parameters())
        first = (0,) * t1.dim()
        assert t1[first].item() == pytest.approx((1 - tau) * t0[first].item() + tau * p1[first].item(), abs=1e-7)
        assert any(not torch.equal(a, b) for a, b in zip(on0, online.parameters()))
    q_after = agent.q_value(random_batch(seed=3).obs, random_batch(seed=3).action).detach()
    assert not torch.equal(q_before, q_after)
    assert metrics and all(type(v) is float and math.isfinite(v) for v in metrics.values())
    assert "critic_loss" in metrics and "q_mean" in metrics


def test_the_injected_critic_targets_are_what_the_critic_regresses_on(agent_name: str) -> None:
    calls: list[Batch] = []
    goal = 3.0

    def constant_targets(batch: Batch, source) -> CriticData:
        calls.append(batch)
        assert source.gamma == SMALL[agent_name].gamma
        return CriticData(batch.obs, batch.action, torch.full_like(batch.reward, goal))

    agent = make_agent(agent_name, OBS_SPACE, ACT_SPACE, SMALL[agent_name], targets=constant_targets)
    batch = random_batch(seed=0)
    first = agent.update(batch)["critic_loss"]
    for _ in range(150):
        last = agent.update(batch)["critic_loss"]
    assert len(calls) == 151 and last < 0.25 * first


def test_act_returns_float32_actions_inside_the_box(agent_name: str) -> None:
    cfg = SMALL[agent_name]
    if hasattr(cfg, "noise_sigma"):
        cfg = dataclasses.replace(cfg, noise_sigma=5.0)  # noise far past the bounds: clipping
    agent = make_agent(agent_name, OBS_SPACE, ACT_SPACE, cfg, seed=0)
    rng = np.random.default_rng(0)
    actions = np.stack([agent.act(rng.normal(size=3).astype(np.float32)) for _ in range(100)])
    assert actions.dtype == np.float32 and actions.shape == (100, 2)
    assert np.all(actions >= ACT_SPACE.low) and np.all(actions <= ACT_SPACE.high)
    assert len(np.unique(actions, axis=0)) > 5  # exploring, not stuck on one corner
    agent.reset()
    det = agent.act(np.zeros(3, np.float32), deterministic=True)
    assert np.array_equal(det, agent.act(np.zeros(3, np.float32), deterministic=True))


def test_same_seed_same_agent_different_seed_different_agent(agent_name: str) -> None:
    obs = np.array([0.1, 0.2, 0.3], np.float32)
    a, b, c = build(agent_name, 4), build(agent_name, 4), build(agent_name, 5)
    assert np.array_equal(a.act(obs), b.act(obs))
    assert not np.array_equal(a.act(obs, True), c.act(obs, True))


def test_factory_rejects_unknown_names_and_mismatched_configs() -> None:
    assert set(AGENTS) == {"ddpg", "sac", "naf"}
    with pytest.raises(ValueError, match="unknown agent"):
        make_agent("td3", OBS_SPACE, ACT_SPACE)
    with pytest.raises(TypeError):
        make_agent("sac", OBS_SPACE, ACT_SPACE, SMALL["ddpg"])
    assert isinstance(make_agent("naf", OBS_SPACE, ACT_SPACE), NAF)


@pytest.mark.parametrize("cls", [cfg for _, cfg in AGENTS.values()], ids=list(AGENTS))
def test_configs_are_frozen_with_a_docstring_under_every_field(cls: type) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        cls().gamma = 0.5
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    documented = {
        stmt.target.id for stmt, nxt in zip(body, body[1:])
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
    }
    assert documented == {f.name for f in dataclasses.fields(cls)}
