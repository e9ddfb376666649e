"""Sweeps on a real LocalCluster (127.0.0.1) running real short trainings."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml

from engine.record import open_run
from engine.sweep import ClusterOptions, client_for, load, parse, run_sweep, task

STEPS = 300
# tiny networks and budgets: a run is dominated by starting Python (torch, MuJoCo)
SPEC = {
    "out": "runs",
    "config": {"env_id": "InvertedPendulum-v5", "steps": STEPS, "start_steps": 100, "record_model": False,
               "eval_episodes": 1, "eval_max_steps": 20, "critic_samples": 8, "snapshot_interval": 300,
               "commit_interval": 100, "log_interval": 20, "agent.hidden": 32, "agent.batch_size": 32},
    "grid": {"seeds": [0, 1], "algos": ["sac", "ddpg"]},
}


pytestmark = pytest.mark.usefixtures("plain_main")  # see tests/conftest.py


def _committed(store: Path) -> int:
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["committed"].get("replay", 0))
    except (OSError, ValueError, KeyError):
        return 0


def _kill_when_committed(store: Path, worker: bool, timeout: float = 300) -> int:
    """Once `store` has committed replay rows, SIGKILL the `engine train` process writing it or,
    with `worker`, the Dask worker process that started it (its parent); the pid killed, or 0."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _committed(store) > 0:
            for proc in psutil.process_iter(["cmdline"]):
                cmd = proc.info["cmdline"] or []
                if "train" in cmd and str(store) in cmd:
                    target = proc.parent() if worker else proc
                    target.send_signal(signal.SIGKILL)
                    return target.pid
        time.sleep(0.05)
    return 0


def test_grid_expands_to_deterministic_distinct_stores(tmp_path):
    sweep = parse(SPEC, tmp_path)
    assert len(sweep.runs) == 4 and len({r.store for r in sweep.runs}) == 4
    assert [(r.config["seed"], r.config["algo"]) for r in sweep.runs] == [(0, "sac"), (0, "ddpg"), (1, "sac"), (1, "ddpg")]
    assert all(r.config["agent"] == {"hidden": 32, "batch_size": 32} for r in sweep.runs)
    assert [r.name for r in parse(SPEC, tmp_path).runs] == [r.name for r in sweep.runs]
    other = parse({**SPEC, "config": {**SPEC["config"], "steps": STEPS + 1}}, tmp_path)
    assert not {r.name for r in other.runs} & {r.name for r in sweep.runs}  # another config, another store
    with pytest.raises(ValueError, match="nonsense"):
        parse({**SPEC, "grid": {"nonsense": [1, 2]}}, tmp_path)
    with pytest.raises(ValueError, match="non-empty lists"):
        parse({**SPEC, "grid": {"seed": 3}}, tmp_path)
    with pytest.raises(ValueError, match="same config"):
        parse({**SPEC, "grid": {"seed": [1, 1]}}, tmp_path)


def test_a_rerun_in_the_same_invocation_fails_or_returns_the_recorded_result(tmp_path):
    """What Dask's reschedule of a task finds: its own invocation's marker without a result (the
    worker died while training: fail, no training) or with one (the worker died holding the
    result: the same result again)."""
    spec = parse(SPEC, tmp_path).runs[0]
    side = Path(spec.store).parent / task.SIDE_DIR
    side.mkdir(parents=True)
    marker = side / f"{spec.name}.attempt"
    marker.write_text(json.dumps({"invocation": "abc", "pid": 123, "host": "node1"}))
    lost = task.run(spec.name, spec.store, spec.config, "abc")
    assert lost.status == "failed" and "worker died while running it (pid 123 on node1)" in lost.reason
    assert not Path(spec.store).exists() and "worker lost" in Path(lost.log).read_text()
    done = task.RunResult(spec.name, spec.store, "done", "new", 12.5, "", "x.log")
    marker.write_text(json.dumps({"invocation": "abc", "pid": 1, "host": "node1", "result": dataclasses.asdict(done)}))
    assert task.run(spec.name, spec.store, spec.config, "abc") == done
    assert not Path(spec.store).exists()


def test_sweep_reports_killed_runs_and_resumes_them(tmp_path):
    """One sweep, two kills: the training child of one run, and the Dask worker process running
    another (its nanny restarts it; Dask reschedules the task, which must fail, not retrain)."""
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    sweep = load(spec_file)
    lost, victim = Path(sweep.runs[-2].store), Path(sweep.runs[-1].store)
    killed: dict[str, int] = {}
    killers = [threading.Thread(target=lambda s=s, w=w: killed.__setitem__(str(s), _kill_when_committed(s, w)))
               for s, w in ((victim, False), (lost, True))]
    for t in killers:
        t.start()
    with client_for(ClusterOptions(workers=2)) as client:
        assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
        worker_pids = set(client.run(os.getpid).values())
        results = run_sweep(sweep, client)
        client.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker
    for t in killers:
        t.join()
    assert killed[str(victim)] and killed[str(lost)] in worker_pids, (killed, worker_pids)
    assert not psutil.pid_exists(killed[str(lost)])
    by_store = {r.store: r for r in results}
    assert by_store[str(victim)].status == "failed" and "SIGKILL" in by_store[str(victim)].reason
    assert by_store[str(lost)].status == "failed", by_store[str(lost)]
    assert f"worker died while running it (pid {killed[str(lost)]}" in by_store[str(lost)].reason
    assert [r.status for r in results[:2]] == ["done"] * 2
    for store in (victim, lost):  # each kill left a store with everything committed so far
        partial = open_run(store)
        assert partial.attrs["status"] == "running" and 0 < partial["replay"].sizes["step"] < STEPS
    assert not [p for p in psutil.process_iter(["cmdline"])  # no orphaned training of the lost worker
                if str(lost) in (p.info["cmdline"] or [])]

    res = subprocess.run([sys.executable, "-m", "engine", "sweep", str(spec_file), "--workers", "2"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "2 skipped" in res.stdout and "2 done" in res.stdout and res.stdout.count("resume") == 2
    for run in sweep.runs:
        tree = open_run(run.store)  # schema-valid, values checked
        assert tree.attrs["status"] == "complete"
        config = json.loads(tree.attrs["config"])
        assert (config["seed"], config["algo"], config["agent"]["hidden"]) == (run.config["seed"], run.config["algo"], 32)
        np.testing.assert_array_equal(tree["replay"]["step"].values, np.arange(STEPS))  # no gap, no repeat
        assert tree["train"].sizes["update"] > 0
