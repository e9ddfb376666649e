"""The pure study, figure and library functions, checked against independent numpy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from app.figures.gradient_error import gradients_figure, l1_error_figure
from app.figures.style import axis_title
from app.library import Opened, RunEntry, find_stores, library_row, open_store, store_mtime
from app.studies import gradient_error as study
from app.studies.spread import BANDS, reduce_seeds


def make_tree(seeds: int = 6, horizons: int = 5, *, eps_q_zero: bool = False, rng_seed: int = 3) -> xr.DataTree:
    """An in-memory gradient_error tree with random values (no store involved)."""
    rng = np.random.default_rng(rng_seed)
    params = ["K[force,position]", "K[force,velocity]", "K[force,bias]"]
    h = np.arange(horizons)
    true_grad = rng.normal(size=(seeds, len(params)))
    est = true_grad[:, None, None, :] + rng.normal(scale=0.3, size=(seeds, 2, horizons, len(params)))
    ds = xr.Dataset(
        {
            "true_grad": (("seed", "param"), true_grad, {"units": "reward", "long_name": "analytic policy gradient"}),
            "est_grad": (("seed", "dynamics", "horizon", "param"), est, {"units": "reward", "long_name": "MAAC gradient estimate"}),
            "l1_error": (("seed", "dynamics", "horizon"), np.abs(est - true_grad[:, None, None, :]).sum(-1),
                         {"units": "reward", "long_name": "L1 error of the gradient estimate"}),
            "eps_f": ("seed", rng.uniform(0.1, 0.5, seeds), {"units": "1", "long_name": "model Jacobian error eps_f"}),
            "eps_q": ("seed", np.zeros(seeds) if eps_q_zero else rng.uniform(1, 2, seeds),
                      {"units": "reward", "long_name": "critic gradient error eps_Q"}),
            "bound_c1": ("horizon", h * 1.5**h, {"units": "1", "long_name": "c1"}),
            "bound_c2": ("horizon", 0.9**h, {"units": "1", "long_name": "c2"}),
        },
        coords={"seed": np.arange(seeds), "dynamics": ["true", "learned"], "horizon": h, "param": params},
    )
    ds["horizon"].attrs = {"units": "1", "long_name": "model horizon H"}
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs={"kind": "gradient_error", "run_id": "x"}), "/gradient_error": ds})


# -- spread ----------------------------------------------------------------------------------


@pytest.mark.parametrize("band", [b for b in BANDS if b != "ci95"])  # ci95: test_app_compare.py
def test_reduce_seeds_matches_numpy(band: str) -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=(7, 3, 4))
    da = xr.DataArray(values, dims=("seed", "a", "b"), name="v", attrs={"units": "m"})
    out = reduce_seeds(da, band)  # type: ignore[arg-type]
    assert out.dims == ("stat", "a", "b")
    assert list(out["stat"].values) == ["mean", "lo", "hi"]
    mean = values.mean(0)
    if band == "std":
        lo, hi = mean - values.std(0, ddof=1), mean + values.std(0, ddof=1)
    elif band == "sem":
        se = values.std(0, ddof=1) / np.sqrt(7)
        lo, hi = mean - se, mean + se
    elif band == "minmax":
        lo, hi = values.min(0), values.max(0)
    else:
        lo, hi = np.percentile(values, [10, 90], axis=0)
    np.testing.assert_allclose(out.sel(stat="mean"), mean, rtol=1e-12)
    np.testing.assert_allclose(out.sel(stat="lo"), lo, rtol=1e-12)
    np.testing.assert_allclose(out.sel(stat="hi"), hi, rtol=1e-12)
    assert out.attrs["units"] == "m" and out.attrs["band"] == band and out.attrs["n_seeds"] == 7
    assert out.name == "v"


def test_reduce_seeds_single_seed_and_nan() -> None:
    one = xr.DataArray([[1.0, 2.0]], dims=("seed", "h"))
    out = reduce_seeds(one, "std")
    np.testing.assert_array_equal(out.sel(stat="lo"), out.sel(stat="hi"))
    with_nan = xr.DataArray([[1.0, np.nan], [3.0, 4.0]], dims=("seed", "h"))
    np.testing.assert_allclose(reduce_seeds(with_nan, "minmax").sel(stat="mean"), [2.0, 4.0])
    with pytest.raises(ValueError, match="unknown band"):
        reduce_seeds(one, "iqr")  # type: ignore[arg-type]


# -- study -----------------------------------------------------------------------------------


def test_curves_are_seed_means() -> None:
    tree = make_tree()
    ds = tree["gradient_error"].to_dataset()
    l1 = study.l1_vs_horizon(tree, "std")
    assert l1.dims == ("stat", "dynamics", "horizon")
    np.testing.assert_allclose(l1.sel(stat="mean"), ds["l1_error"].values.mean(0))
    grads = study.est_grad_vs_horizon(tree, "minmax")
    assert grads.dims == ("stat", "dynamics", "horizon", "param")
    np.testing.assert_allclose(grads.sel(stat="hi"), ds["est_grad"].values.max(0))
    np.testing.assert_allclose(study.true_gradient(tree), ds["true_grad"].values.mean(0))
    eps_f = study.seed_mean(tree, "eps_f")
    assert float(eps_f) == pytest.approx(ds["eps_f"].values.mean())
    assert eps_f.attrs["std"] == pytest.approx(ds["eps_f"].values.std(ddof=1))


def test_bound_shape_matches_numpy() -> None:
    tree = make_tree()
    ds = tree["gradient_error"].to_dataset()
    c1, c2 = ds["bound_c1"].values, ds["bound_c2"].values
    ef, eq = ds["eps_f"].values, ds["eps_q"].values
    raw = {
        "true": (c2[:, None] * eq[None, :]).mean(1),  # eps_f := 0 for the true dynamics
        "learned": (c1[:, None] * ef[None, :] + c2[:, None] * eq[None, :]).mean(1),
    }
    measured = study.l1_vs_horizon(tree, "std").sel(stat="mean")
    bound = study.bound_shape(tree, measured)
    assert bound.dims == ("dynamics", "horizon")
    assert "stat" not in bound.coords
    for dyn, r in raw.items():
        m0 = float(measured.sel(dynamics=dyn, horizon=0))
        np.testing.assert_allclose(bound.sel(dynamics=dyn), r * m0 / r[0], rtol=1e-12)
        np.testing.assert_allclose(study.bound_unscaled(tree).sel(dynamics=dyn), r, rtol=1e-12)


def test_bound_shape_is_nan_when_it_cannot_be_anchored() -> None:
    tree = make_tree(eps_q_zero=True)  # c1(0) = 0 and eps_Q = 0: the bound is 0 at H = 0
    bound = study.bound_shape(tree, study.l1_vs_horizon(tree, "std").sel(stat="mean"))
    assert np.isnan(bound).all()
    fig = l1_error_figure(study.l1_vs_horizon(tree, "std"), bound)
    assert not [t for t in fig.data if "bound" in t.name]


def test_group_access_refuses_other_kinds() -> None:
    tree = xr.DataTree.from_dict({"/": xr.Dataset(attrs={"kind": "training"})})
    with pytest.raises(ValueError, match="no 'gradient_error' group"):
        study.l1_vs_horizon(tree, "std")


def test_plot_data_names_every_line() -> None:
    tree = make_tree()
    l1 = study.l1_vs_horizon(tree, "sem")
    data = study.l1_plot_data(l1, study.bound_shape(tree, l1.sel(stat="mean")))
    assert sorted(data.data_vars) == ["bound_shape", "l1_error_hi", "l1_error_lo", "l1_error_mean"]
    assert data["l1_error_lo"].attrs["units"] == "reward"
    assert data.attrs["band"] == "sem"


# -- figures ---------------------------------------------------------------------------------


def test_l1_figure_traces_and_log_floor() -> None:
    tree = make_tree()
    curve = study.l1_vs_horizon(tree, "std")
    curve.loc[{"stat": "lo"}] = -1.0  # a band reaching below zero
    fig = l1_error_figure(curve, study.bound_shape(tree, curve.sel(stat="mean")), log_y=True)
    names = [t.name for t in fig.data]
    assert names == [
        "true band", "learned band", "true dynamics", "true: Lemma 4.1 bound (shape)",
        "learned dynamics", "learned: Lemma 4.1 bound (shape)",
    ]
    assert fig.layout.yaxis.type == "log"
    assert (np.asarray(fig.data[0].y) > 0).all()
    assert fig.layout.xaxis.title.text == "model horizon H"
    assert fig.layout.yaxis.title.text == "L1 error of the gradient estimate [reward]"


def test_gradients_figure_has_one_subplot_per_param() -> None:
    tree = make_tree()
    curve, true_grad = study.est_grad_vs_horizon(tree, "std"), study.true_gradient(tree)
    fig = gradients_figure(curve, true_grad, max_cols=2)
    assert [a.text for a in fig.layout.annotations] == list(curve["param"].values)
    truths = [t for t in fig.data if t.name == "true gradient"]
    assert [t.meta for t in truths] == list(curve["param"].values)
    for t in truths:
        assert list(t.y) == [float(true_grad.sel(param=t.meta))] * 2
    assert sum(t.showlegend is not False for t in truths) == 1
    assert fig.layout.yaxis.title.text == "MAAC gradient estimate [reward]"


def test_axis_title() -> None:
    assert axis_title({"long_name": "error", "units": "reward"}) == "error [reward]"
    assert axis_title({"long_name": "H", "units": "1"}) == "H"
    assert axis_title({}, fallback="x") == "x"


# -- library ---------------------------------------------------------------------------------


def test_find_stores_and_mtime(tmp_path: Path, synthetic_zip: Path) -> None:
    (tmp_path / "a.zarr").mkdir()
    (tmp_path / "b.zarr.zip").write_bytes(synthetic_zip.read_bytes())
    (tmp_path / "c.zip").write_bytes(b"x")
    (tmp_path / "d.txt").write_text("x")
    (tmp_path / "e.zarr.zip").mkdir()  # a directory with a zip's name
    assert [p.name for p in find_stores(tmp_path)] == ["a.zarr", "b.zarr.zip"]
    assert find_stores(tmp_path / "missing") == []
    (tmp_path / "a.zarr" / "zarr.json").write_text("{}")
    os.utime(tmp_path / "a.zarr", (1, 1))
    os.utime(tmp_path / "a.zarr" / "zarr.json", (5000, 5000))
    assert store_mtime(tmp_path / "a.zarr") == 5000


def test_library_rows(synthetic_zip: Path) -> None:
    good = RunEntry("bundled:x", "gradient_error.zarr.zip", "bundled", open_store(synthetic_zip))
    row = library_row(good)
    assert (row["kind"], row["status"], row["error"]) == ("gradient_error", "complete", "")
    assert good.stem == "gradient_error"
    assert "gradient_error(" in str(row["groups"]) and "seed=5" in str(row["groups"])
    bad = RunEntry("upload:y", "junk.zip", "upload", open_store(b"not a zip"))
    assert library_row(bad)["status"] == "invalid"
    assert "zip" in str(library_row(bad)["error"])
    assert bad.kind is None and not bad.opened.ok
    weird = RunEntry("folder:z", "w.zarr", "folder", Opened(xr.DataTree()))
    assert library_row(weird)["status"] == "invalid"
