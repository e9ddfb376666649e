"""ib-ddpg (MVE's imagination-buffer baseline): DDPG's behaviour sample for imagined branches,
the preset's composition, and a real short run through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_train_cli import SHORT, _check_store, _config, _train

from engine.agents import DDPG, DDPGConfig
from engine.envs.factory import make_env
from engine.train.config import PRESETS, Preset, TrainConfig


def test_behaviour_sample_is_mu_plus_clipped_gaussian_noise() -> None:
    env = make_env("InvertedPendulum-v5")
    agent = DDPG(env.observation_space, env.action_space, DDPGConfig(hidden=32, noise_sigma=0.2), seed=0)
    obs = torch.zeros(20_000, env.observation_space.shape[0])
    action, _ = agent.sample(obs)
    half = float(env.action_space.high[0])  # InvertedPendulum: [-3, 3]
    with torch.no_grad():
        mu = float(agent.policy(obs[:1])[0, 0])
    assert action.shape == (20_000, 1)
    assert (action.abs() <= half + 1e-6).all()
    unit = action[:, 0].numpy() / half
    # mu(0) is near 0 for a fresh actor, so clipping at +-1 (5 sigma away) is negligible here
    assert abs(mu / half) < 0.5
    np.testing.assert_allclose(unit.mean(), mu / half, atol=0.01)
    np.testing.assert_allclose(unit.std(), 0.2, rtol=0.03)
    again, _ = agent.sample(obs[:5])
    assert not torch.equal(again, action[:5])  # fresh noise every call


def test_preset_composition() -> None:
    cfg = TrainConfig(algo="ib-ddpg", env_id="InvertedPendulum-v5")
    assert cfg.agent_name == "ddpg" and cfg.branched and not cfg.uses_model
    rollout = cfg.rollout_config()
    assert rollout.real_ratio == 0.2 and rollout.schedule == (0, 1, 10, 10)  # imaginary:real = 4:1, H = 10
    assert TrainConfig(algo="ib-ddpg", rollout={"real_ratio": 0.5}).rollout_config().real_ratio == 0.5
    with pytest.raises(ValueError, match="behaviour"):
        Preset("td3", branched=True)  # no such agent, so no behaviour sample
    assert PRESETS["ib-ddpg"].agent == "ddpg"


def test_ib_ddpg_cli_run(tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "ib.zarr"
    cfg = _config(tmp_path, agent={"hidden": 32, "batch_size": 40}, model_config={"hidden": 32, "layers": 2},
                  rollout={"rollout_batch_size": 300})
    done = _train(out, "--algo", "ib-ddpg", "--env", "InvertedPendulum-v5", *SHORT, "--config", str(cfg))
    assert done.returncode == 0, done.stderr[-2000:]
    tree = _check_store(out, 400)
    tr = tree["train"]
    after = tr["env_step"].values > 250  # rows logged after the first fit (150) and its rollouts
    frac = tr["model_batch_fraction"].values[after]
    np.testing.assert_allclose(frac, (40 - int(40 * 0.2)) / 40)  # 32 imagined rows of 40
    assert (tr["rollout_length"].values[after] == 10).all()
    assert (tr["model_buffer_size"].values[after] > 0).all()
    assert np.isnan(tr["ensemble_disagreement"].values[after]).all()  # an MLP has no spread
