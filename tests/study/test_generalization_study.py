"""Study 3 end to end: a short real SAC run on InvertedPendulum through the CLI, its store
checked against the schema and the study's definitions, and a kill/resume giving the same store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from runkit import generalization_args, run_engine

from engine import open_run

@pytest.fixture(scope="module")
def store(generalization_store: Path) -> Path:
    """The short run of `runkit.generalization_args`, shared with the app's tests."""
    return generalization_store / "gen.zarr"


def test_store_is_schema_valid_and_follows_the_study(store: Path) -> None:
    tree = open_run(store)
    assert tree.attrs["kind"] == "generalization" and tree.attrs["status"] == "complete"
    assert run_engine(["validate", str(store)]).returncode == 0
    g, p = tree["generalization"], tree["generalization_probe"]
    assert g["data_size"].values.tolist() == [200, 400]
    assert p["env_step"].values.tolist() == [200, 400]  # each probe froze when the replay reached its size
    steps = g["env_step"].values
    assert steps.tolist() == [200, 300, 400, 500, 600]
    kl, err = g["kl"].values, g["model_error"].values  # (probe, check)
    for i, size in enumerate([200, 400]):
        at = int(np.flatnonzero(steps == size)[0])
        assert np.isnan(kl[i, :at]).all() and np.isnan(err[i, :at]).all()  # not frozen yet
        assert kl[i, at] == 0.0  # exactly: pi is pi_D at the moment of freezing
        assert (kl[i, at + 1:] > 0).all() and np.isfinite(err[i, at:]).all() and (err[i, at:] > 0).all()
    assert (p["model_error_train"].values > 0).all() and (p["n_holdout"].values > 0).all()


def test_killed_study_resumes_to_the_same_store(tmp_path: Path, store: Path, kill_after_commit) -> None:
    out = tmp_path / "gen.zarr"
    args = generalization_args(tmp_path, out)
    kill_after_commit(args, out, "generalization", 2)
    partial = open_run(out)
    assert partial.attrs["status"] == "running" and 2 <= partial["generalization"].sizes["check"] < 5
    res = run_engine([*args, "--resume"])
    assert res.returncode == 0, res.stderr[-3000:]
    resumed, full = open_run(out), open_run(store)
    for group in ("generalization", "generalization_probe"):
        xr.testing.assert_allclose(resumed[group].to_dataset(), full[group].to_dataset(), rtol=1e-5)
    assert resumed["replay"].sizes["step"] == 600


def test_bad_data_sizes_get_a_message(tmp_path: Path) -> None:
    res = run_engine(["study", "generalization", "--data-sizes", "400,200", "--out", str(tmp_path / "x.zarr")])
    assert res.returncode == 2 and "increasing" in res.stderr and "Traceback" not in res.stderr
    res = run_engine(["study", "generalization", "--data-sizes", "a,b", "--out", str(tmp_path / "x.zarr")])
    assert res.returncode == 2 and "Traceback" not in res.stderr
