"""Text for `st.metric` from a reduced variable (value, units, spread over seeds)."""

from __future__ import annotations

import xarray as xr


def metric_text(da: xr.DataArray) -> str:
    """`value units` (no units for dimensionless "1")."""
    units = str(da.attrs.get("units", ""))
    value = f"{float(da):.4g}"
    return f"{value} {units}" if units and units != "1" else value


def metric_help(da: xr.DataArray) -> str:
    """The variable's long name and its std over seeds, for the metric's tooltip."""
    name = da.attrs.get("long_name", da.name)
    std, n = da.attrs.get("std"), da.attrs.get("n_seeds")
    return f"{name}; std over {n} seeds: {std:.3g}" if std is not None else str(name)
