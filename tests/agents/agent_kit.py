"""Shared constants and builders of the agent tests (a plain module: importable by name)."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from engine.agents import Batch, DDPGConfig, NAFConfig, SACConfig

OBS_DIM = 3
# Asymmetric, non-unit bounds so that any slip between env units and the unit box shows.
ACT_SPACE = spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 0.5], np.float32))
OBS_SPACE = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)

SMALL = {
    "ddpg": DDPGConfig(hidden=16, batch_size=32),
    "sac": SACConfig(hidden=16, batch_size=32, actor_lr=1e-3, critic_lr=1e-3),
    "naf": NAFConfig(hidden=16, batch_size=32, tau=0.05),
}
"""Small configs per agent, with rates large enough for one update to be visible."""


def random_batch(n: int = 32, seed: int = 0, act_space: spaces.Box = ACT_SPACE) -> Batch:
    """A batch of random transitions with some terminal rows, actions inside the Box."""
    g = torch.Generator().manual_seed(seed)
    low, high = torch.as_tensor(act_space.low), torch.as_tensor(act_space.high)
    obs_dim = OBS_DIM
    terminated = (torch.rand(n, generator=g) < 0.25).float()
    terminated[0], terminated[1] = 1.0, 0.0  # both kinds present whatever the seed
    return Batch(
        obs=torch.randn(n, obs_dim, generator=g),
        action=low + (high - low) * torch.rand(n, len(low), generator=g),
        reward=torch.randn(n, generator=g),
        next_obs=torch.randn(n, obs_dim, generator=g),
        terminated=terminated,
    )

