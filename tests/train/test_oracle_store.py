"""Oracle dynamics against what the engine stored: restore a stored simulator state, step with
the stored action, get the stored next observation; and MVE targets through the real oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import open_run
from engine.agents import make_agent
from engine.agents.base import Batch, one_step_targets
from engine.envs.factory import make_env
from engine.models import make_dynamics
from engine.train.config import TrainConfig
from engine.train.run import train
from engine.train.targets import critic_targets

RANDOM_ONLY = {"start_steps": 10_000, "model_start_steps": 10_000, "record_model": False, "eval_episodes": 1,
               "eval_max_steps": 20, "critic_samples": 8, "snapshot_interval": 10_000, "commit_interval": 100}


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"])
def test_stored_states_replay_exactly_through_the_oracle(tmp_path, env_id):
    cfg = TrainConfig(algo="sac", env_id=env_id, steps=300, **RANDOM_ONLY)
    out = train(cfg, tmp_path / "r.zarr")
    r = open_run(out)["replay"]
    env = make_env(env_id)
    oracle = make_dynamics("oracle", env.observation_space, env.action_space, env_id)
    nxt, rew, term, nsim = oracle.step_numpy(r["sim_state"].values, r["action"].values)
    assert np.abs(nxt.astype(np.float32) - r["next_obs"].values).max() <= 1e-8
    np.testing.assert_array_equal(nxt.astype(np.float32), r["next_obs"].values)
    np.testing.assert_array_equal(rew.astype(np.float32), r["reward"].values)
    np.testing.assert_array_equal(term, r["terminated"].values)
    np.testing.assert_array_equal(nsim, r["next_sim_state"].values)
    if env_id != "HalfCheetah-v5":  # falls happen with random actions: terminations are covered
        assert r["terminated"].values.any()


def test_oracle_mve_targets_equal_stepping_the_simulator_by_hand(tmp_path):
    env_id = "HalfCheetah-v5"
    out = train(TrainConfig(algo="mve-ddpg", env_id=env_id, steps=64, **RANDOM_ONLY), tmp_path / "r.zarr")
    r = open_run(out)["replay"]
    env = make_env(env_id)
    agent = make_agent("ddpg", env.observation_space, env.action_space, seed=0)
    t = lambda x: torch.as_tensor(x.values[:16])  # noqa: E731
    batch = Batch(t(r["obs"]), t(r["action"]), t(r["reward"]), t(r["next_obs"]), t(r["terminated"]).float(),
                  sim_state=r["next_sim_state"].values[:16])
    oracle = make_dynamics("oracle", env.observation_space, env.action_space, env_id)
    h0 = critic_targets(TrainConfig(algo="mve-ddpg", env_id=env_id, horizon=0, dynamics="oracle"), oracle)
    torch.testing.assert_close(h0(batch, agent).target, one_step_targets(batch, agent).target)
    h2 = critic_targets(TrainConfig(algo="mve-ddpg", env_id=env_id, horizon=2, dynamics="oracle"), oracle)
    got = h2(batch, agent)
    # by hand: two simulator steps with the target actor from each stored next state
    g = agent.gamma
    with torch.no_grad():
        a0, _ = agent.target_action(batch.next_obs)
        s1, r0, _, sim1 = oracle.step_numpy(batch.sim_state, a0.numpy())
        a1, _ = agent.target_action(torch.as_tensor(s1, dtype=torch.float32))
        s2, r1, _, _ = oracle.step_numpy(sim1, a1.numpy())
        v2 = agent.target_value(torch.as_tensor(s2, dtype=torch.float32)).numpy()
    y1 = r1 + g * v2
    y0 = r0 + g * y1
    y_real = batch.reward.numpy() + g * y0
    np.testing.assert_allclose(got.target[:16].numpy(), y_real, rtol=1e-5)
    np.testing.assert_allclose(got.target[16:32].numpy(), y0, rtol=1e-5)
    np.testing.assert_allclose(got.target[32:48].numpy(), y1, rtol=1e-5)
