"""SIGKILL the writer mid-run: the store keeps exactly its committed records and resumes
without gaps or duplicates."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

import storekit
from crash_writer import BATCH, OBS_DIM
from engine.record import RunWriter, open_run, pack

HERE = Path(__file__).resolve().parent


class Writer:
    """A crash_writer.py child process with a line reader that never blocks the test forever."""

    def __init__(self, store: Path, mode: str, commits: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "crash_writer.py"), str(store), mode, str(commits)],
            cwd=storekit.REPO, env=storekit.python_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        self.last: tuple[int, int, int] | None = None
        self.stderr = ""

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def until(self, want: str, count: int = 1) -> None:
        """Read lines until the `count`-th line starting with `want`; remember the last C line."""
        seen = 0
        while seen < count:
            try:
                line = self.lines.get(timeout=90)
            except queue.Empty:
                self.kill()
                raise AssertionError(f"writer silent while waiting for {want!r}") from None
            if line is None:
                self.finish()
                raise AssertionError(
                    f"writer ended before {want!r} (exit {self.proc.returncode}):\n{self.stderr}")
            if line.startswith(("C ", "START ")):
                _, c, s, u = line.split()
                self.last = (int(c), int(s), int(u))
            if line.startswith(want):
                seen += 1

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.finish()
        assert self.proc.returncode == -signal.SIGKILL

    def finish(self) -> int:
        """Wait for the process, then drain and close its pipes."""
        self.proc.wait(timeout=30)
        self.pump.join(timeout=30)  # ends at EOF of stdout
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        self.stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        return self.proc.returncode


def check_committed(store: Path) -> tuple[int, int, int]:
    """open_run shows exactly the committed records, with the values the writer wrote."""
    tree = open_run(store)
    commit = tree.attrs["commit"]
    n, u = tree.attrs["committed"]["replay"], tree.attrs["committed"]["train"]
    replay = tree["replay"].to_dataset()
    assert replay.sizes["step"] == n
    for name, values in storekit.replay_rows(0, n, obs_dim=OBS_DIM).items():
        np.testing.assert_array_equal(replay[name].values, values, err_msg=name)
    train = tree["train"].to_dataset()
    for name, values in storekit.train_rows(0, u).items():
        np.testing.assert_array_equal(train[name].values, values, err_msg=name)
    return commit, n, u


def raw_lengths(store: Path, group: str) -> dict[str, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = zarr.open_group(store / group, mode="r")
        return {name: a.shape[0] for name, a in g.arrays() if a.ndim and name not in ("obs_dim", "act_dim")}


def test_sigkill_at_any_point_then_resume(tmp_path: Path) -> None:
    store = tmp_path / "crash.zarr"

    # 1. Killed a moment into a commit (the writer prints "A" just before committing; its
    #    commits take tens of ms): usually lands mid-append, and any landing point must do.
    w = Writer(store, "free")
    w.until("A ", count=4)
    time.sleep(0.02)
    w.kill()
    assert w.last is not None
    printed_commit, printed_n, printed_u = w.last
    commit, n, u = check_committed(store)
    extra = commit - printed_commit  # the kill may land between a commit and its print
    assert extra in (0, 1)
    assert (n, u) == (printed_n + extra * BATCH, printed_u + extra)

    # 2. Killed mid-commit with some arrays appended and others not (the ragged case).
    w = Writer(store, "pause-append")
    w.until("START")
    assert w.last == (commit, n, u)  # resume continued from the committed prefix
    w.until("PAUSED")
    w.kill()
    _, n, u = check_committed(store)
    assert w.last is not None and (n, u) == w.last[1:]
    lengths = raw_lengths(store, "replay")
    assert max(lengths.values()) == n + BATCH and min(lengths.values()) == n, lengths
    resumed = RunWriter.resume(store)  # the killed writer's lock does not block; the tail goes
    assert set(raw_lengths(store, "replay").values()) == {n}
    assert set(raw_lengths(store, "train").values()) == {u}
    resumed.close("running")

    # 3. Killed after an array grew but before its data was written (a fill-value tail).
    w = Writer(store, "pause-resize")
    w.until("PAUSED")
    w.kill()
    _, n, u = check_committed(store)
    lengths = raw_lengths(store, "replay")
    # resume had cut stage 2's ragged tail: only the array being appended is longer now
    assert sorted(lengths.values()).count(n) == len(lengths) - 1, lengths
    assert max(lengths.values()) == n + BATCH

    # 4. Resume and finish normally; then plain xarray reads it too.
    w = Writer(store, "free", commits=3)
    w.until("CLOSED")
    assert w.finish() == 0
    assert w.last is not None
    commit, n, u = check_committed(store)
    assert (n, u) == w.last[1:]
    assert not (store / ".writer.lock").exists()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = xr.open_datatree(store, engine="zarr")
        steps = plain["replay"]["step"].values
        updates = plain["train"]["update"].values
    assert not caught, [str(c.message) for c in caught]
    assert len(steps) == n and np.all(np.diff(steps) == 1) and steps[0] == 0  # gap-free, unique
    np.testing.assert_array_equal(updates, np.arange(u))
    np.testing.assert_array_equal(plain["replay"]["obs"].values,
                                  storekit.replay_rows(0, n, obs_dim=OBS_DIM)["obs"])


def test_leftover_partial_files_are_ignored_and_cleaned(training_store: Path, tmp_path: Path) -> None:
    """A kill inside zarr's atomic write leaves `NAME.<uuid>.partial` files behind."""
    store = storekit.copy_store(training_store, tmp_path / "s.zarr")
    partials = [store / "zarr.0123abcd.partial", store / "replay" / "obs" / "c" / "0" / "1.89ab.partial"]
    for p in partials:
        p.write_bytes(b"half a file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tree = open_run(store)
    assert not caught, [str(c.message) for c in caught]
    assert tree["replay"].sizes["step"] == 50
    zip_path = pack(store, tmp_path / "s.zarr.zip")
    assert open_run(zip_path)["replay"].sizes["step"] == 50
    with zipfile.ZipFile(zip_path) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".partial")]
    RunWriter.resume(store).close()
    assert not any(p.exists() for p in partials)


