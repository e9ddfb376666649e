"""Training longer: `--resume` with more `--steps` extends a finished run (real CLI runs, real stores)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine import open_run
from engine.train.run import REPLAY_FIELDS
from runkit import run_engine

N, M = 200, 400
#: snapshots and commits fall on N in both runs, and every update is its own train-log row (the
#: updates since the last row are not checkpointed), so the extended run does at N what a
#: straight run does
ARGS = ["--env", "InvertedPendulum-v5", "--start-steps", "100", "--model-start-steps", "100",
        "--snapshot-interval", "100"]
#: MBPO with small nets and 100-step epochs, so k rises 1 -> 3 across the resume
MBPO = {"updates_per_step": 2, "model_config": {"members": 3, "elites": 2, "hidden": 64},
        "rollout": {"rollout_batch_size": 300, "epoch_length": 100, "schedule": [1, 3, 1, 3]}}


def _config(tmp: Path, algo: str = "sac") -> Path:
    cfg = {"commit_interval": 100, "log_interval": 1, "eval_episodes": 2, "eval_max_steps": 100,
           "critic_samples": 32, "model_error_starts": 4, "model_error_horizon": 5, "model_fit_interval": 100,
           "agent": {"hidden": 64, "batch_size": 64}, **(MBPO if algo == "mbpo" else {})}
    path = tmp / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def _train(out: Path, *args: str, algo: str = "sac") -> subprocess.CompletedProcess:
    return run_engine(["train", "--out", str(out), "--algo", algo, *ARGS, *args])


@pytest.fixture(scope="module", params=["sac", "mbpo"])
def runs(request, tmp_path_factory) -> dict[str, Path | str]:
    """A run trained to N then extended to M, and a straight M-step run of the same config: `sac`
    (whose Study-1 model only records) and `mbpo` (whose agent trains on its model's rollouts)."""
    algo = request.param
    tmp = tmp_path_factory.mktemp(f"longer-{algo}")
    cfg = str(_config(tmp, algo))
    out: dict[str, Path | str] = {"extended": tmp / "extended.zarr", "straight": tmp / "straight.zarr", "algo": algo}
    first = _train(out["extended"], "--steps", str(N), "--config", cfg, algo=algo)
    assert first.returncode == 0, first.stderr[-3000:]
    assert open_run(out["extended"]).attrs["status"] == "complete"
    for name, args in (("extended", ["--resume"]), ("straight", [])):
        res = _train(out[name], "--steps", str(M), "--config", cfg, *args, algo=algo)
        assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_the_extended_store_is_one_gap_free_run_of_the_new_length(runs) -> None:
    tree = open_run(runs["extended"])
    assert tree.attrs["status"] == "complete"
    assert json.loads(tree.attrs["config"])["steps"] == M  # the config the run finished with
    replay = tree["replay"]
    assert replay.sizes["step"] == M and np.array_equal(replay.step.values, np.arange(M))
    assert tree.attrs["committed"]["replay"] == M
    assert tree["eval"]["env_step"].values.tolist() == [100, 200, 300, 400]
    assert np.all(np.diff(tree["train"]["update"].values) > 0)


def test_the_extended_run_equals_a_straight_run_of_the_new_length(runs) -> None:
    """Every RNG the agent, the environment and the models use is checkpointed (the models' own
    generators too), and N is a snapshot, commit and log step of both runs: replay, evaluations,
    critic predictions, training metrics (MBPO's rollout and buffer metrics among them) and
    Study-1 model errors after the refits that follow the resume are bit for bit those of the
    straight run."""
    ext, straight = open_run(runs["extended"]), open_run(runs["straight"])
    ext_config, straight_config = (json.loads(t.attrs["config"]) for t in (ext, straight))
    assert ext_config == straight_config
    for name in REPLAY_FIELDS:
        np.testing.assert_array_equal(ext["replay"][name].values, straight["replay"][name].values, err_msg=name)
    assert (ext["model_error"]["model_fit_step"].values > N).sum() == 1  # at 400: the model refitted at 300
    for group in ("eval", "critic", "train", "model_error"):
        for name, var in straight[group].data_vars.items():
            np.testing.assert_array_equal(ext[group][name].values, var.values, err_msg=f"{group}/{name}")


def test_only_steps_may_change_and_only_upwards(runs, tmp_path) -> None:
    store = tmp_path / "copy.zarr"
    subprocess.run(["cp", "-a", str(runs["extended"]), str(store)], check=True)
    subprocess.run(["cp", "-a", f"{runs['extended']}.ckpt", f"{store}.ckpt"], check=True)
    algo = runs["algo"]
    cfg = str(_config(tmp_path, algo))
    shorter = _train(store, "--steps", str(N), "--config", cfg, "--resume", algo=algo)
    assert shorter.returncode == 1 and "only be extended" in shorter.stderr and f"steps {M} -> {N}" in shorter.stderr
    other = _train(store, "--steps", str(M + 100), "--seed", "7", "--config", cfg, "--resume", algo=algo)
    assert other.returncode == 1 and "['seed']" in other.stderr and "Traceback" not in other.stderr
    tree = open_run(store)  # both refused before touching the store
    assert tree.attrs["status"] == "complete" and json.loads(tree.attrs["config"])["steps"] == M
    assert tree["replay"].sizes["step"] == M
