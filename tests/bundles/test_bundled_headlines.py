"""Each bundled store shows its study's headline shape, checked with simple statistics computed
here from the store with plain numpy. The numbers quoted are those of the stores as bundled
(datasets/README.md); a rebuilt store must show the same shapes, not the same digits."""

from __future__ import annotations

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
