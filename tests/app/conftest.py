"""Fixtures for the app tests: the bundled store, small stores made by the engine's CLI (a
gradient_error study, three short training runs and a model comparison on one of them; the
Study 3 run is tests/conftest.py's), and a synthetic store for the pure-function tests. The
engine-made stores are built once per test session (`build_once`), shared by xdist workers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # app_helpers, app_synthetic

from app_helpers import BUNDLED, REPO  # noqa: E402
from app_synthetic import write_store  # noqa: E402

from app.library import DATASETS_ENV  # noqa: E402
from engine.record import pack  # noqa: E402
from runkit import run_engine  # noqa: E402


@pytest.fixture(scope="session")
def bundled_store() -> Path:
    """`datasets/gradient_error.zarr.zip`, the store the app opens on a fresh clone."""
    if not BUNDLED.is_file():
        pytest.fail(f"the bundled store {BUNDLED.relative_to(REPO)} is missing")
    return BUNDLED


@pytest.fixture
def datasets(monkeypatch: pytest.MonkeyPatch, bundled_store: Path) -> Path:
    """The app's default bundled-stores folder (`datasets/` next to `app/`), no override."""
    monkeypatch.delenv(DATASETS_ENV, raising=False)
    return bundled_store.parent


@pytest.fixture
def gradient_only(monkeypatch: pytest.MonkeyPatch, bundled_store: Path, tmp_path: Path) -> Path:
    """A bundled-stores folder holding only the gradient_error store: pages of other kinds have
    no run to show."""
    folder = tmp_path / "gradient_only"
    folder.mkdir()
    (folder / bundled_store.name).symlink_to(bundled_store)
    monkeypatch.setenv(DATASETS_ENV, str(folder))
    return folder


@pytest.fixture(scope="session")
def synthetic_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic gradient_error store (5 seeds, H = 0..10), zipped, alone in its folder."""
    root = tmp_path_factory.mktemp("synthetic")
    store = write_store(root / "work" / "gradient_error.zarr")
    out = root / "datasets"
    out.mkdir()
    return pack(store, out / "gradient_error.zarr.zip")


@pytest.fixture(scope="session")
def small_zip(build_once: Callable[..., Path]) -> Path:
    """A small store written and packed by the engine's CLI (~10 s), as a user would upload it."""

    def build(root: Path) -> None:
        store = root / "small.zarr"
        for args in (
            ["study", "gradient-error", "--seeds", "2", "--horizons", "4", "--out", str(store)],
            ["pack", str(store), str(root / "small.zarr.zip")],
        ):
            done = run_engine(args)
            assert done.returncode == 0, done.stderr[-2000:]

    return build_once("small", build) / "small.zarr.zip"


@pytest.fixture(scope="session")
def small_zip_bytes(small_zip: Path) -> bytes:
    """The CLI-made store's bytes."""
    return small_zip.read_bytes()


TRAINING_CONFIG = {
    "model_error_horizon": 8, "model_error_starts": 12, "holdout_block": 16, "holdout_fraction": 0.25,
    "model_fit_interval": 150, "commit_interval": 100, "eval_episodes": 2, "eval_max_steps": 200,
    "critic_samples": 64, "log_interval": 20,
    "agent": {"hidden": 32, "batch_size": 32}, "model_config": {"hidden": 32, "layers": 2},
}
TRAINING_ARGS = ["--env", "InvertedPendulum-v5", "--steps", "300", "--start-steps", "100",
                 "--model-start-steps", "150", "--snapshot-interval", "100"]
TRAINING_RUNS = {  # name -> extra CLI args; the two sac runs differ only in their seed
    "sac_s0.zarr": ["--algo", "sac", "--seed", "0"],
    "sac_s1.zarr": ["--algo", "sac", "--seed", "1"],
    "ddpg.zarr": ["--algo", "ddpg", "--seed", "0"],
}


@pytest.fixture(scope="session")
def training_stores(build_once: Callable[..., Path]) -> Path:
    """A folder with three short training runs made by `python -m engine train` (~30 s, run
    side by side): `sac_s0.zarr` and `sac_s1.zarr` (one config, two seeds) and `ddpg.zarr.zip`
    (packed). Snapshots at 100, 200, 300 env steps; the first has no fitted model."""

    def build(root: Path) -> None:
        work, out = root / "work", root / "runs"
        work.mkdir()
        out.mkdir()
        cfg = work / "cfg.json"
        cfg.write_text(json.dumps(TRAINING_CONFIG))
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "engine", "train", *TRAINING_ARGS, *args, "--config", str(cfg),
                 "--out", str((out if name.startswith("sac") else work) / name)],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            for name, args in TRAINING_RUNS.items()
        }
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, f"{name}: {err[-2000:]}"
        pack(work / "ddpg.zarr", out / "ddpg.zarr.zip")
        for ckpt in out.glob("*.ckpt"):  # checkpoints of the runs: not stores, not needed
            shutil.rmtree(ckpt)

    return build_once("training", build) / "runs"


@pytest.fixture
def training_datasets(monkeypatch: pytest.MonkeyPatch, training_stores: Path) -> Path:
    """The app's bundled-stores folder pointed at the training runs."""
    monkeypatch.setenv(DATASETS_ENV, str(training_stores))
    return training_stores


MODEL_COMPARISON_ARGS = [
    "--stages", "3", "--horizon", "4", "--starts", "64", "--model-config",
    json.dumps({"mlp": {"hidden": 32, "layers": 2}, "ensemble": {"hidden": 32, "layers": 2, "members": 3, "elites": 2},
                "gru": {"hidden": 32, "mlp_hidden": 32, "seq_len": 3}}),
]


@pytest.fixture(scope="session")
def model_comparison_store(build_once: Callable[..., Path], training_stores: Path) -> Path:
    """`python -m engine study model-comparison` on the sac_s1 training run (~15 s), alone in
    its folder."""

    def build(folder: Path) -> None:
        done = run_engine(["study", "model-comparison", "--buffer", str(training_stores / "sac_s1.zarr"),
                           "--out", str(folder / "mc.zarr"), *MODEL_COMPARISON_ARGS])
        assert done.returncode == 0, done.stderr[-2000:]

    return build_once("model_comparison", build) / "mc.zarr"


@pytest.fixture
def model_comparison_datasets(monkeypatch: pytest.MonkeyPatch, model_comparison_store: Path) -> Path:
    """The app's bundled-stores folder pointed at the model_comparison store."""
    monkeypatch.setenv(DATASETS_ENV, str(model_comparison_store.parent))
    return model_comparison_store


@pytest.fixture
def generalization_datasets(monkeypatch: pytest.MonkeyPatch, generalization_store: Path) -> Path:
    """The app's bundled-stores folder pointed at the Study 3 run."""
    monkeypatch.setenv(DATASETS_ENV, str(generalization_store))
    return generalization_store
