"""Real data for the model tests: random-action episodes of gymnasium envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from engine.models.dynamics_base import Transitions


def collect(env_id: str, n: int, seed: int = 0, **env_kwargs: Any) -> Transitions:
    """`n` transitions of uniformly random actions, episode ids counting from 0."""
    env = gym.make(env_id, **env_kwargs)
    env.action_space.seed(seed)
    rows: dict[str, list[Any]] = {k: [] for k in ("obs", "action", "reward", "next_obs", "terminated", "episode")}
    episode = 0
    obs, _ = env.reset(seed=seed)
    while len(rows["obs"]) < n:
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(rows, (obs, action, reward, next_obs, terminated, episode)):
            rows[key].append(value)
        obs = next_obs
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset()
    env.close()
    return Transitions(**{k: np.asarray(v) for k, v in rows.items()})


def t32(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def one_step_errors(model: Any, train: Transitions, test: Transitions) -> tuple[float, float]:
    """(model, predict-no-change) mean squared one-step error on `test`, per dimension
    standardised by the training observations' std so no dimension dominates."""
    from engine.models.dynamics_base import ModelState

    with torch.no_grad():
        pred = model.step(ModelState(obs=t32(test.obs)), t32(test.action)).obs.double().numpy()
    scale = train.obs.std(axis=0) + 1e-8
    model_err = float(np.mean(((pred - test.next_obs) / scale) ** 2))
    baseline = float(np.mean(((test.obs - test.next_obs) / scale) ** 2))
    return model_err, baseline
