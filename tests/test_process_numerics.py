"""Process-wide numerics every engine entry point sets before it computes (engine/numerics.py):
the trainer, the gradient-error study and its worker processes, the model-comparison study."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import torch

from engine.studies import gradient_error, model_comparison
from engine.studies.gradient_config import GradientErrorConfig
from engine.train.config import TrainConfig
from engine.train.loop import Trainer
from engine.train.run import open_trainer, train


def _scaled_denormal() -> float:
    """1e-40 (a denormal float32) times one: itself, or 0.0 where denormals are flushed."""
    return (torch.tensor([1e-40]) * 1.0).item()


def _turn_flush_off() -> None:
    """Denormals kept, as a fresh process starts (an earlier test's entry point may have set it)."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode (torch.set_flush_denormal returns False)")
    assert _scaled_denormal() != 0.0


@pytest.fixture
def flush_off() -> None:
    _turn_flush_off()


def test_a_trainer_flushes_denormal_floats(tmp_path: Path, flush_off: None) -> None:
    """A dead ReLU unit's Adam moments get stuck in the denormal range, where CPU arithmetic is
    tens of times slower (bench/denormals.py); a trainer flushes them to zero."""
    cfg = TrainConfig(algo="sac", env_id="InvertedPendulum-v5", steps=10, start_steps=5, record_model=False)
    writer, _ = open_trainer(tmp_path / "run.zarr", cfg.full(), lambda w: Trainer(cfg, w), kind="training",
                             env_id=cfg.env_id, algorithm=cfg.algo, seed=cfg.seed, resume=False, overwrite=False)
    writer.close("failed")
    assert _scaled_denormal() == 0.0


def test_the_gradient_error_study_flushes_denormal_floats(tmp_path: Path, flush_off: None) -> None:
    cfg = GradientErrorConfig(seeds=1, horizon_max=2, data_size=40, model="linear", critic="quadratic")
    gradient_error.run_study(cfg, tmp_path / "ge.zarr", workers=1)
    assert _scaled_denormal() == 0.0


def test_the_gradient_error_workers_flush_denormal_floats(plain_main: None) -> None:
    """The study's worker processes are spawned fresh, so their initialiser sets it for them."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=gradient_error._worker_start, initargs=(os.getpid(),)) as pool:
        assert pool.submit(_scaled_denormal).result() == 0.0


def test_the_model_comparison_study_flushes_denormal_floats(tmp_path: Path) -> None:
    buffer = tmp_path / "random.zarr"  # 300 uniformly random steps: dozens of short episodes
    train(TrainConfig(algo="sac", env_id="InvertedPendulum-v5", steps=300, start_steps=300, record_model=False,
                      eval_episodes=1, critic_samples=16), buffer)
    _turn_flush_off()
    cfg = model_comparison.ModelComparisonConfig(buffer=str(buffer), models=("mlp",), stages=1, horizon=2,
                                                 starts=10, model_config={"mlp": {"hidden": 16, "layers": 1}})
    model_comparison.run_study(cfg, tmp_path / "mc.zarr")
    assert _scaled_denormal() == 0.0