def test_uncommitted_group_is_invisible_and_dropped_on_resume(tmp_path: Path) -> None:
    """A kill while a group was being created leaves a group the commit record never names."""
    store = tmp_path / "g.zarr"
    w = storekit.new_training(store)
    w.append("replay", **storekit.replay_rows(0, 4))
    w.commit()
    zarr.open_group(store, mode="r+").create_group("critic").create_array(
        "half", shape=(3,), dtype="f4", dimension_names=["sample"])
    w._lock.close()  # the process "dies": the OS drops its lock
    tree = open_run(store)
    assert "critic" not in tree.children and tree["replay"].sizes["step"] == 4
    w2 = RunWriter.resume(store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr notes the lock file is not a Zarr node
        assert "critic" not in [name for name, _ in zarr.open_group(store, mode="r").groups()]
    w2.append("replay", **storekit.replay_rows(4, 2))
    w2.close()
    np.testing.assert_array_equal(open_run(store)["replay"]["step"].values, np.arange(6))


def test_resume_of_a_complete_store_drops_stale_consolidated_metadata(training_store: Path,
                                                                     tmp_path: Path) -> None:
    store = storekit.copy_store(training_store, tmp_path / "c.zarr")
    w = RunWriter.resume(store)
    w.append("replay", **storekit.replay_rows(50, 5))
    w.commit()
    # while running, zarr's default (consolidated if present) view must not show the old shapes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert zarr.open_group(store, mode="r")["replay"]["step"].shape == (55,)
    assert open_run(store).attrs["status"] == "running"
    w.close()
    assert open_run(store)["replay"].sizes["step"] == 55
    assert xr.open_datatree(store, engine="zarr")["replay"].sizes["step"] == 55
