"""Each bundled store shows its study's headline shape, checked with simple statistics computed
here from the store with plain numpy. The numbers quoted are those of the stores as bundled
(datasets/README.md); a rebuilt store must show the same shapes, not the same digits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine import open_run

DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def _store(name: str):  # noqa: ANN202
    path = DATASETS / f"{name}.zarr.zip"
    if not path.is_file():
        pytest.fail(f"the bundled store {path.name} is missing (python -m engine datasets build {name})")
    return open_run(path)


def _mean_open_loop(me, var: str) -> np.ndarray:  # noqa: ANN001
    """(snapshot, split, horizon) mean over real starts of snapshots with a fitted model."""
    err = me[var].values.astype(float)
    real = (me["start_step"].values >= 0)[..., None] & (me["model_fit_step"].values > 0)[:, None, None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.where(real, err, np.nan), axis=2)


def test_open_loop_error_grows_with_horizon_and_test_sits_above_holdout() -> None:
    """MVE Fig. 1 on MVE-DDPG, HalfCheetah-v5, 15k steps. The standardised error (each state
    dimension divided by its replay std) grows with the horizon at every fitted snapshot, in both
    splits (H = 30 over H = 1: 1.3x to 2.0x as bundled); and averaged over snapshots and horizons
    the test starts (newest data, after the last fit) are above the holdout starts (x1.08 as
    bundled; the first two snapshots, fitted on random-action data, are the other way round)."""
    me = _store("mve_ddpg_halfcheetah")["model_error"]
    mean = _mean_open_loop(me, "error_normalized")
    fitted = ~np.isnan(mean[:, 0, 0])
    assert fitted.sum() >= 4
    growth = mean[fitted, :, -1] / mean[fitted, :, 0]  # (snapshot, split)
    assert (growth > 1.2).all(), growth
    assert np.nanmean(mean[fitted, 1]) > np.nanmean(mean[fitted, 0])


def test_model_classes_all_finish_and_test_sits_above_holdout() -> None:
    """SVG Fig. 3 on the same buffer: every class has a finite MSE on every split, stage and
    horizon; the ensemble's error on the later test episodes is above its error on held-out
    episodes of the fitted period, on average over stages and horizons (x14 as bundled: the
    last episodes come from a policy whose states the earlier data barely cover)."""
    mc = _store("model_comparison")["model_comparison"]
    assert list(mc.model.values) == ["mlp", "ensemble", "gru"] and mc.sizes["stage"] == 4
    mse = mc["mse"].values
    assert np.isfinite(mse).all()
    ens = mc["mse"].sel(model="ensemble")
    assert float(ens.sel(split="test").mean()) > float(ens.sel(split="holdout").mean())


def test_generalization_error_rises_with_kl_and_falls_with_data() -> None:
    """MBPO Fig. 1 on SAC, HalfCheetah-v5, probes at 2k, 5k, 10k and 20k transitions, 20 checks.

    - Error increases with KL for each probe: the Spearman rank correlation of model error with
      KL over the probe's checks is positive for every probe (0.79, 0.34, 0.21, 0.90 as bundled;
      issue 7's example threshold of 0.5 holds for the 2k and 20k probes only).
    - More data, lower error: on the same fresh transitions (the last check) the error falls with
      the probe's data size (4.72, 2.92, 2.66, 1.87 as bundled), and so does each probe's error
      on its own holdout when frozen (model_error_train).
    - At small KL: at the first check after each probe froze (its smallest positive KL), the probe
      with the most data has the lowest error (1.43 at KL 1.8 vs 2.30, 2.95 and 9.60)."""
    from scipy.stats import spearmanr

    tree = _store("generalization_halfcheetah")
    g, probes = tree["generalization"], tree["generalization_probe"]
    kl, err = g["kl"].values.astype(float), g["model_error"].values.astype(float)  # (probe, check)
    sizes = g["data_size"].values
    assert list(sizes) == sorted(sizes) and len(sizes) == 4
    for p in range(len(sizes)):
        ok = np.isfinite(kl[p])
        assert ok.sum() >= 5, p
        assert spearmanr(kl[p, ok], err[p, ok]).statistic > 0, p
    assert (np.diff(err[:, -1]) < 0).all(), err[:, -1]
    assert (np.diff(probes["model_error_train"].values) < 0).all()
    first_after = []
    for p in range(len(sizes)):
        checks = np.flatnonzero(np.isfinite(kl[p]) & (kl[p] > 0))
        first_after.append(err[p, checks[0]])
    assert int(np.argmin(first_after)) == len(sizes) - 1, first_after


def test_mve_oracle_critic_sits_closer_to_unity_than_ddpg() -> None:
    """MVE Fig. 5 on HalfCheetah-v5 (fully observable), mini-batch 32, 8000 steps of which the
    first 4000 are random: DDPG (H = 0) against MVE-DDPG with the oracle at H = 30, same seed.

    The statistic is the Q accuracy page's own (app/studies/q_accuracy.py): the MSE of Q-hat vs
    the discounted Monte-Carlo return, both normalised by the returns' mean and std, censored
    samples far from the time-limit cut excluded. At the last snapshot (end of training, as in
    Fig. 5) the MVE critic's is far below DDPG's (0.44 vs 68 as bundled), and so at every
    snapshot after learning started (7715 vs 16132, 6.7 vs 312, 0.47 vs 16, 0.44 vs 68). Before
    learning the two runs are the same run (same random actions, same untrained critic), which
    makes the comparison a paired one: only the critic targets differ."""
    from app.studies import q_accuracy as qa

    trees = {name: _store(f"q_accuracy_{name}") for name in ("ddpg", "mve_oracle")}
    steps = qa.env_steps(trees["ddpg"])
    np.testing.assert_array_equal(steps, qa.env_steps(trees["mve_oracle"]))
    start = json.loads(trees["ddpg"].attrs["config"])["start_steps"]
    mse = {name: np.array([float(qa.summary(qa.normalized_samples(t, i)).sel(stat="mse")) for i in range(len(steps))])
           for name, t in trees.items()}
    before = steps < start
    assert before.sum() >= 2 and (steps > start).sum() >= 3
    for i in np.flatnonzero(before):
        np.testing.assert_array_equal(trees["ddpg"]["critic"]["q_pred"].isel(snapshot=i).values,
                                      trees["mve_oracle"]["critic"]["q_pred"].isel(snapshot=i).values)
    assert mse["mve_oracle"][-1] < mse["ddpg"][-1], mse
    learning = steps > start
    assert (mse["mve_oracle"][learning] < mse["ddpg"][learning]).all(), mse
