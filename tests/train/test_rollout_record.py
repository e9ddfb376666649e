"""The predicted open-loop trajectories a training run stores (`model_error/prediction` and
`prediction_spread`), checked against independent recomputations: the saved model re-run on the
stored start states, the true trajectory read back from the replay, and the ensemble's spread
recomputed along the stored trajectory."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import open_run
from engine.envs.factory import make_env
from engine.models import make_dynamics
from engine.models.dynamics_base import ModelState
from engine.train import checkpoint
from engine.train.config import TrainConfig
from engine.train.loop import _model_config
from engine.train.run import train

# tests pick the runs by name (getfixturevalue): one xdist worker trains them once
pytestmark = pytest.mark.xdist_group("test_rollout_record")

ENV = "HalfCheetah-v5"
# fits at 100 and 200; snapshots at 100 (no model yet), 200 and 300. The last snapshot's model
# (fitted at 200, not refitted at 300) is the one in the last checkpoint (step 300).
SHORT = {"env_id": ENV, "steps": 300, "start_steps": 100, "model_start_steps": 100, "model_fit_interval": 200,
         "snapshot_interval": 100, "commit_interval": 100, "model_error_horizon": 8, "model_error_starts": 6,
         "holdout_block": 16, "holdout_fraction": 0.25, "eval_episodes": 1, "eval_max_steps": 20,
         "critic_samples": 8, "agent": {"hidden": 32, "batch_size": 32}}
SMALL_ENSEMBLE = {"hidden": 32, "layers": 2, "members": 3, "elites": 2}


def _saved_model(cfg: TrainConfig, out: Path) -> torch.nn.Module:
    """The dynamics model of the run's last checkpoint, in a freshly built model."""
    env = make_env(ENV, cfg.fully_observable)
    model = make_dynamics(cfg.model, env.observation_space, env.action_space, ENV, _model_config(cfg.model, cfg))
    ckpt = checkpoint.latest(out, 10**9)
    model.load_state_dict(torch.load(ckpt, weights_only=True)["model"])
    return model.eval()


def _windows(me, replay, snapshot: int):  # noqa: ANN001, ANN202
    """Per split: the real starts' replay rows, the stored predictions (start, H, obs) and the
    true trajectories next_obs[t + h - 1] read from the replay."""
    H = me.sizes["horizon"]
    for split in me["split"].values:
        rows = me["start_step"].sel(snapshot=snapshot, split=split).values
        real = rows >= 0
        window = rows[real][:, None] + np.arange(H)[None, :]
        pred = me["prediction"].sel(snapshot=snapshot, split=split).values[real]
        yield str(split), real, window, pred, replay["next_obs"].values[window]


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, Path]:
    cfg = TrainConfig(algo="sac", model="mlp", model_config={"hidden": 32, "layers": 2}, **SHORT)
    return cfg, train(cfg, tmp_path_factory.mktemp("mlp") / "r.zarr")


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, Path]:
    cfg = TrainConfig(algo="mbpo", model_config=SMALL_ENSEMBLE, **SHORT)
    return cfg, train(cfg, tmp_path_factory.mktemp("ens") / "r.zarr")


def test_stored_prediction_is_the_saved_model_rerun_on_the_stored_starts(mlp_run) -> None:  # noqa: ANN001
    cfg, out = mlp_run
    tree = open_run(out)
    me, replay = tree["model_error"], tree["replay"]
    obs_dim = replay.sizes["obs_dim"]
    assert me["prediction"].shape == (3, 2, 6, 8, obs_dim)
    np.testing.assert_array_equal(me["obs_dim"].values, np.arange(obs_dim))
    assert np.isnan(me["prediction"].isel(snapshot=0)).all()  # no model fitted yet
    assert np.isnan(me["prediction_spread"]).all()  # an MLP has no spread
    last = int(me["snapshot"].values[-1])
    assert int(me["model_fit_step"].sel(snapshot=last)) == 200
    model = _saved_model(cfg, out)
    checked = 0
    for split, real, window, pred, _ in _windows(me, replay, last):
        assert real.any(), split
        start = ModelState(torch.as_tensor(replay["obs"].values[window[:, 0]]))
        with torch.no_grad():
            again = model.rollout(start, torch.as_tensor(replay["action"].values[window])).numpy()
        np.testing.assert_allclose(pred, again, rtol=1e-6, atol=1e-6)
        checked += real.sum()
    assert checked >= 6


