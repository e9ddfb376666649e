"""Study 1b (model classes on a recorded buffer): splits, windows, the stored MSE against an
independent recomputation, and kill/resume, on a real short training run made by the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from engine import open_run
from engine.models.dynamics_base import ModelState, Transitions
from engine.studies.model_comparison import ModelComparisonConfig, build_model, split_episodes
from engine.train.open_loop import window_starts
from runkit import run_engine

SMALL_MODELS = {"mlp": {"hidden": 32, "layers": 2},
                "ensemble": {"hidden": 32, "layers": 2, "members": 3, "elites": 2},
                "gru": {"hidden": 32, "mlp_hidden": 32, "seq_len": 3}}
ARGS = ["--stages", "3", "--horizon", "4", "--starts", "10000", "--model-config", json.dumps(SMALL_MODELS)]


def _engine(*args: str) -> subprocess.CompletedProcess:
    return run_engine(list(args))


@pytest.fixture(scope="module")
def buffer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 600-step SAC run on InvertedPendulum-v5 (many short episodes), no model recorded."""
    root = tmp_path_factory.mktemp("mc")
    cfg = root / "cfg.json"
    cfg.write_text(json.dumps({"record_model": False, "commit_interval": 200, "eval_episodes": 1,
                               "critic_samples": 16, "agent": {"hidden": 32, "batch_size": 32}}))
    out = root / "run.zarr"
    done = _engine("train", "--algo", "sac", "--env", "InvertedPendulum-v5", "--steps", "600",
                   "--start-steps", "300", "--snapshot-interval", "300", "--config", str(cfg), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def study(buffer: Path) -> Path:
    out = buffer.parent / "mc.zarr"
    done = _engine("study", "model-comparison", "--buffer", str(buffer), "--out", str(out), *ARGS)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def _rows(buffer: Path) -> dict[str, np.ndarray]:
    replay = xr.open_datatree(buffer, engine="zarr")["replay"]  # plain xarray: independent reader
    return {k: replay[k].values for k in ("obs", "action", "reward", "next_obs", "terminated", "episode")}


def test_splits_and_stages(buffer: Path) -> None:
    rows = _rows(buffer)
    cfg = ModelComparisonConfig(buffer=str(buffer), stages=3, holdout_fraction=0.3)
    ep = split_episodes(rows, cfg)
    n = len(np.unique(rows["episode"]))
    assert len(ep.ids) == n and list(ep.ids) == sorted(ep.ids)
    n_test = int(np.ceil(0.2 * n))
    assert (ep.split[-n_test:] == "test").all() and (ep.split[:-n_test] != "test").all()
    assert (ep.stage[-n_test:] == 0).all()
    pool = ep.stage[:-n_test]
    assert pool[0] == 1 and pool[-1] == 3 and (np.diff(pool) >= 0).all()  # stages take episodes in order
    assert {"train", "holdout"} <= set(ep.split[:-n_test])
    # the holdout choice does not depend on the number of stages: a held-out episode stays held out
    assert (split_episodes(rows, ModelComparisonConfig(buffer="", stages=2, holdout_fraction=0.3)).split == ep.split).all()


def test_windows_stay_inside_episodes_and_rows() -> None:
    episode = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    terminated = np.zeros(12, bool)
    terminated[9] = True  # episode 2 terminates early at row 9 (rows 10, 11 are another reset)
    episode[10:] = 3
    rows = np.ones(12, bool)
    rows[5] = False
    got = window_starts(episode, terminated, 2, rows)
    assert list(got) == [0, 1, 2, 7, 8, 10]  # 4/6 cross the excluded row 5, 9 crosses the episode end
    assert list(window_starts(episode, terminated, 3, rows)) == [0, 1, 7]  # 8: termination at 9 is its last step


def test_store_is_valid_and_complete(study: Path) -> None:
    checked = _engine("validate", str(study))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tree = open_run(study)
    assert tree.attrs["kind"] == "model_comparison" and tree.attrs["status"] == "complete"
    mc = tree["model_comparison"]
    assert list(mc.model.values) == ["mlp", "ensemble", "gru"]
    assert list(mc.stage.values) == [1, 2, 3] and list(mc.horizon.values) == [1, 2, 3, 4]
    assert (np.diff(mc["n_episodes"].values) > 0).all()
    mse = mc["mse"].sel(split="train").values
    assert np.isfinite(mse).all() and (mse >= 0).all()
    assert mc["mse"].attrs["units"] == "env^2"


def test_stored_mse_equals_an_independent_recomputation(buffer: Path, study: Path) -> None:
    """Refit the stage-2 mlp the documented way, then average the squared error of every window
    of every split (starts = 10000 keeps all of them) with a plain step loop."""
    rows = _rows(buffer)
    cfg = ModelComparisonConfig(buffer=str(buffer), stages=3, horizon=4, starts=10000, model_config=SMALL_MODELS)
    ep = split_episodes(rows, cfg)
    n_pool = int((ep.stage > 0).sum())
    stage2 = set(ep.ids[: round(2 * n_pool / 3)])
    test = set(ep.ids[ep.split == "test"])
    member = {s: {int(i) for i in ep.ids[ep.split == s]} for s in ("train", "holdout")}
    fit = np.array([e in stage2 and e in member["train"] for e in rows["episode"]])
    torch.set_num_threads(1)
    model = build_model("mlp", cfg, 4, 1, cfg.seed + 2)
    model.fit(Transitions(**{k: v[fit] for k, v in rows.items()}))
    stored = open_run(study)["model_comparison"]["mse"].sel(model="mlp", stage=2)
    for split, episodes in (("train", stage2 & member["train"]), ("holdout", stage2 & member["holdout"]),
                            ("test", test)):
        errors = []
        for e in sorted(episodes):
            idx = np.flatnonzero(rows["episode"] == e)
            for t in idx:
                win = np.arange(t, t + 4)
                if win[-1] > idx[-1] or rows["terminated"][win[:-1]].any():
                    continue
                state = ModelState(torch.as_tensor(rows["obs"][t:t + 1], dtype=torch.float32))
                sq = []
                with torch.no_grad():
                    for h in range(4):
                        state = model.step(state, torch.as_tensor(rows["action"][win[h]][None]))
                        sq.append(((state.obs.numpy()[0] - rows["next_obs"][win[h]]) ** 2).mean())
                errors.append(sq)
        expected = np.mean(errors, axis=0) if errors else np.full(4, np.nan)
        np.testing.assert_allclose(stored.sel(split=split).values, expected, rtol=1e-4)


def test_killed_study_resumes_to_the_same_numbers(buffer: Path, study: Path, tmp_path: Path,
                                                   kill_after_commit) -> None:  # noqa: ANN001
    out = tmp_path / "killed.zarr"
    kill_after_commit(["study", "model-comparison", "--buffer", str(buffer), "--out", str(out), *ARGS],
                      out, "model_comparison", 1)
    partial = open_run(out)
    assert partial.attrs["status"] == "running" and 1 <= partial["model_comparison"].sizes["stage"] < 3
    done = _engine("study", "model-comparison", "--buffer", str(buffer), "--out", str(out), *ARGS, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = open_run(out)["model_comparison"], open_run(study)["model_comparison"]
    assert list(a.stage.values) == [1, 2, 3]
    np.testing.assert_array_equal(a["mse"].values, b["mse"].values)
    other = _engine("study", "model-comparison", "--buffer", str(buffer), "--out", str(out),
                    *ARGS[:-2], "--resume")  # other model config: refused
    assert other.returncode == 1 and "different config" in other.stderr


def test_bad_input_gets_a_message(buffer: Path, study: Path, tmp_path: Path) -> None:
    res = _engine("study", "model-comparison", "--buffer", str(buffer), "--models", "mlp,lstm",
                  "--out", str(tmp_path / "x.zarr"))
    assert res.returncode == 2 and "lstm" in res.stderr and "Traceback" not in res.stderr
    res = _engine("study", "model-comparison", "--buffer", str(study), "--out", str(tmp_path / "y.zarr"))
    assert res.returncode == 1 and "no replay group" in res.stderr and "Traceback" not in res.stderr
    res = _engine("study", "model-comparison", "--buffer", str(buffer), "--stages", "500",
                  "--out", str(tmp_path / "z.zarr"))
    assert res.returncode == 1 and "too few" in res.stderr
