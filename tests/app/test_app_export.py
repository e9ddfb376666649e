"""Exports: images through kaleido/Chromium, standalone HTML, CSV and NetCDF of the plotted data."""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest
import xarray as xr
from app_helpers import assert_clean, gradient_page

from app import export
from app.bundle import PaperStyle, export_bundle, provenance, run_record, styled
from app.figures.gradient_error import gradients_figure, l1_error_figure
from app.studies import gradient_error as study
from engine.record import open_run

requires_chromium = pytest.mark.skipif(
    export.find_chromium() is None,
    reason="image export needs Chromium (apt-get install chromium, or set BROWSER_PATH)",
)


@pytest.fixture(scope="module")
def panel(bundled_store: Path) -> tuple:  # (figure, plotted data) of panel 1
    tree = open_run(bundled_store)
    curve = study.l1_vs_horizon(tree, "std")
    bound = study.bound_shape(tree, curve.sel(stat="mean"))
    data = study.l1_plot_data(curve, bound).assign_attrs(study.run_attrs(tree))
    return l1_error_figure(curve, bound, log_y=True), data


@pytest.fixture(scope="module")
def grad_panel(bundled_store: Path) -> tuple:
    tree = open_run(bundled_store)
    curve, true_grad = study.est_grad_vs_horizon(tree, "p10_90"), study.true_gradient(tree)
    return gradients_figure(curve, true_grad), study.gradients_plot_data(curve, true_grad)


MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "pdf": (b"%PDF",), "svg": (b"<svg", b"<?xml")}


@requires_chromium
@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_image_exports(panel: tuple, fmt: str) -> None:
    data = export.figure_image(panel[0], fmt)
    assert len(data) > 1000
    assert data.lstrip().startswith(MAGIC[fmt])


@requires_chromium
def test_image_export_of_subplots(grad_panel: tuple) -> None:
    assert export.export_bytes("png", grad_panel[0], grad_panel[1]).startswith(MAGIC["png"][0])


def test_image_export_without_chromium_says_why(panel: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "find_chromium", lambda: None)
    with pytest.raises(export.ExportError, match="needs Chromium"):
        export.figure_image(panel[0], "png")


