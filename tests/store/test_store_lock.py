"""One writer per store: a second writer is refused; a dead writer's lock is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import storekit
from engine.record import RunWriter, StoreLockedError, open_run, pack

HOLD = """
import sys, time
import storekit
w = storekit.new_training(__import__("pathlib").Path(sys.argv[1]))
w.append("replay", **storekit.replay_rows(0, 3)); w.commit()
print("READY", flush=True)
time.sleep(120)
"""

SECOND = """
import sys
from engine.record import RunWriter, StoreLockedError
try:
    RunWriter.resume(sys.argv[1])
except StoreLockedError as exc:
    print(exc)
    raise SystemExit(3)
"""


def test_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    w = storekit.new_training(store)
    w.append("replay", **storekit.replay_rows(0, 5))
    w.commit()
    with pytest.raises(StoreLockedError, match=r"Another writer \(this process\) is writing .*one writer"):
        RunWriter.resume(store)
    with pytest.raises(StoreLockedError, match="Another writer"):
        storekit.new_training(store, overwrite=True)  # must not wipe the live store
    with pytest.raises(StoreLockedError, match="being written"):
        pack(store, tmp_path / "s.zip")
    assert open_run(store)["replay"].sizes["step"] == 5
    w.close()
    RunWriter.resume(store).close()  # released on close
    assert open_run(store)["replay"].sizes["step"] == 5


def test_writer_in_another_process_and_a_killed_writer(tmp_path: Path) -> None:
    store = tmp_path / "p.zarr"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store)], cwd=storekit.REPO, env=storekit.python_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        assert line == "READY", holder.stderr.read() if holder.stderr else line
        with pytest.raises(StoreLockedError, match=rf"process {holder.pid}\) is writing"):
            RunWriter.resume(store)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=30)
    # The OS dropped the dead writer's lock: resume works although the lock file remains.
    assert (store / ".writer.lock").exists()
    w = RunWriter.resume(store)
    assert w.committed["replay"] == 3
    # ... and now this process is the writer another process is refused by.
    second = storekit.run_python("-c", SECOND, str(store))
    assert second.returncode == 3, second.stderr
    assert f"Another writer (process {os.getpid()}) is writing" in second.stdout
    assert "one store has one writer" in second.stdout
    w.append("replay", **storekit.replay_rows(3, 2))
    w.close()
    np.testing.assert_array_equal(open_run(store)["replay"]["step"].values, np.arange(5))


def test_lock_is_released_even_when_close_fails(tmp_path: Path) -> None:
    store = tmp_path / "f.zarr"
    with pytest.raises(RuntimeError):
        with storekit.new_training(store) as w:
            w.append("replay", **storekit.replay_rows(0, 2))
            w.commit()
            raise RuntimeError("training blew up")
    tree = open_run(store)
    assert tree.attrs["status"] == "failed" and tree["replay"].sizes["step"] == 2
    RunWriter.resume(store).close()
