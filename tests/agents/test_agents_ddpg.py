"""DDPG: target action and value from the target networks, the actor's gradient, exploration noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent_kit import ACT_SPACE, OBS_SPACE, SMALL, random_batch
from engine.agents import DDPG, DDPGConfig
from engine.agents.common import ActionScale, ExplorationNoise


def test_defaults_are_mve_table_1_for_cheetah() -> None:
    cfg = DDPGConfig()
    assert (cfg.hidden, cfg.layers) == (64, 2)
    assert (cfg.actor_lr, cfg.critic_lr, cfg.tau, cfg.batch_size) == (1e-3, 1e-3, 1e-2, 512)
    with pytest.raises(ValueError):
        DDPGConfig(noise="pink")


def test_target_action_and_value_use_the_target_networks() -> None:
    agent = DDPG(OBS_SPACE, ACT_SPACE, SMALL["ddpg"], seed=0)
    with torch.no_grad():
        for p in list(agent.actor_target.parameters()) + list(agent.critic_target.parameters()):
            p.mul_(1.5)
    s = torch.randn(6, 3)
    a, bonus = agent.target_action(s)
    torch.testing.assert_close(bonus, torch.zeros(6))
    scale = ActionScale(ACT_SPACE)
    torch.testing.assert_close(a, scale.to_env(torch.tanh(agent.actor_target(s))))
    assert not torch.allclose(a, agent.policy(s))
    with torch.no_grad():
        q = agent.critic_target(torch.cat([s, torch.tanh(agent.actor_target(s))], -1)).squeeze(-1)
    torch.testing.assert_close(agent.target_value(s), q)


def test_actor_step_increases_q_of_its_own_actions() -> None:
    agent = DDPG(OBS_SPACE, ACT_SPACE, DDPGConfig(hidden=16, actor_lr=1e-3), seed=0)
    obs = random_batch(seed=0).obs
    before = agent.q_value(obs, agent.policy(obs)).mean().item()
    for _ in range(20):  # actor only: the critic is held fixed
        loss = agent.actor_loss(obs)
        agent.actor_opt.zero_grad()
        loss.backward()
        agent.actor_opt.step()
    assert agent.q_value(obs, agent.policy(obs)).mean().item() > before


def test_gaussian_noise_has_the_configured_scale_and_no_memory() -> None:
    noise = ExplorationNoise("gaussian", 0.2, 0.15, 2, torch.Generator().manual_seed(0))
    x = torch.stack([noise.sample() for _ in range(20_000)]).numpy()
    np.testing.assert_allclose(x.std(0), 0.2, rtol=0.03)
    lag1 = np.corrcoef(x[:-1, 0], x[1:, 0])[0, 1]
    assert abs(lag1) < 0.03


def test_ou_noise_is_correlated_with_the_stationary_scale_and_resets() -> None:
    sigma, theta = 0.3, 0.15
    noise = ExplorationNoise("ou", sigma, theta, 1, torch.Generator().manual_seed(0))
    x = torch.stack([noise.sample() for _ in range(40_000)]).numpy()[:, 0]
    # AR(1) x' = (1 - theta) x + sigma eps: lag-1 correlation 1 - theta, variance sigma^2 / (1 - (1-theta)^2)
    np.testing.assert_allclose(np.corrcoef(x[:-1], x[1:])[0, 1], 1 - theta, atol=0.02)
    np.testing.assert_allclose(x[1000:].std(), sigma / np.sqrt(1 - (1 - theta) ** 2), rtol=0.06)
    noise.reset()
    assert torch.equal(noise.state, torch.zeros(1))


def test_ou_exploration_is_deterministic_given_the_seed_and_restarts_on_reset() -> None:
    cfg = DDPGConfig(hidden=16, noise="ou", noise_sigma=0.1)
    obs = np.zeros(3, np.float32)
    a, b = DDPG(OBS_SPACE, ACT_SPACE, cfg, seed=3), DDPG(OBS_SPACE, ACT_SPACE, cfg, seed=3)
    first = [a.act(obs) for _ in range(5)]
    assert all(np.array_equal(x, b.act(obs)) for x in first)
    # A checkpoint carries the OU state: the restored agent continues the same noise sequence.
    c = DDPG(OBS_SPACE, ACT_SPACE, cfg, seed=4)
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.noise.state, a.noise.state) and torch.any(a.noise.state != 0)
    assert all(np.array_equal(a.act(obs), c.act(obs)) for _ in range(3))
    a.reset()
    assert torch.equal(a.noise.state, torch.zeros(2))
