"""Fixtures shared by every test folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock
from runkit import generalization_args, run_engine


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `-n N` (pytest-xdist with `--dist loadgroup`, set in pyproject.toml) tests are spread
    over worker processes, each with its own fixtures: a module's tests that use one of its
    module-scoped fixtures (a real training, a fitted model) go to one worker, so it is built
    once. A test with an explicit `xdist_group` keeps it."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group"):
            continue
        if any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def _committed(store: Path, group: str) -> int:
    """Committed length of `group` from the store's root metadata (0 while unreadable)."""
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["committed"].get(group, 0))
    except (OSError, json.JSONDecodeError, KeyError):
        return 0


@pytest.fixture
def kill_after_commit() -> Callable[..., None]:
    """Run `python -m engine ARGS` and SIGKILL it once `group` of `store` has `n` committed records."""

    def run(args: list[str], store: Path, group: str, n: int, timeout: float = 400) -> None:
        proc = subprocess.Popen([sys.executable, "-m", "engine", *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and _committed(store, group) < n:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    return run


@pytest.fixture
def plain_main(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawned worker processes (Dask's, the gradient study's) re-import the parent's `__main__`
    from its file. Streamlit's AppTest (tests/app, earlier in the same session) leaves
    `app/main.py` registered as `__main__`, and re-running it outside Streamlit kills the workers
    at start; a `__main__` without a file is not re-imported."""
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))


Build = Callable[[Path], None]


@pytest.fixture(scope="session")
def build_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Build], Path]:
    """`build_once(name, build)`: a folder filled by `build(folder)` once per test session, for
    stores that take a real training to make. Under pytest-xdist every worker has its own session:
    the first worker to ask builds the folder in the run's shared tmp dir while the others wait on
    a file lock, then all read it. Tests must not modify it."""

    def get(name: str, build: Build) -> Path:
        if os.environ.get("PYTEST_XDIST_WORKER") is None:  # one process: an ordinary tmp folder
            folder = tmp_path_factory.mktemp(name)
            build(folder)
            return folder
        shared = tmp_path_factory.getbasetemp().parent  # this run's, above every worker's own
        folder, done = shared / name, shared / f"{name}.built"
        with FileLock(shared / f"{name}.lock"):
            if not done.exists():  # none built, or a worker's build failed half-way
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                build(folder)
                done.touch()
        return folder

    return get


@pytest.fixture(scope="session")
def generalization_store(build_once: Callable[..., Path]) -> Path:
    """A folder holding only `gen.zarr`, the short Study 3 run of `runkit.generalization_args`
    (its checkpoints removed). Do not modify."""

    def build(root: Path) -> None:
        (root / "runs").mkdir()
        done = run_engine(generalization_args(root, root / "runs" / "gen.zarr"))
        assert done.returncode == 0, done.stderr[-3000:]
        shutil.rmtree(root / "runs" / "gen.zarr.ckpt")

    return build_once("generalization", build) / "runs"