def test_image_export_failure_is_readable(panel: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object, **_k: object) -> bytes:
        raise RuntimeError("browser exploded")

    monkeypatch.setattr(export, "find_chromium", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(export.pio, "to_image", broken)
    with pytest.raises(export.ExportError, match="browser exploded"):
        export.figure_image(panel[0], "svg")


def test_html_is_standalone(panel: tuple) -> None:
    html = export.figure_html(panel[0]).decode()
    assert html.lstrip().lower().startswith(("<html", "<!doctype html"))
    assert not re.search(r"<script[^>]*\bsrc=", html)  # plotly.js is inlined: works offline
    assert len(html) > 1_000_000
    assert "learned dynamics" in html


def test_csv_has_one_column_per_dim_and_line(panel: tuple) -> None:
    df = pd.read_csv(io.BytesIO(export.data_csv(panel[1])))
    assert list(df.columns) == [
        "dynamics", "horizon", "l1_error_mean", "l1_error_lo", "l1_error_hi", "bound_shape",
    ]
    data = panel[1]
    assert len(df) == data.sizes["dynamics"] * data.sizes["horizon"]
    row = df[(df["dynamics"] == "learned") & (df["horizon"] == 2)].iloc[0]
    assert row["l1_error_mean"] == pytest.approx(float(data["l1_error_mean"].sel(dynamics="learned", horizon=2)))


def test_csv_of_gradients(grad_panel: tuple) -> None:
    df = pd.read_csv(io.BytesIO(export.data_csv(grad_panel[1])))
    assert list(df.columns) == [
        "dynamics", "horizon", "param", "est_grad_mean", "est_grad_lo", "est_grad_hi", "true_grad",
    ]
    assert set(df["param"]) == set(grad_panel[1]["param"].values)


@pytest.mark.parametrize("which", ["panel", "grad_panel"])
def test_netcdf_round_trip(which: str, request: pytest.FixtureRequest) -> None:
    data: xr.Dataset = request.getfixturevalue(which)[1]
    blob = export.export_bytes("nc", None, data)  # type: ignore[arg-type]
    assert blob.startswith(b"\x89HDF")  # NetCDF4 is HDF5
    back = xr.open_dataset(io.BytesIO(blob), engine="h5netcdf").load()
    xr.testing.assert_equal(back.drop_attrs(deep=False), data.drop_attrs(deep=False))
    for name in data.data_vars:
        assert back[name].attrs["long_name"] == data[name].attrs["long_name"]
    assert [str(v) for v in back["dynamics"].values] == [str(v) for v in data["dynamics"].values]


def test_netcdf_serialises_awkward_attrs_and_types() -> None:
    ds = xr.Dataset(
        {"flag": ("x", [True, False]), "label": ("x", ["a", "bc"])},
        coords={"x": ["p", "q"]},
        attrs={"config": {"a": [1, 2]}, "ok": True, "none": None, "names": ["u", "v"]},
    )
    ds["label"] = ds["label"].astype(object)
    back = xr.open_dataset(io.BytesIO(export.data_netcdf(ds)), engine="h5netcdf").load()
    assert back.attrs["config"] == '{"a": [1, 2]}'
    assert back.attrs["ok"] == 1
    assert "none" not in back.attrs
    assert list(back["label"].values) == ["a", "bc"]
    assert list(back["flag"].values) == [1, 0]


def test_unknown_format(panel: tuple) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export.export_bytes("gif", *panel)


# --- bundles and the paper style -------------------------------------------------------------

RECORD_KEYS = {"created_utc", "page", "panels", "runs", "settings", "style", "app_version", "software"}


def _record(tree_attrs: dict, style: PaperStyle | None = None) -> dict:
    runs = [run_record("gradient_error.zarr.zip", "bundled:/x", "bundled", tree_attrs)]
    return provenance(runs, {"ge_band": "std"}, ["l1", "grad"], style, page="Gradient error",
                      app_version="0.1.0")


def _pdf_width_pt(pdf: bytes) -> float:
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert box, "no MediaBox in the PDF"
    return float(box.group(1))


@requires_chromium
def test_bundle_members_exist_and_parse(panel: tuple, grad_panel: tuple, bundled_store: Path) -> None:
    style = PaperStyle(column="single", font_pt=7)
    attrs = dict(open_run(bundled_store).attrs)
    blob = export_bundle([("l1", *panel), ("grad", *grad_panel)], _record(attrs, style), style)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    assert zf.testzip() is None
    assert sorted(zf.namelist()) == sorted(
        [f"{p}.{e}" for p in ("l1", "grad") for e in ("svg", "pdf", "png", "html", "csv", "nc")]
        + ["provenance.json"]
    )
    for stem, (fig, data) in {"l1": panel, "grad": grad_panel}.items():
        svg = ElementTree.fromstring(zf.read(f"{stem}.svg"))
        assert svg.tag.endswith("svg") and float(svg.get("width")) == style.width_px
        pdf = zf.read(f"{stem}.pdf")
        assert pdf.startswith(b"%PDF")
        assert _pdf_width_pt(pdf) == pytest.approx(style.width * 72, rel=0.01)  # 3.5 in
        png = zf.read(f"{stem}.png")
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        width_px, _ = struct.unpack(">II", png[16:24])  # IHDR
        assert width_px == pytest.approx(style.width * style.png_dpi, rel=0.01)
        assert zf.read(f"{stem}.html").lstrip().lower().startswith((b"<html", b"<!doctype html"))
        csv = pd.read_csv(io.BytesIO(zf.read(f"{stem}.csv")))
        pd.testing.assert_frame_equal(csv, pd.read_csv(io.BytesIO(export.data_csv(data))))
        back = xr.open_dataset(io.BytesIO(zf.read(f"{stem}.nc")), engine="h5netcdf").load()
        xr.testing.assert_equal(back.drop_attrs(deep=False), data.drop_attrs(deep=False))
        assert fig.layout.width is None  # the on-screen figure is untouched
    record = json.loads(zf.read("provenance.json"))
    assert set(record) == RECORD_KEYS
    run = record["runs"][0]
    assert run["run_id"] == attrs["run_id"] and run["engine_version"] == attrs["engine_version"]
    assert run["config"] == json.loads(attrs["config"])  # the run config, parsed
    assert record["settings"] == {"ge_band": "std"} and record["panels"] == ["l1", "grad"]
    assert record["style"]["column"] == "single" and record["style"]["font_pt"] == 7
    assert datetime.fromisoformat(record["created_utc"]).utcoffset() == timedelta(0)


def test_bundle_without_images_needs_no_browser(panel: tuple, bundled_store: Path) -> None:
    blob = export_bundle([("l1", *panel)], _record(dict(open_run(bundled_store).attrs)), None, images=False)
    assert sorted(zipfile.ZipFile(io.BytesIO(blob)).namelist()) == [
        "l1.csv", "l1.html", "l1.nc", "provenance.json"]


def test_bundle_refuses_repeated_panel_names(panel: tuple) -> None:
    with pytest.raises(ValueError, match="repeat"):
        export_bundle([("a", *panel), ("a", *panel)], {}, None, images=False)


def test_paper_style_is_applied_to_a_copy(grad_panel: tuple) -> None:
    fig = grad_panel[0]
    before = fig.to_json()
    style = PaperStyle(column="double", font_pt=9, title_pt=10)
    out = styled(fig, style)
    assert fig.to_json() == before
    assert out.layout.width == round(7.16 * 96) and out.layout.height == round(7.16 * 0.75 * 96)
    assert out.layout.title.text is None and out.layout.legend.orientation == "h"
    assert out.layout.font.size == pytest.approx(9 * 96 / 72)  # points -> CSS px
    assert out.layout.annotations and all(a.font.size == pytest.approx(10 * 96 / 72) for a in out.layout.annotations)
    assert PaperStyle(width_in=5.0).width_px == 480


@pytest.mark.parametrize("bad", [{"column": "triple"}, {"width_in": 0.1}, {"font_pt": 100}])
def test_paper_style_rejects_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        PaperStyle(**bad)


@requires_chromium
def test_page_bundle_in_the_app(datasets: Path, bundled_store: Path) -> None:
    """The gradient page's "all panels" bundle: both panels, the page's settings, the run."""
    at = gradient_page()
    at.toggle(key="ge_log").set_value(False).run()
    at.selectbox(key="ge_page_size").set_value("double").run()
    at.button(key="ge_page_prepare").click().run()
    assert_clean(at)
    assert not at.error
    names = [b.proto.label for b in at.get("download_button")]
    assert any("gradient_error_gradient_error.zip" in n for n in names), names
    zf = zipfile.ZipFile(io.BytesIO(at.session_state["_export_ge_page"][1]))
    stems = ("gradient_error_l1_error", "gradient_error_gradients")
    assert sorted(zf.namelist()) == sorted(
        [f"{s}.{e}" for s in stems for e in ("svg", "pdf", "png", "html", "csv", "nc")] + ["provenance.json"])
    assert _pdf_width_pt(zf.read(f"{stems[0]}.pdf")) == pytest.approx(7.16 * 72, rel=0.01)
    record = json.loads(zf.read("provenance.json"))
    assert record["page"] == "Gradient error" and record["panels"] == list(stems)
    assert record["settings"]["ge_log"] is False and record["settings"]["ge_band"] == "std"
    assert not any(k.startswith("ge_page") or k.endswith("_format") for k in record["settings"])
    tree_attrs = open_run(bundled_store).attrs
    assert [(r["store"], r["run_id"], r["origin"]) for r in record["runs"]] == [
        (bundled_store.name, tree_attrs["run_id"], "bundled")]
