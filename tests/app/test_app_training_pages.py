"""The training-run pages (learning curves, open-loop model error, Q accuracy) on real short runs
made by the engine's CLI: they render with one and several runs, and what they plot equals
values computed independently from the stores with plain xarray + numpy."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_helpers import (
    LEARNING_PAGE, MODEL_ERROR_PAGE, Q_PAGE, assert_clean, by_meta, chart_layout, chart_traces, floats, page,
    plain_tree,
)

SAC = "sac · InvertedPendulum-v5"
DDPG = "ddpg · InvertedPendulum-v5"


def _key(folder: Path, name: str) -> str:
    return f"bundled:{name}"


def _eval_mean(tree) -> pd.Series:  # noqa: ANN001
    ev = tree["eval"]
    return pd.Series(ev["return"].values.astype(float).mean(1), index=ev["env_step"].values)


@pytest.mark.parametrize("path", [LEARNING_PAGE, MODEL_ERROR_PAGE, Q_PAGE])
def test_pages_without_training_runs_say_so(gradient_only: Path, path: str) -> None:
    at = page(path)  # only the bundled gradient_error store: no training run
    assert_clean(at)
    assert not at.error
    assert any("No training run" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_learning_curves_page(training_datasets: Path) -> None:
    folder = training_datasets
    trees = {n: plain_tree(folder / f) for n, f in
             (("sac_s0", "sac_s0.zarr"), ("sac_s1", "sac_s1.zarr"), ("ddpg", "ddpg.zarr.zip"))}
    at = page(LEARNING_PAGE)
    assert_clean(at)
    # default: every run, seeds aggregated, mean ± 1 std
    traces = chart_traces(at, 0)
    both = pd.concat([_eval_mean(trees["sac_s0"]), _eval_mean(trees["sac_s1"])], axis=1).dropna()
    sac = by_meta(traces, SAC)
    np.testing.assert_array_equal(floats(sac["x"]), both.index.values)
    np.testing.assert_allclose(floats(sac["y"]), both.mean(axis=1).values, rtol=1e-6)
    band = floats(next(t for t in traces if t.get("name") == f"{SAC} band")["y"])
    lo = both.mean(axis=1).values - both.std(axis=1, ddof=1).values
    np.testing.assert_allclose(band[len(band) // 2:][::-1], lo, rtol=1e-6)
    ddpg = by_meta(traces, DDPG)  # one seed: its own curve, no band
    np.testing.assert_allclose(floats(ddpg["y"]), _eval_mean(trees["ddpg"]).values, rtol=1e-6)
    assert not [t for t in traces if t.get("name") == f"{DDPG} band"]
    colours = {t["meta"]: t["line"]["color"] for t in traces if t.get("meta")}
    assert colours[SAC] != colours[DDPG]

    # each run, a train metric vs updates, smoothed: equal to pandas' centred rolling mean
    at.radio(key="lc_mode").set_value("each")
    at.selectbox(key="lc_metric").set_value("critic_loss")
    at.slider(key="lc_smooth").set_value(3).run()
    assert_clean(at)
    traces = chart_traces(at, 0)
    for name in ("sac_s0", "sac_s1"):
        tr = trees[name]["train"]
        series = pd.Series(tr["critic_loss"].values.astype(float), index=tr["update"].values).dropna()
        expected = series.rolling(3, center=True, min_periods=1).mean()
        line = by_meta(traces, name)
        np.testing.assert_array_equal(floats(line["x"]), expected.index.values)
        np.testing.assert_allclose(floats(line["y"]), expected.values, rtol=1e-6)
        assert line["line"]["color"] == colours[SAC]  # a config keeps its colour in both modes
    assert chart_layout(at, 0)["xaxis"]["title"]["text"] == "gradient update"

    # one run only
    at.multiselect(key="lc_runs").set_value([_key(folder, "ddpg.zarr.zip")]).run()
    assert_clean(at)
    assert [t["meta"] for t in chart_traces(at, 0)] == ["ddpg"]


def _expected_errors(tree, var: str = "error") -> np.ndarray:  # noqa: ANN001
    me = tree["model_error"]
    err = me[var].values.astype(float)  # (snapshot, split, start, horizon)
    real = (me["start_step"].values >= 0) & (me["model_fit_step"].values > 0)[:, None, None]
    return np.where(real[..., None], err, np.nan)


def test_model_error_page(training_datasets: Path) -> None:
    folder = training_datasets
    tree = plain_tree(folder / "sac_s0.zarr")
    me = tree["model_error"]
    at = page(MODEL_ERROR_PAGE)
    at.multiselect(key="me_runs").set_value([_key(folder, "sac_s0.zarr")]).run()
    assert_clean(at)
    assert not at.error
    assert len(at.get("plotly_chart")) == 2
    # the first snapshot precedes the first model fit: left out, and said so
    assert int(me["model_fit_step"][0]) == 0
    assert any(f"no model fitted yet at step(s) {int(me['env_step'][0])}" in c.value for c in at.caption)

    errors = _expected_errors(tree)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no real start: NaN
        mean = np.nanmean(errors, axis=2)  # (snapshot, split, horizon)
    traces = chart_traces(at, 0)
    drawn = 0
    for s, snap in enumerate(me["snapshot"].values):
        for p, split in enumerate(me["split"].values):
            found = [t for t in traces if t.get("meta") == f"{snap}/{split}"]
            if s not in at.multiselect(key="me_snapshots").value or np.isnan(mean[s, p]).all():
                assert not found  # not chosen, or no model / no valid start: not drawn
                continue
            np.testing.assert_allclose(floats(found[0]["y"]), mean[s, p], rtol=1e-6)
            drawn += 1
    assert drawn >= 1
    # the heatmap: log10 of the mean error over (horizon, snapshot) per split
    heat = chart_traces(at, 1)
    holdout = by_meta(heat, "holdout")
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(floats(holdout["z"]), np.log10(mean[:, 0].T), rtol=1e-6)
    np.testing.assert_array_equal(floats(holdout["x"]), me["env_step"].values)

    # normalised error, percentile band, linear axes
    at.toggle(key="me_norm").set_value(True)
    at.toggle(key="me_log").set_value(False)
    at.selectbox(key="me_band").set_value("minmax").run()
    assert_clean(at)
    errors_n = _expected_errors(tree, "error_normalized")
    last = int(at.multiselect(key="me_snapshots").value[-1])
    s = list(me["snapshot"].values).index(last)
    curve = by_meta(chart_traces(at, 0), f"{last}/holdout")
    np.testing.assert_allclose(floats(curve["y"]), np.nanmean(errors_n[s, 0], axis=0), rtol=1e-6)
    band = floats(next(t for t in chart_traces(at, 0) if t.get("name") == f"band {last} holdout")["y"])
    np.testing.assert_allclose(band[: len(band) // 2], np.nanmax(errors_n[s, 0], axis=0), rtol=1e-6)
    assert chart_layout(at, 0)["yaxis"].get("type", "linear") == "linear"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(floats(by_meta(chart_traces(at, 1), "holdout")["z"]),
                                   np.nanmean(errors_n[:, 0], axis=1).T, rtol=1e-6)

    # the CSV export offers a download
    at.selectbox(key="me_heat_format").set_value("csv").run()
    at.button(key="me_heat_prepare").click().run()
    assert_clean(at)
    assert at.get("download_button")[0].proto.label.startswith("Download sac_s0_model_error_heatmap.csv")

    # the packed ddpg run: drawn when it has a snapshot with a fitted model and a valid start
    # (whether a 300-step run's episodes reach the horizon depends on the CPU's floating point),
    # else the page says why instead of drawing empty axes
    at.multiselect(key="me_runs").set_value([_key(folder, "ddpg.zarr.zip")]).run()
    assert_clean(at)
    assert not at.error
    if np.isfinite(_expected_errors(plain_tree(folder / "ddpg.zarr.zip"))).any():
        assert len(at.get("plotly_chart")) == 2
    else:
        assert not at.get("plotly_chart")
        assert any("no snapshot with a fitted model and a valid start" in i.value for i in at.info)


def _normalised(tree, snapshot: int, exclude: bool) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    c = tree["critic"].isel(snapshot=snapshot)
    g, q = c["return_true"].values.astype(float), c["q_pred"].values.astype(float)
    used = (c["episode"].values >= 0) & np.isfinite(g) & np.isfinite(q)
    if exclude:
        used &= ~c["censored"].values.astype(bool)
    mu, sd = g[used].mean(), g[used].std()
    return (g[used] - mu) / sd, (q[used] - mu) / sd


def test_q_accuracy_page(training_datasets: Path) -> None:
    folder = training_datasets
    names = ["ddpg.zarr.zip", "sac_s0.zarr", "sac_s1.zarr"]  # the default choice, in column order
    trees = [plain_tree(folder / n) for n in names]
    at = page(Q_PAGE)
    assert_clean(at)
    assert not at.error
    assert len(at.get("plotly_chart")) == 3
    metrics = [m.value for m in at.metric]
    assert len(metrics) == 9
    for i, tree in enumerate(trees):  # default: the last snapshot, censored samples excluded
        x, y = _normalised(tree, -1, exclude=True)
        samples = by_meta(chart_traces(at, i), "samples")
        np.testing.assert_allclose(floats(samples["x"]), x, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(floats(samples["y"]), y, rtol=1e-5, atol=1e-6)
        bias, mse, corr = (y - x).mean(), ((y - x) ** 2).mean(), np.corrcoef(x, y)[0, 1]
        assert metrics[3 * i : 3 * i + 3] == [f"{bias:.3g}", f"{mse:.3g}", f"{corr:.3g}"]
        unity = next(t for t in chart_traces(at, i) if t.get("name", "").startswith("unity"))
        assert floats(unity["x"]).tolist() == floats(unity["y"]).tolist()
    # the panels share one square range
    ranges = {tuple(chart_layout(at, i)["xaxis"]["range"]) for i in range(3)}
    ranges |= {tuple(chart_layout(at, i)["yaxis"]["range"]) for i in range(3)}
    assert len(ranges) == 1

    # one run, an earlier step, censored samples kept
    at.multiselect(key="qa_runs").set_value([_key(folder, "sac_s1.zarr")])
    at.toggle(key="qa_exclude").set_value(False).run()
    steps = trees[2]["critic"]["env_step"].values
    at.select_slider(key="qa_step").set_value(int(steps[1])).run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 1
    x, y = _normalised(trees[2], 1, exclude=False)
    drawn = [t for t in chart_traces(at, 0) if t.get("meta") in ("samples", "censored samples")]
    np.testing.assert_allclose(np.sort(np.concatenate([floats(t["x"]) for t in drawn])), np.sort(x), rtol=1e-5,
                               atol=1e-6)
    c = trees[2]["critic"].isel(snapshot=1)
    n_real = int((c["episode"].values >= 0).sum())
    assert any(f"{n_real} of {n_real} samples used, {int(c['censored'].values.sum())} censored" in cap.value
               for cap in at.caption)
