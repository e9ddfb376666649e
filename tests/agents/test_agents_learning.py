"""The agents learn: a quick DDPG check on Pendulum-v1 (the slow SAC check over three seeds runs
through the real engine: tests/train/test_learning_slow.py)."""

from __future__ import annotations


import gymnasium as gym

from agent_loop import evaluate, train
from engine.agents import DDPGConfig, make_agent

ENV = "Pendulum-v1"


def test_ddpg_improves_pendulum_return_within_3000_steps() -> None:
    # Random-ish initial policies score about -1200..-1600 here; a policy that has learned to
    # swing up scores above -400. Measured at this seed: about -1420 -> -170. The margin below
    # only asks for a clear improvement, so small numerical differences cannot flip it.
    env = gym.make(ENV)
    cfg = DDPGConfig(hidden=64, batch_size=128)
    agent = make_agent("ddpg", env.observation_space, env.action_space, cfg, seed=0)
    start = evaluate(agent, ENV, episodes=5, seed=123)
    train(agent, ENV, steps=3000, seed=0, batch_size=cfg.batch_size, warmup=500)
    end = evaluate(agent, ENV, episodes=5, seed=123)
    assert end > start + 400.0 and end > -1000.0, (start, end)
