"""Fixtures for the store tests: good stores built once per session (copy before corrupting)."""

from __future__ import annotations

from pathlib import Path

import pytest

import storekit


@pytest.fixture(scope="session")
def gradient_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete gradient_error store with 3 seeds over 2 commits. Do not modify."""
    path = tmp_path_factory.mktemp("good") / "grad.zarr"
    storekit.write_gradient(path, seeds=3, per_commit=2)
    return path


@pytest.fixture(scope="session")
def training_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete training store: replay, eval, train over 4 commits. Do not modify."""
    path = tmp_path_factory.mktemp("good") / "train.zarr"
    storekit.write_training(path, [7, 1, 30, 12])
    return path
