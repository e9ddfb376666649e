"""Helpers for the app tests: run the app with AppTest, read plotly specs, read stores plainly."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "app" / "main.py"
GRADIENT_PAGE = "views/gradient_error.py"
HOME_PAGE = "views/home.py"
BUNDLED = REPO / "datasets" / "gradient_error.zarr.zip"


def app() -> AppTest:
    """A fresh AppTest of the whole app, run once (Home page)."""
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    at.run()
    return at


def gradient_page() -> AppTest:
    """The app switched to the gradient-error page."""
    at = app()
    at.switch_page(GRADIENT_PAGE).run()
    return at


def assert_clean(at: AppTest) -> None:
    """No uncaught exception in the last run."""
    assert not at.exception, [e.value for e in at.exception]


def plotly_array(value: Any) -> np.ndarray:
    """A plotly JSON array: a list, or plotly's typed-array dict {dtype, bdata[, shape]}."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            shape = value["shape"]
            arr = arr.reshape([int(s) for s in str(shape).split(",")] if isinstance(shape, str) else shape)
        return arr
    return np.asarray(value)


def chart_traces(at: AppTest, index: int) -> list[dict[str, Any]]:
    """The traces of the `index`-th plotly chart on the page."""
    spec = json.loads(at.get("plotly_chart")[index].proto.spec)
    return spec["data"]


def chart_layout(at: AppTest, index: int) -> dict[str, Any]:
    """The layout of the `index`-th plotly chart on the page."""
    return json.loads(at.get("plotly_chart")[index].proto.spec)["layout"]


def trace(traces: list[dict[str, Any]], name: str, meta: str | None = None) -> dict[str, Any]:
    """The one trace called `name` (and with `meta`, if given)."""
    found = [t for t in traces if t.get("name") == name and (meta is None or t.get("meta") == meta)]
    assert len(found) == 1, (name, meta, [t.get("name") for t in traces])
    return found[0]


def plain_group(path: Path) -> xr.Dataset:
    """The gradient_error group read with plain zarr + xarray (not through engine.record)."""
    store = zarr.storage.ZipStore(path, mode="r") if path.is_file() else str(path)
    tree = xr.open_datatree(store, engine="zarr")
    return tree["gradient_error"].to_dataset().load()


LEARNING_PAGE = "views/learning_curves.py"
MODEL_ERROR_PAGE = "views/model_error.py"
Q_PAGE = "views/q_accuracy.py"


def page(path: str) -> AppTest:
    """The app switched to the page script `path` (e.g. `views/q_accuracy.py`)."""
    at = app()
    at.switch_page(path).run()
    return at


def floats(value: Any) -> np.ndarray:
    """A plotly array as floats (JSON nulls, i.e. NaN, become NaN)."""
    arr = plotly_array(value)
    if arr.dtype == object:
        arr = np.array([[np.nan if v is None else v for v in row] for row in arr]
                       if arr.ndim == 2 else [np.nan if v is None else v for v in arr], dtype=float)
    return arr.astype(float)


def by_meta(traces: list[dict[str, Any]], meta: str) -> dict[str, Any]:
    """The one trace whose `meta` is `meta`."""
    found = [t for t in traces if t.get("meta") == meta]
    assert len(found) == 1, (meta, [t.get("meta") for t in traces])
    return found[0]


def plain_tree(path: Path) -> xr.DataTree:
    """A complete store opened with plain xarray (not through engine.record), loaded."""
    store = zarr.storage.ZipStore(path, mode="r") if path.is_file() else str(path)
    return xr.open_datatree(store, engine="zarr").load()
