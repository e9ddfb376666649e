"""Learning through the real engine (slow: `pytest -m slow`)."""

from __future__ import annotations

import pytest

from engine import open_run
from engine.train.config import TrainConfig
from engine.train.run import train

# Pendulum-sized SAC (the 2x512, lr 1e-4 defaults are SVG's MuJoCo settings)
PENDULUM_SAC = {"hidden": 128, "actor_lr": 1e-3, "critic_lr": 1e-3, "alpha_lr": 1e-3, "batch_size": 128}


@pytest.mark.slow
def test_sac_learns_pendulum_within_15k_steps_on_two_of_three_seeds(tmp_path):
    best = []
    for seed in range(3):
        cfg = TrainConfig(algo="sac", env_id="Pendulum-v1", steps=15_000, seed=seed, start_steps=500,
                          record_model=False, snapshot_interval=2_500, eval_episodes=5,
                          agent=PENDULUM_SAC)
        out = train(cfg, tmp_path / f"sac{seed}.zarr")
        returns = open_run(out)["eval"]["return"].mean("episode").values
        best.append(float(returns.max()))
        print(f"seed {seed}: mean eval return per snapshot {returns.round(0).tolist()}")
    assert sum(b > -300 for b in best) >= 2, best
