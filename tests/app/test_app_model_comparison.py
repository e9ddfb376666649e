"""The model-classes page (Study 1b) on a store made by the engine's CLI from a real training
run: it renders, and what it plots equals the store's values read with plain xarray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from app_helpers import assert_clean, by_meta, chart_layout, chart_traces, floats, page

PAGE = "views/model_comparison.py"


def test_page_without_a_model_comparison_run_says_so(gradient_only: Path) -> None:
    at = page(PAGE)
    assert_clean(at)
    assert any("No model_comparison run" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_model_comparison_page(model_comparison_datasets: Path) -> None:
    mc = xr.open_datatree(model_comparison_datasets, engine="zarr")["model_comparison"].to_dataset().load()
    at = page(PAGE)
    assert_clean(at)
    assert not at.error
    assert len(at.get("plotly_chart")) == 2
    # defaults: the last stage (left) and the longest horizon (right), log axes
    last, longest = int(mc.stage[-1]), int(mc.horizon[-1])
    drawn = 0
    for model in mc.model.values:
        for split in mc.split.values:
            want = mc["mse"].sel(model=model, split=split, stage=last).values.astype(float)
            found = [t for t in chart_traces(at, 0) if t.get("meta") == f"{model}/{split}"]
            if not np.isfinite(want).any():
                assert not found  # no start in this split: not drawn
                continue
            np.testing.assert_allclose(floats(found[0]["y"]), want, rtol=1e-6)
            np.testing.assert_array_equal(floats(found[0]["x"]), mc.horizon.values)
            drawn += 1
            over = by_meta(chart_traces(at, 1), f"{model}/{split}")
            np.testing.assert_allclose(floats(over["y"]), mc["mse"].sel(model=model, split=split, horizon=longest).values,
                                       rtol=1e-6)
            np.testing.assert_array_equal(floats(over["x"]), mc["n_episodes"].values)
    assert drawn >= 3  # every model class has its train curve at least
    assert chart_layout(at, 0)["yaxis"]["type"] == "log"

    # another stage and horizon, linear axes
    first = int(mc.stage[0])
    at.select_slider(key="mc_stage").set_value(first)
    at.select_slider(key="mc_horizon").set_value(1)
    at.toggle(key="mc_log").set_value(False).run()
    assert_clean(at)
    train = by_meta(chart_traces(at, 0), "ensemble/train")
    np.testing.assert_allclose(floats(train["y"]), mc["mse"].sel(model="ensemble", split="train", stage=first).values,
                               rtol=1e-6)
    h1 = by_meta(chart_traces(at, 1), "mlp/train")
    np.testing.assert_allclose(floats(h1["y"]), mc["mse"].sel(model="mlp", split="train", horizon=1).values, rtol=1e-6)
    assert chart_layout(at, 0)["yaxis"].get("type", "linear") == "linear"

    # the CSV export offers a download
    at.selectbox(key="mc_h_format").set_value("csv").run()
    at.button(key="mc_h_prepare").click().run()
    assert_clean(at)
    assert at.get("download_button")[0].proto.label.startswith("Download mc_mse_vs_horizon_stage")
