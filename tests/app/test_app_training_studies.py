"""The pure study and figure functions of the training pages, on in-memory trees, against numpy."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from app.export import data_csv, data_netcdf
from app.figures.learning_curves import learning_curve_figure
from app.figures.model_error import error_heatmap_figure, error_vs_horizon_figure
from app.figures.q_accuracy import q_density_figure
from app.studies import learning_curves as lc
from app.studies import model_error as me
from app.studies import q_accuracy as qa
from app.studies import training
from app.studies.spread import reduce_seeds

R = {"units": "reward", "long_name": "evaluation return"}
ONE = {"units": "1", "long_name": "x"}


def _config(seed: int, **over: object) -> str:
    cfg = {"algo": "sac", "env_id": "Pendulum-v1", "seed": seed, "steps": 1000, "horizon": 10,
           "agent": {"gamma": 0.99, "hidden": 64}, "model_config": {"seed": seed, "layers": 2}}
    cfg.update(over)
    return json.dumps(cfg)


def training_tree(seed: int = 0, *, snapshots: int = 5, updates: int = 12, rng_seed: int = 0, **over: object) -> xr.DataTree:
    """A training run with eval and train groups (random values; the last snapshot is NaN in
    one episode, `alpha` is absent in every third row)."""
    rng = np.random.default_rng(rng_seed)
    ret = rng.normal(100, 20, size=(snapshots, 3))
    ret[-1, 0] = np.nan
    alpha = rng.uniform(size=updates)
    alpha[::3] = np.nan
    ev = xr.Dataset({"env_step": ("snapshot", np.arange(1, snapshots + 1) * 100, ONE),
                     "return": (("snapshot", "episode"), ret, R)},
                    coords={"snapshot": np.arange(snapshots), "episode": np.arange(3)})
    tr = xr.Dataset({"env_step": ("update", np.arange(updates) * 10, ONE),
                     "critic_loss": ("update", rng.lognormal(size=updates), {"units": "1", "long_name": "critic loss"}),
                     "alpha": ("update", alpha, {"units": "1", "long_name": "alpha"})},
                    coords={"update": np.arange(1, updates + 1) * 20})
    attrs = {"kind": "training", "run_id": f"r{seed}{rng_seed}", "seed": seed, "algorithm": "sac",
             "config": _config(seed, **over)}
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), "/eval": ev, "/train": tr})


# -- training / config grouping ----------------------------------------------------------------


def test_config_key_ignores_seeds_at_any_depth() -> None:
    a, b = training_tree(0), training_tree(7, rng_seed=1)
    assert training.config_key(a) == training.config_key(b)
    assert training.config_key(a) != training.config_key(training_tree(0, horizon=3))
    assert training.gamma(a) == 0.99 and training.seed(b) == 7
    bare = xr.DataTree(xr.Dataset(attrs={"run_id": "x", "config": "not json"}))
    assert training.config(bare) == {} and "x" in training.config_key(bare)


def test_config_labels_name_the_differences() -> None:
    keys = [training.config_key(training_tree(0, horizon=h)) for h in (3, 10)]
    keys.append(training.config_key(training_tree(0, algo="ddpg")))
    labels = training.config_labels(keys)
    assert labels[keys[0]] == "sac · Pendulum-v1 · horizon=3"
    assert labels[keys[1]] == "sac · Pendulum-v1 · horizon=10"
    assert labels[keys[2]] == "ddpg · Pendulum-v1"


# -- spread with missing values ----------------------------------------------------------------


def test_reduce_uses_the_values_present() -> None:
    v = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan], [8.0, 4.0, np.nan]])  # (start, h)
    da = xr.DataArray(v, dims=("start", "h"))
    sem = reduce_seeds(da, "sem", dim="start")
    np.testing.assert_allclose(sem.sel(stat="mean")[:2], [4.0, 3.0])
    np.testing.assert_allclose(sem.sel(stat="hi")[:2] - sem.sel(stat="mean")[:2],
                               [np.std([1, 3, 8], ddof=1) / np.sqrt(3), np.std([2, 4], ddof=1) / np.sqrt(2)])
    assert np.isnan(sem[:, 2]).all()
    one = reduce_seeds(xr.DataArray([[5.0], [np.nan]], dims=("start", "h")), "std", dim="start")
    assert one.values.ravel().tolist() == [5.0, 5.0, 5.0]


# -- learning curves ----------------------------------------------------------------------------


def test_eval_curve_and_smoothing_match_pandas() -> None:
    tree = training_tree()
    curve = lc.raw_curve(tree, lc.EVAL_RETURN)
    ret = tree["eval"]["return"].values
    np.testing.assert_allclose(curve.values, np.nanmean(ret, axis=1))
    assert curve.dims == ("env_step",) and list(curve["env_step"].values) == [100, 200, 300, 400, 500]
    assert curve.attrs["units"] == "reward"
    alpha = lc.raw_curve(tree, "alpha")
    series = pd.Series(tree["train"]["alpha"].values, index=tree["train"]["update"].values)
    expected = series.dropna().rolling(4, center=True, min_periods=1).mean().reindex(series.index)
    np.testing.assert_allclose(lc.smooth(alpha, 4).values, expected.values)  # NaN rows stay NaN
    assert lc.smooth(alpha, 1) is alpha
    assert lc.metrics(tree) == [lc.EVAL_RETURN, "alpha", "critic_loss"]
    assert lc.raw_curve(tree, "nope") is None


def test_run_and_config_curves() -> None:
    trees = {"a": training_tree(0, rng_seed=0), "b": training_tree(1, rng_seed=1, snapshots=4),
             "c": training_tree(0, rng_seed=2, horizon=3)}
    curves = lc.run_curves(trees, lc.EVAL_RETURN)
    assert curves.dims == ("run", "env_step") and curves.sizes["env_step"] == 5
    assert np.isnan(curves.sel(run="b", env_step=500))  # b is shorter: outer join
    assert list(curves["config"].values[:2]) == ["sac · Pendulum-v1 · horizon=10"] * 2
    agg = lc.config_curves(curves, "std")
    assert agg.dims == ("stat", "config", "env_step")
    label = "sac · Pendulum-v1 · horizon=10"
    sel = agg.sel(config=label)
    ab = np.stack([np.nanmean(trees[k]["eval"]["return"].values, 1)[:4] for k in "ab"])
    np.testing.assert_allclose(sel.sel(stat="mean")[:4], ab.mean(0))
    np.testing.assert_allclose(sel.sel(stat="lo")[:4], ab.mean(0) - ab.std(0, ddof=1))
    assert np.isnan(sel.sel(stat="mean", env_step=500))  # only where every seed has a value
    assert int(sel["n_seeds"]) == 2 and str(sel["seeds"].item()) == "0, 1"
    single = agg.sel(config="sac · Pendulum-v1 · horizon=3")
    np.testing.assert_allclose(single.sel(stat="lo"), single.sel(stat="hi"))
    # a metric some runs lack: skipped, and said so
    trees["d"] = training_tree(2)
    trees["d"]["train"] = trees["d"]["train"].to_dataset().drop_vars("alpha")
    alpha = lc.run_curves(trees, "alpha", window=3)
    assert "d" not in alpha["run"].values and alpha.attrs["skipped"] == ["d"]
    assert lc.run_curves({"d": trees["d"]}, "alpha").sizes["run"] == 0


def test_learning_curve_figure_colours_and_data() -> None:
    trees = {"a": training_tree(0), "b": training_tree(1, rng_seed=1), "c": training_tree(0, algo="ddpg")}
    curves = lc.run_curves(trees, "critic_loss", window=2)
    each = learning_curve_figure(curves)
    agg = learning_curve_figure(lc.config_curves(curves, "minmax"), log_y=True)
    col_each = {t.meta: t.line.color for t in each.data}
    col_agg = {t.meta: t.line.color for t in agg.data if t.meta}
    assert col_each["a"] == col_each["b"] == col_agg["sac · Pendulum-v1"] != col_agg["ddpg · Pendulum-v1"]
    assert agg.layout.yaxis.type == "log" and "moving average over 2" in agg.layout.title.text
    data = lc.plot_data(lc.config_curves(curves, "minmax"))
    assert sorted(data.data_vars) == ["critic_loss_hi", "critic_loss_lo", "critic_loss_mean"]
    back = xr.open_dataset(io.BytesIO(data_netcdf(data)), engine="h5netcdf")
    np.testing.assert_allclose(back["critic_loss_mean"], data["critic_loss_mean"])
    assert "critic_loss" in data_csv(lc.plot_data(curves)).decode().splitlines()[0]


# -- model error --------------------------------------------------------------------------------


def model_error_tree(rng_seed: int = 0) -> xr.DataTree:
    """Snapshot 0: no model. Snapshot 1: 2 of 4 holdout starts real, no test start. Snapshot 2:
    all real."""
    rng = np.random.default_rng(rng_seed)
    shape = (3, 2, 4, 5)
    err = rng.lognormal(size=shape)
    start = np.arange(24).reshape(3, 2, 4)
    start[0] = -1
    start[1, 0, 2:] = -1
    start[1, 1] = -1
    err[start < 0] = np.nan
    ds = xr.Dataset(
        {"env_step": ("snapshot", [100, 200, 300], ONE),
         "model_fit_step": ("snapshot", [0, 150, 150], ONE),
         "error": (("snapshot", "split", "start", "horizon"), err, {"units": "env", "long_name": "open-loop error"}),
         "error_normalized": (("snapshot", "split", "start", "horizon"), err / 2, {"units": "1", "long_name": "norm"}),
         "start_step": (("snapshot", "split", "start"), start, ONE)},
        coords={"snapshot": [0, 1, 2], "split": ["holdout", "test"], "start": np.arange(4),
                "horizon": np.arange(1, 6)},
    )
    ds["horizon"].attrs = {"units": "1", "long_name": "open-loop horizon"}
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs={"kind": "training", "run_id": "m"}), "/model_error": ds})


def test_model_error_reductions_match_numpy() -> None:
    tree = model_error_tree()
    err = tree["model_error"]["error"].values
    assert me.start_counts(tree).values.tolist() == [[0, 0], [2, 0], [4, 4]]
    assert me.usable_snapshots(tree) == [1, 2]
    curves = me.error_vs_horizon(tree, [1, 2], "p10_90")
    assert curves.dims == ("stat", "snapshot", "split", "horizon")
    np.testing.assert_allclose(curves.sel(stat="mean", snapshot=1, split="holdout"), err[1, 0, :2].mean(0))
    np.testing.assert_allclose(curves.sel(stat="hi", snapshot=2, split="test"), np.percentile(err[2, 1], 90, axis=0))
    assert curves.sel(snapshot=1, split="test").isnull().all()
    assert me.empty_curves(curves) == [(1, "test")]
    norm = me.error_vs_horizon(tree, [2], "std", normalized=True)
    np.testing.assert_allclose(norm.sel(stat="mean", snapshot=2, split="holdout"), err[2, 0].mean(0) / 2)
    heat = me.error_heatmap(tree)
    assert heat.dims == ("split", "snapshot", "horizon")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(heat.values, np.nanmean(err, axis=2).transpose(1, 0, 2))
    assert heat["model_fitted"].values.tolist() == [False, True, True]


def test_model_error_figures_skip_and_mark_missing_data() -> None:
    tree = model_error_tree()
    curves = me.error_vs_horizon(tree, [1, 2], "std")
    fig = error_vs_horizon_figure(curves, log_y=True)
    metas = [t.meta for t in fig.data if t.meta]
    assert metas == ["1/holdout", "2/holdout", "2/test"]  # the empty (1, test) is left out
    assert fig.data[-1].line.dash == "dash" and fig.data[-2].line.dash == "solid"
    bands = [t for t in fig.data if not t.meta]
    assert all((np.asarray(b.y) > 0).all() for b in bands)  # log floor
    heat = error_heatmap_figure({"run": me.error_heatmap(tree)}, log_z=True)
    missing = {t.meta: t for t in heat.data if t.meta.endswith("/missing")}
    assert set(missing) == {"holdout/missing", "test/missing"}
    assert "no model fitted yet" in missing["holdout/missing"].text[0][0]
    assert "no valid start state" in missing["test/missing"].text[0][1]
    data = me.curves_plot_data(curves)
    assert {"error_mean", "error_lo", "error_hi", "n_starts"} <= set(data.data_vars)
    for d in (data, me.heatmap_plot_data(me.error_heatmap(tree))):
        xr.open_dataset(io.BytesIO(data_netcdf(d)), engine="h5netcdf").load()


def test_model_error_without_group() -> None:
    tree = training_tree()
    assert not me.available(tree)
    with pytest.raises(ValueError, match="no 'model_error' group"):
        me.error_heatmap(tree)


# -- Q accuracy ---------------------------------------------------------------------------------


def critic_tree(*, all_censored: bool = False, constant: bool = False) -> xr.DataTree:
    """Two snapshots of 10 samples: the last 2 are padding, samples 5..7 censored."""
    rng = np.random.default_rng(4)
    g = rng.normal(50, 10, size=(2, 10))
    if constant:
        g[:] = 7.0
    q = 0.8 * g + rng.normal(0, 3, size=(2, 10)) + 5
    ep = np.tile(np.r_[np.zeros(5, int), np.ones(3, int), [-1, -1]], (2, 1))
    g[ep < 0] = np.nan
    q[ep < 0] = np.nan
    cens = np.tile(np.r_[np.zeros(5, bool), np.ones(3, bool), [False, False]], (2, 1))
    if all_censored:
        cens[:] = True
    ds = xr.Dataset(
        {"env_step": ("snapshot", [500, 1000], ONE), "q_pred": (("snapshot", "sample"), q, R),
         "return_true": (("snapshot", "sample"), g, R), "t": (("snapshot", "sample"), np.tile(np.arange(10), (2, 1)), ONE),
         "episode": (("snapshot", "sample"), ep, ONE), "censored": (("snapshot", "sample"), cens, ONE)},
        coords={"snapshot": [0, 1], "sample": np.arange(10)},
    )
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs={"kind": "training", "run_id": "q"}), "/critic": ds})


def test_normalised_samples_and_summary_match_numpy() -> None:
    tree = critic_tree()
    c = tree["critic"].isel(snapshot=1)
    g, q = c["return_true"].values, c["q_pred"].values
    for exclude, used in ((True, slice(0, 5)), (False, slice(0, 8))):
        s = qa.normalized_samples(tree, 1, exclude_censored=exclude)
        mu, sd = g[used].mean(), g[used].std()
        np.testing.assert_allclose(s.sel(quantity="return_true"), (g[used] - mu) / sd)
        np.testing.assert_allclose(s.sel(quantity="q_pred"), (q[used] - mu) / sd)
        assert (s.attrs["n_samples"], s.attrs["n_censored"]) == (8, 3)
        assert s.attrs["n_used"] == (5 if exclude else 8)
        stats = qa.summary(s)
        d = q[used] - g[used]
        assert float(stats.sel(stat="bias")) == pytest.approx(d.mean() / sd)  # raw bias / sigma
        assert float(stats.sel(stat="mse")) == pytest.approx((d**2).mean() / sd**2)
        assert float(stats.sel(stat="corr")) == pytest.approx(np.corrcoef(g[used], q[used])[0, 1])
    assert qa.normalized_samples(tree, 1, exclude_censored=False)["censored"].values.sum() == 3


def test_q_accuracy_edge_cases() -> None:
    none = qa.normalized_samples(critic_tree(all_censored=True), 0)
    assert none.sizes["sample"] == 0 and none.attrs["n_used"] == 0
    assert np.isnan(qa.summary(none).sel(stat=["bias", "mse", "corr"])).all()
    flat = qa.normalized_samples(critic_tree(constant=True), 0)
    assert flat.attrs["scale_fallback"] and flat.attrs["scale"] == 1.0
    np.testing.assert_allclose(flat.sel(quantity="return_true"), 0.0)
    assert np.isnan(qa.summary(flat).sel(stat="corr"))
    tree = critic_tree()
    assert [qa.snapshot_at(tree, s) for s in (None, 100, 500, 999, 5000)] == [1, 0, 0, 0, 1]
    a, b = qa.normalized_samples(tree, 0), qa.normalized_samples(tree, 1)
    lo, hi = qa.common_range([a, b], pad=0.0)
    both = np.concatenate([a.values.ravel(), b.values.ravel()])
    assert (lo, hi) == (both.min(), both.max())
    assert qa.common_range([]) is None


def test_q_density_figure() -> None:
    s = qa.normalized_samples(critic_tree(), 1, exclude_censored=False)
    fig = q_density_figure(s, axis_range=(-3.0, 3.0), title="t")
    names = [t.name for t in fig.data]
    assert names == ["density", "samples", "censored samples", "unity (Q̂ = G)"]
    assert list(fig.data[-1].x) == list(fig.data[-1].y) == [-3.0, 3.0]
    assert list(fig.layout.xaxis.range) == list(fig.layout.yaxis.range) == [-3.0, 3.0]
    assert fig.layout.yaxis.scaleanchor == "x"
    data = qa.plot_data(s, qa.summary(s))
    c = critic_tree()["critic"].isel(snapshot=1)
    np.testing.assert_allclose(data["q_pred"], c["q_pred"].values[:8])  # raw values recovered
    back = xr.open_dataset(io.BytesIO(data_netcdf(data)), engine="h5netcdf")
    assert back.attrs["bias"] == pytest.approx(float(qa.summary(s).sel(stat="bias")))
