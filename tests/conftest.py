"""Fixtures shared by every test folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest


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