@pytest.mark.parametrize("run", ["mlp_run", "ensemble_run"])
def test_stored_error_is_the_norm_of_prediction_minus_the_replay_trajectory(run: str, request) -> None:  # noqa: ANN001
    _, out = request.getfixturevalue(run)
    tree = open_run(out)
    me, replay = tree["model_error"], tree["replay"]
    for snapshot in me["snapshot"].values[1:]:
        # standardised by the replay's std when the snapshot was taken (its first env_step rows)
        std = replay["next_obs"].values[: int(me["env_step"].sel(snapshot=snapshot))].std(0)
        for split, real, _, pred, true in _windows(me, replay, int(snapshot)):
            assert real.any(), (snapshot, split)
            error = me["error"].sel(snapshot=snapshot, split=split).values
            np.testing.assert_allclose(error[real], np.linalg.norm(pred - true, axis=-1), rtol=1e-5, atol=1e-6)
            assert np.isnan(error[~real]).all() and np.isnan(
                me["prediction"].sel(snapshot=snapshot, split=split).values[~real]).all()
            normalized = me["error_normalized"].sel(snapshot=snapshot, split=split).values[real]
            np.testing.assert_allclose(normalized, np.linalg.norm((pred - true) / std, axis=-1), rtol=1e-4)


def test_stored_spread_is_the_elites_std_along_the_stored_trajectory(ensemble_run) -> None:  # noqa: ANN001
    """Step h's spread is the elites' std of predicted means from the state the rollout reached
    (the stored prediction at h - 1, the start state at h = 1): recomputed with the saved
    ensemble. Its L2 norm over dimensions is the stored `disagreement`."""
    cfg, out = ensemble_run
    tree = open_run(out)
    me, replay = tree["model_error"], tree["replay"]
    model = _saved_model(cfg, out)
    last = int(me["snapshot"].values[-1])
    for split, real, window, pred, _ in _windows(me, replay, last):
        spread = me["prediction_spread"].sel(snapshot=last, split=split).values[real]  # (start, H, obs)
        reached = np.concatenate([replay["obs"].values[window[:, :1]], pred[:, :-1]], axis=1)
        actions = replay["action"].values[window]  # (start, H, act_dim)
        with torch.no_grad():
            mean, _ = model.predict_members(torch.as_tensor(reached.reshape(-1, reached.shape[-1])),
                                            torch.as_tensor(actions.reshape(-1, actions.shape[-1])))
        again = mean[model.elite_idx].std(dim=0).numpy().reshape(spread.shape)
        np.testing.assert_allclose(spread, again, rtol=1e-4, atol=1e-6)
        assert (spread > 0).all()
    disagreement = me["disagreement"].values
    np.testing.assert_allclose(np.linalg.norm(me["prediction_spread"].values, axis=-1), disagreement, rtol=1e-6)
    assert np.isfinite(disagreement).any()


def test_a_store_from_before_the_predictions_resumes_without_them(tmp_path: Path) -> None:
    """A run killed, its store made like one written before `prediction` existed (those arrays
    removed), then resumed: it completes with its errors, and still without predictions."""
    cfg = TrainConfig(algo="sac", model="mlp", model_config={"hidden": 16, "layers": 1},
                      **{**SHORT, "env_id": "InvertedPendulum-v5"})

    def stop(step: int, _last: dict) -> None:
        if step == 200:
            raise KeyboardInterrupt

    out = tmp_path / "old.zarr"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, progress=stop)
    for name in ("prediction", "prediction_spread", "obs_dim"):
        shutil.rmtree(out / "model_error" / name)
    train(dataclasses.replace(cfg), out, resume=True)
    tree = open_run(out)
    assert tree.attrs["status"] == "complete"
    me = tree["model_error"]
    assert me.sizes["snapshot"] == 3 and "prediction" not in me and "obs_dim" not in me.dims
    assert np.isfinite(me["error"].isel(snapshot=-1)).any()
