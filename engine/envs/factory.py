"""Make any Box-space gymnasium env by id, with the project's options and its simulator state."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

import engine.envs  # noqa: F401  (registers DoubleIntegrator-v0)


def make_env(env_id: str, fully_observable: bool = True) -> gym.Env:
    """`gym.make(env_id)`; MuJoCo locomotion tasks keep the x coordinate if `fully_observable`."""
    from engine.envs.mujoco_state import quiet_mujoco_warnings

    quiet_mujoco_warnings()
    kwargs = {}
    if fully_observable:
        # only the locomotion tasks take this keyword; passing it elsewhere would be an error
        probe = gym.make(env_id)
        takes = hasattr(probe.unwrapped, "_exclude_current_positions_from_observation")
        probe.close()
        if takes:
            kwargs["exclude_current_positions_from_observation"] = False
    env = gym.make(env_id, **kwargs)
    if not isinstance(env.observation_space, gym.spaces.Box) or not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"{env_id} needs Box observation and action spaces")
    return env


def sim_state_fns(env: gym.Env) -> tuple[Callable[[], np.ndarray], Callable[[np.ndarray], None], int]:
    """(get, set, size) of the env's simulator state; size 0 and no-ops for non-MuJoCo envs."""
    import mujoco

    from engine.envs import mujoco_state

    if isinstance(getattr(env.unwrapped, "model", None), mujoco.MjModel):
        return (
            lambda: mujoco_state.get_sim_state(env),
            lambda s: mujoco_state.set_sim_state(env, s),
            mujoco_state.sim_state_size(env),
        )
    return (lambda: np.zeros(0)), (lambda s: None), 0
