"""The batched oracle path (engine/models/oracle_batch.py) against the per-sample reference path
(the env's own `step` after restoring each state) and against recorded real env steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.models.oracle import OracleConfig, OracleDynamics
from tests.models.test_oracle import record

COVERED = [
    ("HalfCheetah-v5", {"exclude_current_positions_from_observation": False}),
    ("HalfCheetah-v5", {"ctrl_cost_weight": 0.3, "forward_reward_weight": 0.7}),
    ("Hopper-v5", {}),
    ("Hopper-v5", {"terminate_when_unhealthy": False, "healthy_reward": 2.5, "healthy_z_range": (0.9, 1.5)}),
    ("Walker2d-v5", {"exclude_current_positions_from_observation": False, "ctrl_cost_weight": 0.01}),
    ("InvertedPendulum-v5", {}),
]


def _oracle(env_id: str, kwargs: dict[str, Any]) -> OracleDynamics:
    return OracleDynamics(env_id, config=OracleConfig(env_kwargs=kwargs, dtype="float64"))


def _assert_same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    for name, x, y in zip(("next_obs", "reward", "terminated", "next_sim"), a, b):
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize(("env_id", "kwargs"), COVERED)
def test_batched_equals_per_sample_and_the_real_steps(env_id: str, kwargs: dict[str, Any]) -> None:
    rec = record(env_id, kwargs, 300, seed=2)
    if env_id in ("Hopper-v5", "InvertedPendulum-v5") and kwargs.get("terminate_when_unhealthy", True):
        assert rec["terminated"].any()  # the termination rule is exercised
    oracle = _oracle(env_id, kwargs)
    assert oracle._batch is not None
    batched = oracle.step_numpy(rec["sim"], rec["action"])
    _assert_same(batched, oracle.step_numpy(rec["sim"], rec["action"], per_sample=True))
    # bit-exact with what the env returned while it ran (control cost in float32 included)
    for x, y in zip(batched, (rec["next_obs"], rec["reward"], rec["terminated"], rec["next_sim"])):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(("env_id", "kwargs"), [COVERED[0], COVERED[2]])
def test_chained_batched_steps_stay_bit_exact(env_id: str, kwargs: dict[str, Any]) -> None:
    """MVE's use: H steps in a row, each from the previous step's returned sim state."""
    rec = record(env_id, kwargs, 64, seed=4)
    oracle = _oracle(env_id, kwargs)
    rng = np.random.default_rng(0)
    low, high = oracle._env.action_space.low, oracle._env.action_space.high
    fast = slow = rec["sim"]
    for _ in range(30):
        action = rng.uniform(low, high, size=(len(fast), len(low))).astype(np.float32)
        out_fast = oracle.step_numpy(fast, action)
        out_slow = oracle.step_numpy(slow, action, per_sample=True)
        _assert_same(out_fast, out_slow)
        fast, slow = out_fast[3], out_slow[3]


def test_bare_qpos_qvel_states_match_the_per_sample_path() -> None:
    env_id, kwargs = COVERED[2]
    rec = record(env_id, kwargs, 100, seed=6)
    oracle = _oracle(env_id, kwargs)
    bare = rec["sim"][:, : oracle._env.model.nq + oracle._env.model.nv]
    _assert_same(oracle.step_numpy(bare, rec["action"]), oracle.step_numpy(bare, rec["action"], per_sample=True))
    with pytest.raises(ValueError, match="entries"):
        oracle.step_numpy(bare[:, :-1], rec["action"])


def test_uncovered_envs_fall_back_to_the_per_sample_path() -> None:
    rec = record("Swimmer-v5", {}, 20)
    oracle = _oracle("Swimmer-v5", {})
    assert oracle._batch is None
    out = oracle.step_numpy(rec["sim"], rec["action"])
    np.testing.assert_array_equal(out[0], rec["next_obs"])
    np.testing.assert_array_equal(out[1], rec["reward"])
