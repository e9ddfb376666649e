"""Process-wide numerics a trainer sets up before it trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.train.config import TrainConfig
from engine.train.loop import Trainer
from engine.train.run import open_trainer


def _scaled_denormal() -> float:
    """1e-40 (a denormal float32) times one: itself, or 0.0 where denormals are flushed."""
    return (torch.tensor([1e-40]) * 1.0).item()


def test_a_trainer_flushes_denormal_floats(tmp_path: Path) -> None:
    """A dead ReLU unit's Adam moments get stuck in the denormal range, where CPU arithmetic is
    tens of times slower (bench/denormals.py); a trainer flushes them to zero."""
    # as a fresh process starts (an earlier trainer may have set it)
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode (torch.set_flush_denormal returns False)")
    assert _scaled_denormal() != 0.0
    cfg = TrainConfig(algo="sac", env_id="InvertedPendulum-v5", steps=10, start_steps=5, record_model=False)
    writer, _ = open_trainer(tmp_path / "run.zarr", cfg.full(), lambda w: Trainer(cfg, w), kind="training",
                             env_id=cfg.env_id, algorithm=cfg.algo, seed=cfg.seed, resume=False, overwrite=False)
    writer.close("failed")
    assert _scaled_denormal() == 0.0
