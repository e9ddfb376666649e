"""The model-generalization page (Study 3) on a real short run made by the engine's CLI: it
renders, and what it plots equals values recomputed from the store with plain xarray + numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from app_helpers import assert_clean, by_meta, chart_traces, floats, page, plain_tree

GEN_PAGE = "views/generalization.py"


def test_page_without_generalization_runs_says_so(gradient_only: Path) -> None:
    at = page(GEN_PAGE)
    assert_clean(at)
    assert any("No generalization run" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_generalization_page_plots_the_store(generalization_datasets: Path) -> None:
    tree = plain_tree(generalization_datasets / "gen.zarr")
    g = tree["generalization"]
    kl, err, steps = g["kl"].values, g["model_error"].values, g["env_step"].values  # (probe, check)
    at = page(GEN_PAGE)
    assert_clean(at)
    # (a) one curve per probe through its checks, markers coloured by training step
    traces = chart_traces(at, 0)
    for p in range(kl.shape[0]):
        ok = np.isfinite(kl[p])
        line, dots = by_meta(traces, f"probe {p}"), by_meta(traces, f"probe {p} checks")
        np.testing.assert_allclose(floats(line["x"]), kl[p][ok], rtol=1e-6)
        np.testing.assert_allclose(floats(line["y"]), err[p][ok], rtol=1e-6)
        np.testing.assert_array_equal(floats(dots["marker"]["color"]), steps[ok])
        assert floats(line["x"])[0] == 0.0
    # (b) slopes at a chosen "near 0", against numpy's least squares on the same points
    at.number_input(key="gen_kl_max").set_value(10.0).run()
    assert_clean(at)
    traces = chart_traces(at, 1)
    slopes = by_meta(traces, "slopes")
    expected, stderr = [], []
    for p in range(kl.shape[0]):
        ok = np.isfinite(kl[p]) & (kl[p] <= 10.0)
        x, y = kl[p][ok].astype(float), err[p][ok].astype(float)
        (slope, intercept), res, *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
        expected.append(slope)
        stderr.append(np.sqrt(res[0] / (len(x) - 2) / ((x - x.mean()) ** 2).sum()))
        fit = by_meta(traces, f"probe {p} fit")
        np.testing.assert_allclose(floats(fit["y"]), intercept + slope * np.array([0, x.max()]), rtol=1e-6)
    np.testing.assert_allclose(floats(slopes["x"]), tree["generalization"]["data_size"].values)
    np.testing.assert_allclose(floats(slopes["y"]), expected, rtol=1e-6)
    np.testing.assert_allclose(floats(slopes["error_y"]["array"]), stderr, rtol=1e-6)
