"""Exports of a figure (PNG, SVG, PDF, standalone HTML) and of its data (CSV, NetCDF).

Pure functions: bytes in memory, nothing written to disk. Static images go through plotly and
kaleido, which drives a headless Chromium; the first image of a process starts the browser
(a few seconds), after which a kaleido server is kept running so later images take ~0.2 s.
"""

from __future__ import annotations

import json
import shutil
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import xarray as xr

DEFAULT_WIDTH = 1000
"""Width of exported images in layout pixels (figures in the app follow the page width)."""
DEFAULT_HEIGHT = 500


class ExportError(RuntimeError):
    """An export could not be made; the message says why, in plain words."""


@dataclass(frozen=True)
class ExportFormat:
    """One export choice: its file extension, MIME type, and whether it exports data."""

    label: str
    ext: str
    mime: str
    data: bool = False
    needs_browser: bool = False


FORMATS: dict[str, ExportFormat] = {
    "png": ExportFormat("PNG image", "png", "image/png", needs_browser=True),
    "svg": ExportFormat("SVG image", "svg", "image/svg+xml", needs_browser=True),
    "pdf": ExportFormat("PDF", "pdf", "application/pdf", needs_browser=True),
    "html": ExportFormat("Interactive HTML (offline)", "html", "text/html"),
    "csv": ExportFormat("Data as CSV", "csv", "text/csv", data=True),
    "nc": ExportFormat("Data as NetCDF", "nc", "application/x-netcdf", data=True),
}

_LOCK = threading.Lock()  # kaleido's sync server is not safe for concurrent callers
_server_started = False


def find_chromium() -> str | None:
    """Path of the Chromium kaleido would use (BROWSER_PATH, PATH, usual places), or None."""
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - best effort: fall back to a PATH search
        found = None
    return found or shutil.which("chromium") or shutil.which("chromium-browser")


def _start_server() -> None:
    global _server_started
    try:
        import kaleido

        kaleido.start_sync_server(silence_warnings=True)
    except Exception:  # noqa: BLE001 - the server only speeds things up; one-shot still works
        return
    _server_started = True


def figure_image(
    fig: go.Figure, fmt: str, *, width: int | None = None, height: int | None = None,
    scale: float = 1.0,
) -> bytes:
    """PNG, SVG or PDF bytes of `fig`; `ExportError` if there is no usable Chromium.

    The first export runs kaleido one-shot, which proves the browser works; only then is the
    persistent kaleido server started (a server whose browser cannot start would hang).
    """
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"not an image format: {fmt!r}")
    if find_chromium() is None:
        raise ExportError(
            "Image export needs Chromium, and none was found. Install it (Debian/Ubuntu: "
            "apt-get install chromium) or set BROWSER_PATH to a Chrome/Chromium binary. "
            "HTML, CSV and NetCDF exports work without it."
        )
    width = width or fig.layout.width or DEFAULT_WIDTH
    height = height or fig.layout.height or DEFAULT_HEIGHT
    with _LOCK:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "kopts is ignored if using a server"
                data = pio.to_image(fig, format=fmt, width=width, height=height, scale=scale)
        except Exception as exc:  # noqa: BLE001 - kaleido/choreographer raise many types
            raise ExportError(f"Image export with kaleido/Chromium failed: {exc}") from None
        if not _server_started:
            _start_server()
    return data


def figure_html(fig: go.Figure) -> bytes:
    """A standalone HTML page with plotly.js inlined: opens offline in any browser."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")


def _as_dataset(data: xr.Dataset | xr.DataArray) -> xr.Dataset:
    if isinstance(data, xr.DataArray):
        return data.to_dataset(name=str(data.name or "value"))
    return data


def data_csv(data: xr.Dataset | xr.DataArray) -> bytes:
    """The data as a long table: one column per dim, one per variable, one row per point."""
    ds = _as_dataset(data)
    df = ds.reset_coords(drop=False).to_dataframe().reset_index()
    return df.to_csv(index=False).encode("utf-8")


def _netcdf_attr(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind in "iuf":
            return arr
        if arr.dtype.kind in "UO" and all(isinstance(v, str) for v in arr.ravel()):
            return [str(v) for v in arr.ravel()]
    try:
        return json.dumps(value, default=str)
    except TypeError:
        return str(value)


def _clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _netcdf_attr(v) for k, v in attrs.items() if v is not None}


def netcdf_ready(data: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """A copy that NetCDF4 accepts: text as unicode, booleans as int8, attrs as plain values."""
    ds = _as_dataset(data).copy()
    ds.attrs = _clean_attrs(ds.attrs)
    for name in list(ds.variables):
        var = ds.variables[name]
        values = var.values
        if values.dtype.kind in "OT":
            ds[name] = var.copy(data=values.astype(str))
        elif values.dtype.kind == "b":
            ds[name] = var.copy(data=values.astype("int8"))
        ds[name].attrs = _clean_attrs(var.attrs)
    return ds


def data_netcdf(data: xr.Dataset | xr.DataArray) -> bytes:
    """NetCDF4 (HDF5) bytes of the data, via h5netcdf; reopens with `xr.open_dataset`."""
    return bytes(netcdf_ready(data).to_netcdf(engine="h5netcdf"))


def export_bytes(
    fmt: str, fig: go.Figure, data: xr.Dataset | xr.DataArray, *, scale: float = 1.0
) -> bytes:
    """Dispatch on a key of `FORMATS` (`scale` multiplies a PNG's pixel size)."""
    if fmt in ("png", "svg", "pdf"):
        return figure_image(fig, fmt, scale=scale)
    if fmt == "html":
        return figure_html(fig)
    if fmt == "csv":
        return data_csv(data)
    if fmt == "nc":
        return data_netcdf(data)
    raise ValueError(f"unknown export format {fmt!r}; expected one of {list(FORMATS)}")
