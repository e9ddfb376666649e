"""The known reward/termination functions against the real envs' step results."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import engine.envs  # noqa: F401  (registers DoubleIntegrator-v0)
from engine.models.known import known_functions

FULL = {"exclude_current_positions_from_observation": False}


def run(env_id: str, n: int, seed: int = 0, **kwargs: Any) -> tuple[gym.Env, dict[str, np.ndarray]]:
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(seed)
    out: dict[str, list[Any]] = {k: [] for k in ("obs", "action", "next_obs", "reward", "terminated", "forward")}
    obs, _ = env.reset(seed=seed)
    while len(out["obs"]) < n:
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, info = env.step(action)
        for k, v in zip(out, (obs, action, next_obs, reward, terminated, info.get("reward_forward", 0.0))):
            out[k].append(v)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    return env, {k: np.asarray(v) for k, v in out.items()}


def evaluate(env_id: str, env: gym.Env, d: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, bool]:
    known = known_functions(env_id, env)
    obs, next_obs = torch.as_tensor(d["obs"]), torch.as_tensor(d["next_obs"])  # float64
    action = torch.as_tensor(d["action"])
    reward = known.reward(obs, action, next_obs)
    terminated = known.terminated(next_obs)
    assert reward.shape == terminated.shape == (len(obs),) and terminated.dtype == torch.bool
    return reward.numpy(), terminated.numpy(), known.exact


# 1e-6 is float32 rounding of the control cost, which the envs compute in the action's dtype
@pytest.mark.parametrize(("env_id", "kwargs", "must_end"), [
    ("HalfCheetah-v5", FULL, False),
    ("Hopper-v5", FULL, True),
    ("Walker2d-v5", FULL, True),
    ("InvertedPendulum-v5", {}, True),
    ("Pendulum-v1", {}, False),
    ("DoubleIntegrator-v0", {"Q": ((2.0, 0.3), (0.3, 0.5)), "R": ((0.7,),)}, False),
])
def test_exact_functions_match_the_env(env_id: str, kwargs: dict[str, Any], must_end: bool) -> None:
    env, d = run(env_id, 300, **kwargs)
    reward, terminated, exact = evaluate(env_id, env, d)
    assert exact
    assert d["terminated"].any() == must_end  # terminal transitions present where they exist
    # Pendulum-v1 observes a float32 rounding of its float64 state: relative 1e-6 there
    np.testing.assert_allclose(reward, d["reward"], rtol=1e-6 if env_id == "Pendulum-v1" else 0, atol=1e-6)
    np.testing.assert_array_equal(terminated, d["terminated"])


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"])
def test_default_observations_give_exact_terminations_and_all_but_the_forward_term(env_id: str) -> None:
    env, d = run(env_id, 300)
    reward, terminated, exact = evaluate(env_id, env, d)
    assert not exact  # x is not observed: the forward velocity is an approximation
    np.testing.assert_array_equal(terminated, d["terminated"])
    u = env.unwrapped
    approx_forward = u._forward_reward_weight * d["next_obs"][:, u.model.nq - 1]
    np.testing.assert_allclose(reward - approx_forward, d["reward"] - d["forward"], rtol=0, atol=1e-6)
    # the approximation tracks the true average velocity of the step
    assert np.corrcoef(approx_forward, d["forward"])[0, 1] > 0.9


def test_known_functions_build_their_own_env_and_work_in_float32() -> None:
    known = known_functions("Hopper-v5", **FULL)
    obs = torch.zeros(4, 12, dtype=torch.float32)
    obs[:, 1] = 1.25  # standing height: healthy
    nxt = obs.clone()
    nxt[:, 0] = 0.008  # moved 0.008 m in dt = 0.008 s: forward velocity 1
    nxt[1, 2] = 0.5  # tilted beyond 0.2 rad
    r = known.reward(obs, torch.zeros(4, 3), nxt)
    assert r.dtype == torch.float32
    np.testing.assert_allclose(r.numpy(), [2.0, 1.0, 2.0, 2.0], atol=1e-5)
    assert known.terminated(nxt).tolist() == [False, True, False, False]
    with pytest.raises(KeyError, match="Ant-v5"):
        known_functions("Ant-v5")
