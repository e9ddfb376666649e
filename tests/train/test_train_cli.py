"""Real short trainings through the CLI, checked on the stores they write."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import open_run
from engine.models import make_dynamics
from engine.envs.factory import make_env
from engine.train import checkpoint
from engine.train.open_loop import open_loop_errors
from engine.train.replay import Replay
from engine.train.run import REPLAY_FIELDS

H = 8
SHORT = ["--steps", "400", "--start-steps", "100", "--model-start-steps", "100", "--snapshot-interval", "200"]


# The agents' default networks (SAC: 2 x 512, batch 512) make a 400-step smoke run spend most of
# its time in updates; these runs check the store and the preset's plumbing, not learning.
SMALL_AGENT = {"hidden": 64, "batch_size": 64}


def _config(tmp: Path, **extra) -> Path:
    """The short runs' config file (small agent networks unless `extra` has an `agent`)."""
    cfg = {"model_error_horizon": H, "model_error_starts": 12, "holdout_block": 16, "holdout_fraction": 0.5,
           "model_fit_interval": 150, "commit_interval": 100, "eval_episodes": 2, "eval_max_steps": 200,
           "critic_samples": 64, "log_interval": 20, "agent": SMALL_AGENT, **extra}
    path = tmp / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def _train(out: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "engine", "train", "--out", str(out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _check_store(out: Path, steps: int) -> dict:
    tree = open_run(out)
    assert tree.attrs["status"] == "complete" and tree.attrs["kind"] == "training"
    replay = tree["replay"]
    assert replay.sizes["step"] == steps
    assert np.array_equal(replay.step.values, np.arange(steps))
    for group in ("eval", "critic", "model_error"):
        assert tree[group].sizes["snapshot"] >= 2
    q = tree["critic"]
    real = q["t"].values >= 0
    assert real.any() and np.isfinite(q["q_pred"].values[real]).all() and np.isfinite(q["return_true"].values[real]).all()
    me = tree["model_error"]
    assert list(me.horizon.values) == list(range(1, H + 1))
    starts = me["start_step"].values  # (snapshot, split, start)
    err = me["error"].values
    fitted = me["model_fit_step"].values > 0
    assert fitted.any()
    ep, term = replay["episode"].values, replay["terminated"].values
    holdout_seen = 0
    for s in np.flatnonzero(fitted):
        ok = starts[s] >= 0
        holdout_seen += int(ok[0].sum())
        assert np.isfinite(err[s][ok]).all()  # every horizon of every real start is filled
        assert np.isnan(err[s][~ok]).all()  # padding stays padding
        for t in starts[s][ok]:  # no window crosses an episode end
            assert ep[t + H - 1] == ep[t] and not term[t : t + H - 1].any()
        assert replay["holdout"].values[starts[s][0][ok[0]]].all()
    # short episodes of an untrained policy may leave a snapshot without a valid holdout
    # window, but not the whole run
    assert holdout_seen > 0, "no holdout start in any snapshot"
    return tree


ORACLE = {"agent": {**SMALL_AGENT, "batch_size": 32}}  # MVE appendix A: batch 32 with the oracle (it steps the simulator per sample)
# pathwise actors backpropagate through H model steps: smaller networks keep the smoke runs short
PATHWISE = {"agent": {"batch_size": 64, "hidden": 64}, "horizon": 2}
# MBPO with small nets, few branches and 100-step epochs so k rises 1 -> 3 within the run
MBPO = {"updates_per_step": 2, "agent": {"hidden": 64}, "model_config": {"members": 3, "elites": 2, "hidden": 64},
        "rollout": {"rollout_batch_size": 300, "epoch_length": 100, "schedule": [1, 3, 1, 3]}}
MBPO_METRICS = ("model_buffer_size", "rollout_length", "rollout_mean_length", "ensemble_disagreement",
                "model_batch_fraction")


@pytest.fixture(scope="module")
def sac_short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sac preset's short run with the default test config: the smoke test checks its store,
    the open-loop test recomputes its model errors (one xdist group: one run per session)."""
    tmp = tmp_path_factory.mktemp("sac_short")
    out = tmp / "run.zarr"
    res = _train(out, "--algo", "sac", "--env", "InvertedPendulum-v5", *SHORT, "--config", str(_config(tmp)))
    assert res.returncode == 0, res.stderr[-3000:]
    return out


SAC_SHORT = pytest.mark.xdist_group("sac_short")


@pytest.mark.parametrize(("algo", "env", "extra"), [
    pytest.param("sac", "InvertedPendulum-v5", {}, marks=SAC_SHORT), ("ddpg", "InvertedPendulum-v5", {}), ("naf", "InvertedPendulum-v5", {}),
    ("mve-ddpg", "InvertedPendulum-v5", {}), ("mve-ddpg --reward learned", "InvertedPendulum-v5", {}), ("mve-sac --dynamics oracle --horizon 3", "InvertedPendulum-v5", ORACLE),
    ("sac", "HalfCheetah-v5", {}), ("sac-svg", "InvertedPendulum-v5", PATHWISE),
    ("maac", "InvertedPendulum-v5", {**PATHWISE, "model_config": {"members": 3, "elites": 2}}),
    ("mbpo", "InvertedPendulum-v5", MBPO), ("mbpo --dynamics oracle", "InvertedPendulum-v5", MBPO),
])
def test_short_training_writes_a_complete_store(tmp_path, request, algo, env, extra):
    if (algo, env, extra) == ("sac", "InvertedPendulum-v5", {}):
        out = request.getfixturevalue("sac_short")
    else:
        out = tmp_path / "run.zarr"
        res = _train(out, "--algo", *algo.split(), "--env", env, *SHORT, "--config", str(_config(tmp_path, **extra)))
        assert res.returncode == 0, res.stderr[-3000:]
    tree = _check_store(out, 400)
    metrics = set(tree["train"].data_vars)
    assert "critic_loss" in metrics and tree["train"].sizes["update"] > 0
    if "learned" in algo:  # imagined rewards from fitted SVG-style models: they were fitted
        assert json.loads(tree.attrs["config"])["reward"] == "learned"
        ckpt = torch.load(checkpoint.latest(out, 400), weights_only=True)
        assert set(ckpt["learned"]) == {"reward_model", "termination_model"}
    if algo in ("sac-svg", "maac"):  # the preset's model class, and the actor trained through it
        stored = json.loads(tree.attrs["config"])
        assert stored["model"] == {"sac-svg": "gru", "maac": "ensemble"}[algo] and stored["horizon"] == 2
        assert np.isfinite(tree["train"]["actor_loss"].values).all()
    if algo.startswith("mbpo"):  # the rollout metrics, in the rows after the first rollout
        tr = tree["train"]
        after = np.isfinite(tr["rollout_mean_length"].values)  # NaN in rows with an update before it
        assert after.sum() >= tr.sizes["update"] - 1  # the first fit comes with the first updates
        rows = {k: tr[k].values[after] for k in MBPO_METRICS}
        # last fit at 300 (interval 150): epoch 3 of 100 steps, k = 3; 300 branches x <= 3 steps
        assert rows["rollout_length"][-1] == 3 and 300 < rows["model_buffer_size"][-1] <= 900
        assert np.all((rows["rollout_mean_length"] >= 1) & (rows["rollout_mean_length"] <= rows["rollout_length"]))
        np.testing.assert_allclose(rows["model_batch_fraction"], 1 - int(256 * 0.05) / 256)
        disagreement = rows["ensemble_disagreement"]
        if "oracle" in algo:  # no ensemble, no disagreement
            assert np.isnan(disagreement).all()
        else:
            assert np.isfinite(disagreement).all() and (disagreement > 0).all()
    # Study 1's calibration view: the ensemble's disagreement beside every real error, else NaN
    me = tree["model_error"]
    real = np.isfinite(me["error"].values)
    spread = me["disagreement"].values
    assert np.isnan(spread[~real]).all()
    if algo in ("mbpo", "maac"):
        assert real.any() and np.isfinite(spread[real]).all() and (spread[real] > 0).all()
    else:
        assert np.isnan(spread).all()
    if env.startswith("HalfCheetah"):  # fully observable: x position kept, sim state stored
        assert tree["replay"].sizes["obs_dim"] == 18 and tree["replay"].sizes["sim_dim"] == 27


@SAC_SHORT
def test_stored_open_loop_errors_recompute_from_the_saved_model(sac_short):
    out = sac_short
    # last fit at 300 (interval 150), final snapshot at 400 uses that model, as does the checkpoint
    tree = open_run(out)
    me = tree["model_error"].isel(snapshot=-1)
    assert int(me["model_fit_step"]) == 300
    env = make_env("InvertedPendulum-v5")
    model = make_dynamics("mlp", env.observation_space, env.action_space, "InvertedPendulum-v5")
    state = torch.load(checkpoint.latest(out, 400), weights_only=True)
    model.load_state_dict(state["model"])
    replay = Replay.empty(400, 4, 1, tree["replay"].sizes["sim_dim"])
    replay.load({k: tree["replay"][k].values for k in REPLAY_FIELDS})
    std = replay.next_obs[:400].std(0)
    for split in range(2):
        starts = me["start_step"].values[split]
        err, err_n = open_loop_errors(model, replay, starts, H, std)
        np.testing.assert_allclose(err, me["error"].values[split], rtol=1e-5, equal_nan=True)
        np.testing.assert_allclose(err_n, me["error_normalized"].values[split], rtol=1e-5, equal_nan=True)


def test_killed_training_resumes_without_gap_or_duplicate(tmp_path, kill_after_commit):
    out = tmp_path / "run.zarr"
    cfg = _config(tmp_path)
    args = ["--algo", "sac", "--env", "InvertedPendulum-v5", "--steps", "700", "--start-steps", "100",
            "--model-start-steps", "100", "--snapshot-interval", "200", "--config", str(cfg)]
    kill_after_commit(["train", "--out", str(out), *args], out, "replay", 300)
    partial = open_run(out)
    n_partial = partial["replay"].sizes["step"]
    assert 300 <= n_partial < 700 and partial.attrs["status"] == "running"
    res = _train(out, *args, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    tree = _check_store(out, 700)
    snaps = tree["eval"]["env_step"].values
    assert np.all(np.diff(snaps) > 0) and list(snaps) == [200, 400, 600, 700]
    upd = tree["train"]["update"].values
    assert np.all(np.diff(upd) > 0)


def test_bad_config_gets_a_message(tmp_path):
    res = _train(tmp_path / "x.zarr", "--algo", "sac", "--config", str(_config(tmp_path, nonsense=1)))
    assert res.returncode == 2 and "nonsense" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("algo", ["sac-svg", "maac"])
def test_the_oracle_is_refused_for_a_model_based_actor(tmp_path, algo):
    from engine.train.config import TrainConfig

    with pytest.raises(ValueError, match="not differentiable"):
        TrainConfig(algo=algo, dynamics="oracle")
    res = _train(tmp_path / "x.zarr", "--algo", algo, "--dynamics", "oracle", "--env", "InvertedPendulum-v5")
    assert res.returncode == 2 and "not differentiable" in res.stderr and "Traceback" not in res.stderr


def test_a_run_interrupted_right_after_an_episode_ended_resumes(tmp_path):
    from engine.train.config import TrainConfig
    from engine.train.run import train

    cfg = TrainConfig(algo="sac", env_id="InvertedPendulum-v5", steps=120, start_steps=1000, record_model=False,
                      eval_episodes=1, eval_max_steps=10, critic_samples=8, snapshot_interval=1000)
    full = open_run(train(cfg, tmp_path / "full.zarr"))["replay"]
    end = int(np.flatnonzero(full["terminated"].values)[0]) + 1  # steps done when the first episode ended
    cfg = dataclasses.replace(cfg, commit_interval=end)

    def stop(step: int, _last: dict) -> None:
        if step == end:  # committed and checkpointed at episode_step 0, with the reset's observation
            raise KeyboardInterrupt

    out = tmp_path / "cut.zarr"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, progress=stop)
    assert open_run(out)["replay"].sizes["step"] == end
    cut = open_run(train(cfg, out, resume=True))["replay"]
    assert cut.sizes["step"] == 120
    # the resumed run starts the second episode from the same seeded reset
    np.testing.assert_array_equal(cut["obs"].values[end], full["obs"].values[end])
    assert cut["episode"].values[end] == 1


def test_a_model_based_run_whose_model_never_starts_is_flagged():
    """2000 steps of maac with the default 5000-step model start would be SAC under another name
    (the first algorithm gallery was built that way): the config says so, and `train` warns."""
    from engine.train.config import TrainConfig

    idle = TrainConfig(algo="maac", env_id="InvertedPendulum-v5", steps=2000)
    assert idle.model_start_steps >= idle.steps and "never uses a model" in idle.model_idle_note()
    assert TrainConfig(algo="maac", steps=2000, model_start_steps=500).model_idle_note() is None
    assert TrainConfig(algo="sac", steps=100).model_idle_note() is None  # its model only records
    assert TrainConfig(algo="mve-ddpg", steps=100, dynamics="oracle").model_idle_note() is None
    assert TrainConfig(algo="mbpo", steps=100, dynamics="oracle").model_idle_note() is not None
