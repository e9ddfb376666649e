"""Fixtures for the app tests: the bundled store, a small store made by the engine's CLI, and a
synthetic store for the pure-function tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # app_helpers, app_synthetic

from app_helpers import BUNDLED, REPO  # noqa: E402
from app_synthetic import write_store  # noqa: E402

from app.library import DATASETS_ENV  # noqa: E402
from engine.record import pack  # noqa: E402


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


@pytest.fixture(scope="session")
def synthetic_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic gradient_error store (5 seeds, H = 0..10), zipped, alone in its folder."""
    root = tmp_path_factory.mktemp("synthetic")
    store = write_store(root / "work" / "gradient_error.zarr")
    out = root / "datasets"
    out.mkdir()
    return pack(store, out / "gradient_error.zarr.zip")


@pytest.fixture(scope="session")
def small_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store written and packed by the engine's CLI (~10 s), as a user would upload it."""
    root = tmp_path_factory.mktemp("small")
    store, out = root / "small.zarr", root / "small.zarr.zip"
    for args in (
        ["study", "gradient-error", "--seeds", "2", "--horizons", "4", "--out", str(store)],
        ["pack", str(store), str(out)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def small_zip_bytes(small_zip: Path) -> bytes:
    """The CLI-made store's bytes."""
    return small_zip.read_bytes()
