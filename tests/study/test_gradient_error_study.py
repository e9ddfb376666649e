"""The gradient-error study end to end: CLI -> store -> independent recomputation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import open_run
from engine.studies import lqr

SMALL = ["--seeds", "3", "--horizons", "6", "--data-size", "120", "--model", "linear", "--critic", "quadratic"]


def _study(out: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "engine", "study", "gradient-error", "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def _recompute_from_store(g) -> None:
    """Every derived number in the group, recomputed from the stored inputs."""
    A, B, Q, R, K, S0 = (g[k].values for k in ("A", "B", "Q", "R", "K", "Sigma0"))
    gamma = float(g["gamma"])
    exact = lqr.analytic_gradient(A, B, Q, R, K, S0, gamma).reshape(-1)
    np.testing.assert_allclose(g["true_grad"].values, np.broadcast_to(exact, g["true_grad"].shape), rtol=1e-12)
    l1 = np.abs(g["est_grad"] - g["true_grad"]).sum("param")
    np.testing.assert_allclose(g["l1_error"].values, l1.transpose(*g["l1_error"].dims).values, rtol=1e-12)
    c1, c2, _ = lqr.lemma_bound_coefficients(A, B, Q, R, K, gamma, int(g.horizon.max()))
    np.testing.assert_allclose(g["bound_c1"].values, c1)
    np.testing.assert_allclose(g["bound_c2"].values, c2)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SMALL study written by the CLI: checked and recomputed, then refused as an output."""
    out = tmp_path_factory.mktemp("ge") / "ge.zarr"
    res = _study(out, *SMALL)
    assert res.returncode == 0, res.stderr
    return out


def test_cli_writes_a_valid_store_that_recomputes(small_study):
    out = small_study
    val = subprocess.run([sys.executable, "-m", "engine", "validate", str(out)], capture_output=True, text=True)
    assert val.returncode == 0 and "gradient_error" in val.stdout and "complete" in val.stdout
    tree = open_run(out)
    g = tree["gradient_error"].to_dataset()
    assert g.sizes["seed"] == 3 and g.sizes["horizon"] == 7 and list(g.dynamics.values) == ["true", "learned"]
    for var in g.data_vars.values():
        assert var.attrs["units"] and var.attrs["long_name"]
    _recompute_from_store(g)
    cfg = json.loads(tree.attrs["config"])
    assert cfg["seeds"] == 3 and cfg["horizon_max"] == 6 and cfg["model"] == "linear"
    # with true dynamics only the critic is wrong: its share shrinks like gamma^H
    true_err = g["l1_error"].sel(dynamics="true").mean("seed").values
    assert true_err[-1] < true_err[0]


def test_killed_study_resumes_to_the_same_numbers(tmp_path, kill_after_commit):
    args = ["--seeds", "4", "--horizons", "5", "--data-size", "120", "--model", "linear", "--critic", "mlp"]
    ref = tmp_path / "ref.zarr"
    # the reference in one process (the kill and the resume use the default worker processes)
    assert _study(ref, *args, "--workers", "1").returncode == 0
    out = tmp_path / "killed.zarr"
    kill_after_commit(["study", "gradient-error", "--out", str(out), *args], out, "gradient_error", 1)
    partial = open_run(out)
    assert partial.attrs["status"] == "running"
    n = partial["gradient_error"].sizes["seed"]
    assert 1 <= n < 4
    res = _study(out, *args, "--resume")
    assert res.returncode == 0, res.stderr
    a, b = open_run(out)["gradient_error"], open_run(ref)["gradient_error"]
    assert list(a.seed.values) == [0, 1, 2, 3]
    np.testing.assert_array_equal(a["est_grad"].values, b["est_grad"].values)
    assert _study(out, *args[:-1], "quadratic", "--resume").returncode == 1  # other config: refused


def test_seeds_in_worker_processes_give_the_same_numbers(tmp_path, plain_main):
    """Seeds computed side by side in spawned processes equal one process's, bit for bit."""
    from engine.studies.gradient_config import GradientErrorConfig
    from engine.studies.gradient_error import run_study

    cfg = GradientErrorConfig(seeds=3, horizon_max=4, data_size=120, model="mlp", critic="mlp",
                              model_steps=50, critic_iterations=3, critic_steps=5)
    one = open_run(run_study(cfg, tmp_path / "one.zarr", workers=1))["gradient_error"]
    two = open_run(run_study(cfg, tmp_path / "two.zarr", workers=2))["gradient_error"]
    assert list(two.seed.values) == [0, 1, 2]
    for var in ("est_grad", "eps_f", "eps_q", "l1_error"):
        np.testing.assert_array_equal(one[var].values, two[var].values)


def test_existing_store_is_not_overwritten_by_accident(small_study):
    before = {p: p.stat().st_mtime_ns for p in small_study.rglob("*")}
    res = _study(small_study, *SMALL)
    assert res.returncode == 1 and "already exists" in res.stderr and "Traceback" not in res.stderr
    assert {p: p.stat().st_mtime_ns for p in small_study.rglob("*")} == before  # not a file touched


def test_bad_arguments_get_a_message(tmp_path):
    res = _study(tmp_path / "y.zarr", "--gain", "1", "1")
    assert res.returncode == 1 and "diverges" in res.stderr and "Traceback" not in res.stderr
    res = _study(tmp_path / "y.zarr", "--gamma", "1.5")
    assert res.returncode == 2 and "gamma" in res.stderr


BUNDLED = Path(__file__).resolve().parents[2] / "datasets" / "gradient_error.zarr.zip"


@pytest.mark.skipif(not BUNDLED.exists(), reason="bundled store not built")
def test_bundled_store_shows_the_maac_figure_3_shape():
    g = open_run(BUNDLED)["gradient_error"].to_dataset()
    _recompute_from_store(g)
    assert g.sizes["seed"] >= 10 and int(g.horizon.max()) >= 30
    mean = g["l1_error"].mean("seed")
    true, learned = mean.sel(dynamics="true").values, mean.sel(dynamics="learned").values
    # true dynamics: only the critic's error remains, discounted by gamma^H -> falls with H
    assert true[-1] < 0.1 * true[0]
    assert np.corrcoef(np.arange(len(true)), true)[0, 1] < -0.8
    # learned dynamics: falls at first, then the model's compounding error takes over
    h_best = int(learned.argmin())
    assert 0 < h_best < len(learned) - 1
    assert learned[h_best] < 0.85 * learned[0] and learned[h_best] < 0.85 * learned[-1]
    # the model error is what separates the curves beyond the minimum
    assert learned[-1] > 2 * true[-1]
