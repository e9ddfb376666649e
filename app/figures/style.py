"""Shared figure pieces: colours, axis titles from variable attributes, spread bands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

DYNAMICS_COLOURS: dict[str, str] = {"true": "#1f77b4", "learned": "#d62728"}
PALETTE: Sequence[str] = qualitative.D3
TRUE_VALUE_COLOUR = "#444444"
TEMPLATE = "plotly_white"


def colour(label: str, index: int) -> str:
    """The fixed colour of a dynamics label, else the palette's `index`-th colour."""
    return DYNAMICS_COLOURS.get(label, PALETTE[index % len(PALETTE)])


def rgba(hex_colour: str, alpha: float) -> str:
    """`#rrggbb` -> `rgba(r, g, b, alpha)`."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def axis_title(attrs: Mapping[str, Any], fallback: str = "") -> str:
    """`long_name [units]` from a variable's attributes (no brackets for dimensionless "1")."""
    name = str(attrs.get("long_name") or fallback)
    units = str(attrs.get("units") or "")
    return f"{name} [{units}]" if units and units != "1" else name


def band_trace(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, colour_hex: str, name: str, group: str
) -> go.Scatter:
    """A filled polygon between `lo` and `hi` (one trace; works in any subplot)."""
    ok = np.isfinite(lo) & np.isfinite(hi)
    x, lo, hi = np.asarray(x)[ok], np.asarray(lo)[ok], np.asarray(hi)[ok]
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([hi, lo[::-1]]),
        fill="toself",
        fillcolor=rgba(colour_hex, 0.18),
        line={"width": 0},
        mode="lines",
        name=name,
        legendgroup=group,
        showlegend=False,
        hoverinfo="skip",
    )
