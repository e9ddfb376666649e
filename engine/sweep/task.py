"""One sweep run, as executed on a Dask worker: decide new / resume / skip from its store, then
run `python -m engine train` as a child process of the worker.

A child process, not a call in the worker: a crash, a kill or a leak of the training (MuJoCo,
torch threads) cannot take the worker down, and the worker sees the run's exit status. The child
is killed when the worker dies (Linux `PR_SET_PDEATHSIG`), so a lost worker never leaves a
second writer behind; one store has one writer in any case (the store's lock).

A worker process that dies (SIGKILL, OOM killer, lost node) takes its run's child with it, and
Dask reschedules the task on another worker (its `allowed-failures`, 3 by default, are per
scheduler and not the client's to change). To report that run failed instead of retrying it
silently, each attempt leaves a marker `out/.sweep/NAME.attempt` naming the sweep invocation
(and, once finished, its result); an attempt that finds its own invocation's unfinished marker
is a rerun after a lost worker and fails at once with that reason (the next invocation of the
sweep resumes the run).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import engine
from engine.record import StoreError, open_run

SIDE_DIR = ".sweep"
"""Folder (inside the sweep's `out`) of each run's config file and log."""


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What happened to one run."""

    name: str
    store: str
    status: str
    """`done`, `skipped` (already complete), or `failed`."""
    action: str
    """`new`, `resume` or `skip`: what the run found in its store."""
    seconds: float
    reason: str = ""
    """Why it failed (the training's error message, a signal, an unreadable store)."""
    log: str = ""


def _subset(given: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """Whether every field of `given` (nested configs included) has its value in `stored`."""
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(stored.get(key), Mapping):
            if not _subset(value, stored[key]):
                return False
        elif stored.get(key) != value:
            return False
    return True


def plan(store: Path, config: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(`new` | `resume` | `skip`, extra `train` flags) for the run's store as it is now.

    Raises StoreError for a store that cannot be resumed (unreadable, or another config's).
    """
    if not store.exists():
        return "new", []
    if not (store / "zarr.json").exists():  # killed before the first metadata write
        return "new", ["--overwrite"]
    tree = open_run(store, check_values=False)
    if not _subset(config, json.loads(tree.attrs["config"])):
        raise StoreError(f"{store} holds a run of another config; move it away to rerun this one")
    if tree.attrs["status"] == "complete":
        return "skip", []
    return "resume", ["--resume"]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the worker thread that started us dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not glibc: the child may outlive a killed worker
        pass


def _reason(code: int, log: Path) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    return errors[-1] if errors else (lines[-1] if lines else f"exit status {code}")


def _write_marker(marker: Path, record: dict[str, Any]) -> None:
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, marker)  # a kill mid-write leaves the old marker or the new one, whole


def run(name: str, store: str, config: Mapping[str, Any], invocation: str = "") -> RunResult:
    """Run (or resume, or skip) one sweep run; never raises for a failed training.

    `invocation` names one invocation of the sweep (unique per invocation). Dask runs a task
    again when its worker died while running it, or died holding its result: the first case
    fails at once (the run is not trained twice in one invocation), the second returns the
    result recorded by the attempt that finished.
    """
    side = Path(store).parent / SIDE_DIR
    side.mkdir(parents=True, exist_ok=True)
    log, marker = side / f"{name}.log", side / f"{name}.attempt"
    if not invocation:
        return _attempt(name, store, config, log)
    try:
        earlier = json.loads(marker.read_text())
    except (OSError, ValueError):
        earlier = {}
    if earlier.get("invocation") == invocation:
        if "result" in earlier:
            return RunResult(**earlier["result"])
        reason = (f"its worker died while running it (pid {earlier.get('pid')} on {earlier.get('host')}); "
                  "not retried in this sweep")
        with open(log, "a") as fh:
            fh.write(f"worker lost: {reason}\n")
        return RunResult(name, store, "failed", "?", 0.0, reason, str(log))
    attempt = {"invocation": invocation, "pid": os.getpid(), "host": socket.gethostname()}
    _write_marker(marker, attempt)
    result = _attempt(name, store, config, log)
    _write_marker(marker, {**attempt, "result": dataclasses.asdict(result)})
    return result


def _attempt(name: str, store: str, config: Mapping[str, Any], log: Path) -> RunResult:
    """Plan the run from its store, then train it in a child process (or skip it)."""
    start = time.monotonic()
    path, side = Path(store), log.parent
    try:
        action, flags = plan(path, config)
    except StoreError as exc:
        return RunResult(name, store, "failed", "resume", time.monotonic() - start, str(exc))
    if action == "skip":
        return RunResult(name, store, "skipped", action, 0.0)
    cfg_file = side / f"{name}.json"
    cfg_file.write_text(json.dumps(config, indent=2, sort_keys=True))
    # the engine this worker imported, wherever the child's working directory is
    env = {**os.environ, "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(engine.__file__).parent.parent),
                                                       os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "engine", "train", "--config", str(cfg_file), "--out", store, *flags]
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                               preexec_fn=_die_with_parent)  # noqa: PLW1509 - only prctl, async-signal-safe
    seconds = time.monotonic() - start
    if code != 0:
        return RunResult(name, store, "failed", action, seconds, _reason(code, log), str(log))
    return RunResult(name, store, "done", action, seconds, "", str(log))
