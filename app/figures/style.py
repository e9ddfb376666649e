"""Shared figure pieces: colours, axis titles from variable attributes, spread bands."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

DYNAMICS_COLOURS: dict[str, str] = {"true": "#1f77b4", "learned": "#d62728"}
PALETTE: Sequence[str] = qualitative.D3
KEY_PALETTE: Sequence[str] = tuple(dict.fromkeys([*qualitative.D3, *qualitative.Dark24]))
"""Colours of runs and configs (key_colour): D3 first, then Dark24, no repeats."""
SEED_SYMBOLS = ("circle", "square", "diamond", "x", "triangle-up", "star")
"""Marker symbols telling apart runs of one config (which share its colour)."""
TRUE_VALUE_COLOUR = "#444444"
TEMPLATE = "plotly_white"


def colour(label: str, index: int) -> str:
    """The fixed colour of a dynamics label, else the palette's `index`-th colour."""
    return DYNAMICS_COLOURS.get(label, PALETTE[index % len(PALETTE)])


def key_colour(key: str) -> str:
    """The colour of a run or config key (a run key such as `bundled:NAME`, or a config's
    canonical JSON): a hash of the key picks it, so it is the same on every page and session."""
    return KEY_PALETTE[_slot(key)]


def _slot(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % len(KEY_PALETTE)


def key_colours(keys: Iterable[str]) -> dict[str, str]:
    """Colours of several keys drawn together: each its `key_colour`, unless an earlier key (in
    sorted order) took it; then the next free colour of the palette. Distinct while the palette
    lasts, and independent of the order the keys come in."""
    taken: dict[int, str] = {}
    out: dict[str, str] = {}
    for key in sorted(set(keys)):
        slot = _slot(key)
        for _ in range(len(KEY_PALETTE)):
            if slot not in taken:
                break
            slot = (slot + 1) % len(KEY_PALETTE)
        taken[slot] = key
        out[key] = KEY_PALETTE[slot]
    return out


def run_colours(config_keys: Mapping[str, str]) -> dict[str, str]:
    """Run (or line) name -> the colour of its config (`key_colours` of the config keys, the
    config JSON without seeds): seeds of one config share it, as on the learning curves and
    in the runs library, so a run has the same colour on every page."""
    colours = key_colours(config_keys.values())
    return {name: colours[key] for name, key in config_keys.items()}


def seed_ranks(config_keys: Mapping[str, str]) -> dict[str, int]:
    """Run name -> its rank among the runs of its config (0, 1, ...): picks a dash or symbol."""
    seen: dict[str, int] = {}
    out = {}
    for name, key in config_keys.items():
        out[name] = seen[key] = seen.get(key, -1) + 1
    return out


def facets(titles: Sequence[str], colours: Sequence[str | None], *, cols: int, **kwargs: Any) -> go.Figure:
    """A grid of subplots, `cols` wide, titled `titles` in `colours` (None: the default)."""
    cols = max(1, min(cols, len(titles)))
    fig = make_subplots(rows=math.ceil(len(titles) / cols), cols=cols, subplot_titles=list(titles), **kwargs)
    for annotation, c in zip(fig.layout.annotations, colours, strict=False):
        if c:
            annotation.font.color = c
    return fig


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
