"""Environments: gymnasium registrations of the project's own tasks.

Importing this package registers `DoubleIntegrator-v0`; MuJoCo tasks come from gymnasium.
"""

import gymnasium as gym

from engine.envs.double_integrator import DoubleIntegratorEnv, double_integrator_matrices

if "DoubleIntegrator-v0" not in gym.registry:
    gym.register(
        id="DoubleIntegrator-v0",
        entry_point="engine.envs.double_integrator:DoubleIntegratorEnv",
        max_episode_steps=100,
    )

__all__ = ["DoubleIntegratorEnv", "double_integrator_matrices"]
