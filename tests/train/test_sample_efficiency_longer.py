"""bench/sample_efficiency.py --resume with a larger --steps extends finished runs (real, tiny runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine import open_run

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sample_efficiency.py"


def _bench(out: Path, steps: int, checkpoints: int, *extra: str) -> subprocess.CompletedProcess:
    # 1,000 random steps first: these runs never update, which is all the plumbing needs
    cmd = [sys.executable, str(BENCH), "--envs", "InvertedPendulum-v5", "--algos", "sac", "--seeds", "1",
           "--steps", str(steps), "--checkpoints", str(checkpoints), "--progress", "0", "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_resume_with_more_steps_extends_and_keeps_the_earlier_times(tmp_path: Path) -> None:
    first = _bench(tmp_path, 60, 3)
    assert first.returncode == 0, first.stderr[-3000:]
    (before,) = json.loads((tmp_path / "results.json").read_text())
    other_interval = _bench(tmp_path, 120, 3, "--resume")  # 40-step snapshots instead of 20
    assert other_interval.returncode == 1 and "snapshot_interval" in other_interval.stderr
    assert "--checkpoints" in other_interval.stderr and "Traceback" not in other_interval.stderr
    longer = _bench(tmp_path, 120, 6, "--resume")
    assert longer.returncode == 0, longer.stderr[-3000:]
    (run,) = json.loads((tmp_path / "results.json").read_text())
    assert (run["steps"], run["from_step"]) == (120, 60)
    assert run["env_step"] == [20, 40, 60, 80, 100, 120] and run["env_step"][:3] == before["env_step"]
    assert run["return"][:3] == before["return"]  # the first part's snapshots are kept, not redone
    assert run["earlier"] == [{k: before[k] for k in ("steps", "from_step", "wall_s", "cpu_s", "load_1min")}]
    store = open_run(tmp_path / "InvertedPendulum-v5-sac-0.zarr")
    assert json.loads(store.attrs["config"])["steps"] == 120 and store.attrs["status"] == "complete"
    assert np.array_equal(store["replay"].step.values, np.arange(120))
    again = _bench(tmp_path, 120, 6, "--resume")  # finished at this budget: kept as it is
    assert again.returncode == 0 and json.loads((tmp_path / "results.json").read_text()) == [run]
