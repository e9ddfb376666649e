"""A tiny self-contained training loop for the learning tests (the real one lives in engine/train)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from engine.agents import Agent, Batch


class Replay:
    """A fixed-capacity numpy ring buffer of transitions."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int) -> None:
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, act_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.head = capacity, 0, 0

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
            terminated: bool) -> None:
        i = self.head
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, float(terminated)
        self.head = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        idx = rng.integers(0, self.size, n)
        t = torch.as_tensor
        return Batch(t(self.obs[idx]), t(self.action[idx]), t(self.reward[idx]),
                     t(self.next_obs[idx]), t(self.terminated[idx]))


def evaluate(agent: Agent, env_id: str, episodes: int, seed: int) -> float:
    """Mean undiscounted return of the deterministic policy over `episodes` episodes."""
    env = gym.make(env_id)
    total = 0.0
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(agent.act(obs, deterministic=True))
            total += float(r)
            done = term or trunc
    env.close()
    return total / episodes


def train(agent: Agent, env_id: str, steps: int, seed: int, batch_size: int, warmup: int,
          eval_every: int = 0, eval_episodes: int = 5) -> tuple[Replay, list[tuple[int, float]]]:
    """Uniform random actions for `warmup` steps, then act + one update per env step.

    Returns the replay buffer and (env_step, mean eval return) every `eval_every` steps.
    """
    env = gym.make(env_id)
    env.action_space.seed(seed)
    rng = np.random.default_rng(seed)
    replay = Replay(env.observation_space.shape[0], env.action_space.shape[0], steps)
    evals: list[tuple[int, float]] = []
    obs, _ = env.reset(seed=seed)
    agent.reset()
    for step in range(1, steps + 1):
        action = env.action_space.sample() if step <= warmup else agent.act(obs)
        next_obs, r, term, trunc, _ = env.step(action)
        replay.add(obs, action, float(r), next_obs, term)
        obs = next_obs
        if term or trunc:
            obs, _ = env.reset()
            agent.reset()
        if step >= warmup:
            agent.update(replay.sample(batch_size, rng))
        if eval_every and step % eval_every == 0:
            evals.append((step, evaluate(agent, env_id, eval_episodes, seed=10_000 + step)))
    env.close()
    return replay, evals
