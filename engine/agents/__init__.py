"""Model-free agents (DDPG, SAC, NAF) behind one interface, and a factory by name."""

from __future__ import annotations

from gymnasium import spaces

from engine.agents.base import (
    Agent, Batch, CriticData, CriticTargets, TargetSource, one_step_targets,
)
from engine.agents.ddpg import DDPG, DDPGConfig
from engine.agents.naf import NAF, NAFConfig
from engine.agents.sac import SAC, SACConfig

AGENTS: dict[str, tuple[type, type]] = {
    "ddpg": (DDPG, DDPGConfig),
    "sac": (SAC, SACConfig),
    "naf": (NAF, NAFConfig),
}
"""name -> (agent class, config class)."""


def make_agent(
    name: str,
    obs_space: spaces.Box,
    act_space: spaces.Box,
    config: DDPGConfig | SACConfig | NAFConfig | None = None,
    targets: CriticTargets | None = None,
    seed: int = 0,
) -> Agent:
    """Build agent `name` ("ddpg", "sac", "naf") with its config (paper defaults if None) and
    critic-target strategy (1-step if None); `seed` fixes initialisation and sampling."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; choose one of {sorted(AGENTS)}")
    cls, config_cls = AGENTS[name]
    if config is not None and not isinstance(config, config_cls):
        raise TypeError(f"agent {name!r} takes a {config_cls.__name__}, not {type(config).__name__}")
    return cls(obs_space, act_space, config, targets or one_step_targets, seed=seed)


__all__ = [
    "AGENTS", "Agent", "Batch", "CriticData", "CriticTargets", "DDPG", "DDPGConfig", "NAF",
    "NAFConfig", "SAC", "SACConfig", "TargetSource", "make_agent", "one_step_targets",
]
