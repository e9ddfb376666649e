"""Every page renders on the bundled store, and what it plots is what the store holds."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from engine.record import StoreError, open_run

from app_helpers import (
    app, assert_clean, chart_layout, chart_traces, gradient_page, plain_group, plotly_array, trace,
)


def test_home_lists_the_bundled_store(datasets: Path, bundled_store: Path) -> None:
    at = app()
    assert_clean(at)
    table = at.dataframe[0].value
    row = table[table["name"] == bundled_store.name].iloc[0]
    assert row["kind"] == "gradient_error"
    assert row["env"] == "DoubleIntegrator-v0"
    assert row["status"] == "complete"
    assert row["source"] == "bundled"
    ds = plain_group(bundled_store)
    assert f"seed={ds.sizes['seed']}" in row["groups"]
    assert f"horizon={ds.sizes['horizon']}" in row["groups"]
    assert row["error"] == ""


def test_home_shows_invalid_stores_in_a_folder(datasets: Path, tmp_path: Path) -> None:
    (tmp_path / "noise.zarr.zip").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "empty.zarr").mkdir()
    with zipfile.ZipFile(tmp_path / "notzarr.zarr.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    (tmp_path / "unrelated.txt").write_text("not a store")
    at = app()
    at.text_input(key="folder_input").set_value(str(tmp_path)).run()
    assert_clean(at)
    table = at.dataframe[0].value
    folder_rows = table[table["source"] == "folder"].set_index("name")
    assert sorted(folder_rows.index) == ["empty.zarr", "noise.zarr.zip", "notzarr.zarr.zip"]
    assert (folder_rows["status"] == "invalid").all()
    for name in folder_rows.index:  # the reader's own message, verbatim
        with pytest.raises(StoreError) as refused:
            open_run(tmp_path / name)
        assert folder_rows.loc[name, "error"] == str(refused.value)
    assert at.warning, "a warning should point at the invalid stores"
    # the folder is remembered when the user moves to another page and back
    at.switch_page("views/gradient_error.py").run()
    at.switch_page("views/home.py").run()
    assert at.text_input(key="folder_input").value == str(tmp_path)


def test_home_warns_about_a_missing_folder(datasets: Path, tmp_path: Path) -> None:
    at = app()
    at.text_input(key="folder_input").set_value(str(tmp_path / "nope")).run()
    assert_clean(at)
    assert any("not a folder" in w.value for w in at.warning)


def test_gradient_page_plots_the_store(datasets: Path, bundled_store: Path) -> None:
    at = gradient_page()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 2
    ds = plain_group(bundled_store)
    horizon = ds["horizon"].values
    mean = ds["l1_error"].mean("seed")

    traces = chart_traces(at, 0)
    for dyn in ("true", "learned"):
        line = trace(traces, f"{dyn} dynamics")
        np.testing.assert_array_equal(plotly_array(line["x"]), horizon)
        np.testing.assert_allclose(plotly_array(line["y"]), mean.sel(dynamics=dyn).values, rtol=1e-12)
        bound = plotly_array(trace(traces, f"{dyn}: Lemma 4.1 bound (shape)")["y"])
        assert bound[0] == pytest.approx(float(mean.sel(dynamics=dyn, horizon=horizon[0])), rel=1e-9)
    layout = chart_layout(at, 0)
    assert layout["yaxis"]["type"] == "log"
    assert layout["yaxis"]["title"]["text"] == "L1 error of the gradient estimate [reward]"

    grads = chart_traces(at, 1)
    for param in ds["param"].values:
        true_line = trace(grads, "true gradient", meta=str(param))
        expected = float(ds["true_grad"].sel(param=param).mean("seed"))
        np.testing.assert_allclose(plotly_array(true_line["y"]), [expected, expected], rtol=1e-12)
        learned = trace(grads, "learned dynamics", meta=str(param))
        np.testing.assert_allclose(
            plotly_array(learned["y"]),
            ds["est_grad"].sel(dynamics="learned", param=param).mean("seed").values, rtol=1e-12,
        )

    metrics = {m.label: m.value for m in at.metric}
    eps_f = next(v for k, v in metrics.items() if k.startswith("eps_f"))
    assert float(eps_f) == pytest.approx(float(ds["eps_f"].mean()), rel=1e-3)


@pytest.mark.parametrize("band", ["std", "sem", "minmax", "p10_90"])
def test_gradient_page_controls(datasets: Path, bundled_store: Path, band: str) -> None:
    at = gradient_page()
    at.selectbox(key="ge_band").set_value(band)
    at.toggle(key="ge_log").set_value(False)
    at.toggle(key="ge_bound").set_value(False).run()
    assert_clean(at)
    traces = chart_traces(at, 0)
    assert not [t for t in traces if "bound" in t.get("name", "")]
    assert chart_layout(at, 0)["yaxis"].get("type", "linear") == "linear"
    # the band polygon of the learned dynamics spans the chosen band's edges
    ds = plain_group(bundled_store)
    l1 = ds["l1_error"].sel(dynamics="learned")
    n = l1.sizes["seed"]
    if band == "std":
        lo = l1.mean("seed") - l1.std("seed", ddof=1)
    elif band == "sem":
        lo = l1.mean("seed") - l1.std("seed", ddof=1) / np.sqrt(n)
    elif band == "minmax":
        lo = l1.min("seed")
    else:
        lo = l1.quantile(0.1, "seed")
    poly = plotly_array(trace(traces, "learned band")["y"])
    np.testing.assert_allclose(poly[len(poly) // 2 :][::-1], lo.values, rtol=1e-9)


def test_gradient_page_csv_export_offers_a_download(datasets: Path) -> None:
    at = gradient_page()
    at.selectbox(key="ge_l1_format").set_value("csv").run()
    at.button(key="ge_l1_prepare").click().run()
    assert_clean(at)
    assert not at.error
    buttons = at.get("download_button")
    assert len(buttons) == 1
    assert buttons[0].proto.label.startswith("Download gradient_error_l1_error.csv")


def test_gradient_page_without_runs_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MBRL_WORKBENCH_DATASETS", str(tmp_path))
    at = gradient_page()
    assert_clean(at)
    assert any("No gradient_error run" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_gradient_page_with_a_run_without_seeds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from app_synthetic import write_store

    write_store(tmp_path / "empty.zarr", seeds=0)
    monkeypatch.setenv("MBRL_WORKBENCH_DATASETS", str(tmp_path))
    at = gradient_page()
    assert_clean(at)
    assert any("no committed seed yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")
