"""Simulator-state helpers and oracle dynamics against real episodes of the MuJoCo envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from engine.envs.mujoco_state import get_sim_state, set_sim_state, sim_state_size
from engine.models import make_dynamics
from engine.models.dynamics_base import ModelState
from engine.models.oracle import OracleConfig, OracleDynamics

CASES = [
    ("HalfCheetah-v5", {"exclude_current_positions_from_observation": False}),
    ("Hopper-v5", {}),
    ("Walker2d-v5", {}),
]


def record(env_id: str, kwargs: dict[str, Any], n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random-action episodes with the simulator state before and after every step."""
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(seed)
    out: dict[str, list[Any]] = {k: [] for k in ("sim", "action", "next_obs", "reward", "terminated", "next_sim", "episode")}
    env.reset(seed=seed)
    episode = 0
    while len(out["sim"]) < n:
        sim = get_sim_state(env)
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for k, v in zip(out, (sim, action, next_obs, reward, terminated, get_sim_state(env), episode)):
            out[k].append(v)
        if terminated or truncated:
            env.reset()
            episode += 1
    env.close()
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_oracle_reproduces_recorded_steps(env_id: str, kwargs: dict[str, Any]) -> None:
    rec = record(env_id, kwargs, 150)
    if env_id != "HalfCheetah-v5":  # the data must contain terminal transitions to test them
        assert rec["terminated"].any()
    oracle = OracleDynamics(env_id, config=OracleConfig(env_kwargs=kwargs, dtype="float64"))
    nxt, reward, done = oracle.step_with_reward(ModelState(torch.zeros(0), sim=rec["sim"]), torch.as_tensor(rec["action"]))
    assert np.abs(nxt.obs.numpy() - rec["next_obs"]).max() <= 1e-8
    np.testing.assert_allclose(reward.numpy(), rec["reward"], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(done.numpy(), rec["terminated"].astype(np.float64))
    # restoring is bit-exact, so the numpy path returns exactly what the env returned
    obs64, r64, term, next_sim = oracle.step_numpy(rec["sim"], rec["action"])
    np.testing.assert_array_equal(obs64, rec["next_obs"])
    np.testing.assert_array_equal(r64, rec["reward"])
    np.testing.assert_array_equal(next_sim, rec["next_sim"])


def test_oracle_rollout_follows_a_real_trajectory_and_equals_repeated_steps() -> None:
    env_id, kwargs = CASES[0]
    rec = record(env_id, kwargs, 40)
    oracle = OracleDynamics(env_id, config=OracleConfig(env_kwargs=kwargs, dtype="float64"))
    H = 30
    start = ModelState(torch.zeros(1, 18, dtype=torch.float64), sim=rec["sim"][:1])
    actions = torch.as_tensor(rec["action"][None, :H], dtype=torch.float64)
    traj = oracle.rollout(start, actions)
    assert traj.shape == (1, H, 18)
    np.testing.assert_array_equal(traj[0].numpy(), rec["next_obs"][:H])
    state = start
    for t in range(H):
        state = oracle.step(state, actions[:, t])
    np.testing.assert_array_equal(state.obs.numpy(), traj[:, -1].numpy())


@pytest.mark.parametrize(("env_id", "size"), [("HalfCheetah-v5", 27), ("Hopper-v5", 18), ("Walker2d-v5", 27),
                                              ("InvertedPendulum-v5", 6)])
def test_sim_state_layout_is_qpos_qvel_then_warmstart(env_id: str, size: int) -> None:
    env = gym.make(env_id)
    env.reset(seed=3)
    for _ in range(5):
        env.step(env.action_space.sample())
    u = env.unwrapped
    state = get_sim_state(env)
    assert state.shape == (size,) == (sim_state_size(env),) and state.dtype == np.float64
    np.testing.assert_array_equal(state[: u.model.nq + u.model.nv], u.state_vector())
    np.testing.assert_array_equal(state[u.model.nq + u.model.nv:], u.data.qacc_warmstart)
    with pytest.raises(ValueError, match="entries"):
        set_sim_state(env, state[:-1])


def test_qpos_qvel_only_restore_is_close_but_the_full_state_is_exact() -> None:
    rec = record("Walker2d-v5", {}, 150, seed=1)
    env = gym.make("Walker2d-v5").unwrapped
    env.reset(seed=5)
    nq_nv = env.model.nq + env.model.nv
    worst_short = worst_full = 0.0
    for sim, action, next_obs in zip(rec["sim"], rec["action"], rec["next_obs"]):
        set_sim_state(env, sim[:nq_nv])
        worst_short = max(worst_short, float(np.abs(env.step(action)[0] - next_obs).max()))
        set_sim_state(env, sim)
        worst_full = max(worst_full, float(np.abs(env.step(action)[0] - next_obs).max()))
    assert worst_full == 0.0
    # without the solver's warm start the contact solve lands elsewhere by ~1e-13 (the reason
    # the warm start is part of the stored state), still well inside the 1e-8 contract
    assert 0.0 < worst_short <= 1e-8


def test_factory_oracle_infers_the_fully_observable_variant() -> None:
    obs_space = spaces.Box(-np.inf, np.inf, shape=(18,))
    act_space = spaces.Box(-1.0, 1.0, shape=(6,))
    oracle = make_dynamics("oracle", obs_space, act_space, "HalfCheetah-v5")
    assert isinstance(oracle, OracleDynamics) and oracle.obs_dim == 18 and not oracle.differentiable
    assert oracle.env_kwargs == {"exclude_current_positions_from_observation": False}
    with pytest.raises(ValueError, match="expected 5"):
        OracleDynamics("Hopper-v5", obs_dim=5)
    with pytest.raises(ValueError, match="ModelState.sim"):
        oracle.step(ModelState(torch.zeros(1, 18)), torch.zeros(1, 6))
