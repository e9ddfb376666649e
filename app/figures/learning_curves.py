"""Learning-curve figure: runs overlaid, one colour per config, seeds individual or aggregated."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from app.figures.style import TEMPLATE, axis_title, band_trace, key_colours
from app.studies.learning_curves import configs

SEED_DASHES = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")


def config_colours(curves: xr.DataArray) -> dict[str, str]:
    """Colour of each config label: `key_colours` of the config keys (canonical config JSON
    without seeds), so a config has the same colour in both modes and on every page."""
    dim = "config" if "stat" in curves.dims else "run"
    pairs = dict(zip(curves["config"].values.tolist(), curves["config_key"].values.tolist(), strict=True)) \
        if curves.sizes.get(dim, 0) else {}
    colours = key_colours(pairs.values())
    return {str(label): colours[key] for label, key in pairs.items()}


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(y)
    return x[ok], y[ok]


def learning_curve_figure(curves: xr.DataArray, *, log_y: bool = False) -> go.Figure:
    """Curves vs environment steps or updates.

    `curves` is either `run_curves` output (run, x): one line per run in its config's colour,
    seeds told apart by dash; or `config_curves` output (stat, config, x): per config the mean
    over seeds and its band. Points that are NaN are left out of each line (a metric the agent
    reports only sometimes is drawn through the points it has).
    """
    colours = config_colours(curves)
    dim = curves.dims[-1]
    x = curves[dim].values
    fig = go.Figure()
    if "stat" in curves.dims:
        centre = "IQM" if curves.attrs.get("center") == "iqm" else "mean"
        over = " × episodes" if curves.attrs.get("pooled") else ""
        for label in configs(curves):  # bands first, lines on top
            sel = curves.sel(config=label)
            if int(sel["n_seeds"]) > 1:
                lo, hi = sel.sel(stat="lo").values, sel.sel(stat="hi").values
                fig.add_trace(band_trace(x, lo, hi, colour_hex=colours[label], name=f"{label} band", group=label))
        for label in configs(curves):
            sel = curves.sel(config=label)
            xs, ys = _finite(x, sel.sel(stat="mean").values)
            n = int(sel["n_seeds"])
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines+markers" if len(xs) < 30 else "lines",
                name=f"{label} ({centre} of {n} seed{'s' if n != 1 else ''}{over}: {sel['seeds'].item()})",
                legendgroup=label, meta=label, line={"color": colours[label], "width": 2.5},
                marker={"size": 6},
            ))
        title = (f"{curves.attrs.get('long_name', curves.name)}: {centre} over seeds{over}, "
                 f"band: {curves.attrs.get('band_label', '')}")
    else:
        rank: dict[str, int] = {}
        for run in curves["run"].values:
            sel = curves.sel(run=run)
            label = str(sel["config"].item())
            k = rank[label] = rank.get(label, -1) + 1
            xs, ys = _finite(x, sel.values)
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines+markers" if len(xs) < 30 else "lines",
                name=f"{label} · seed {int(sel['seed'])} ({run})", legendgroup=label, meta=str(run),
                line={"color": colours[label], "width": 2, "dash": SEED_DASHES[k % len(SEED_DASHES)]},
                marker={"size": 5},
            ))
        title = f"{curves.attrs.get('long_name', curves.name)}: each run"
    window = int(curves.attrs.get("smooth", 1))
    if window > 1:
        title += f" (moving average over {window} points)"
    fig.update_layout(
        template=TEMPLATE, title=title, height=480, hovermode="x unified",
        xaxis_title=axis_title(curves[dim].attrs, fallback=dim),
        yaxis_title=axis_title(curves.attrs, fallback=str(curves.name)),
        yaxis_type="log" if log_y else "linear",
        legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0},
        margin={"t": 70, "b": 40},
    )
    return fig
