"""Study 1 figures: open-loop error vs horizon per snapshot, and the (step x horizon) heatmap."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from app.figures.style import TEMPLATE, axis_title, band_trace

SPLIT_DASHES = {"holdout": "solid", "test": "dash"}
SNAPSHOT_SCALE = "Viridis"
MISSING_COLOUR = "#e6e6e6"


def snapshot_colours(n: int) -> list[str]:
    """`n` colours in training order (dark = early, light = late), without Viridis' pale end."""
    if n <= 1:
        return sample_colorscale(SNAPSHOT_SCALE, [0.0])
    return sample_colorscale(SNAPSHOT_SCALE, list(np.linspace(0.0, 0.85, n)))


def _hex(colour: str) -> str:
    if colour.startswith("#"):
        return colour
    r, g, b = (int(float(v)) for v in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _log_floor(values: np.ndarray) -> float | None:
    pos = values[np.isfinite(values) & (values > 0)]
    return float(pos.min()) / 10 if pos.size else None


def error_vs_horizon_figure(curves: xr.DataArray, *, log_y: bool = False, bands: bool = True) -> go.Figure:
    """Mean open-loop error vs horizon: one colour per snapshot (training order), solid for the
    holdout split and dashed for the test split, with the band over starts.

    `curves` is (stat, snapshot, split, horizon) from `error_vs_horizon`. A (snapshot, split)
    without any finite value is left out. On a log axis band edges at or below zero are drawn at
    a tenth of the smallest positive value.
    """
    x = curves["horizon"].values
    snaps = [int(s) for s in curves["snapshot"].values]
    colours = [_hex(c) for c in snapshot_colours(len(snaps))]
    floor = _log_floor(curves.values) if log_y else None
    fig = go.Figure()
    pairs = [(i, s, str(p)) for i, s in enumerate(snaps) for p in curves["split"].values]
    if bands:
        for i, s, split in pairs:
            sel = curves.sel(snapshot=s, split=split)
            lo, hi = sel.sel(stat="lo").values, sel.sel(stat="hi").values
            if not np.isfinite(lo).any():
                continue
            if floor is not None:
                lo, hi = np.maximum(lo, floor), np.maximum(hi, floor)
            fig.add_trace(band_trace(x, lo, hi, colour_hex=colours[i], name=f"band {s} {split}", group=str(s)))
    for i, s, split in pairs:
        sel = curves.sel(snapshot=s, split=split)
        y = sel.sel(stat="mean").values
        if not np.isfinite(y).any():
            continue
        step, n = int(sel["env_step"]), int(sel["n_starts"])
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers", name=f"step {step} · {split} ({n} starts)",
            legendgroup=str(s), meta=f"{s}/{split}",
            line={"color": colours[i], "width": 2, "dash": SPLIT_DASHES.get(split, "dot")},
            marker={"size": 5, "symbol": "circle" if split == "holdout" else "diamond"},
        ))
    what = "normalised " if curves.attrs.get("normalized") else ""
    fig.update_layout(
        template=TEMPLATE,
        title=f"Open-loop {what}error vs horizon (mean over starts, band: {curves.attrs.get('band_label', '')})",
        xaxis_title=axis_title(curves["horizon"].attrs, fallback="open-loop horizon"),
        yaxis_title=axis_title(curves.attrs, fallback="error"),
        yaxis_type="log" if log_y else "linear", hovermode="closest", height=500,
        legend={"title": {"text": "solid: holdout · dashed: test"}},
    )
    return fig


def error_heatmap_figure(heat: xr.DataArray, *, log_z: bool = False) -> go.Figure:
    """Mean error over (training step x horizon), one panel per split, one shared colour scale.

    `heat` is (split, snapshot, horizon) from `error_heatmap`; snapshots without a fitted model
    or without starts are blank cells. With `log_z` the colour is log10 of the mean error.
    """
    splits = [str(s) for s in heat["split"].values]
    fig = make_subplots(rows=1, cols=len(splits), shared_yaxes=True, subplot_titles=splits,
                        horizontal_spacing=0.06)
    x = heat["env_step"].values
    y = heat["horizon"].values
    raw = heat.values.astype(float)
    with np.errstate(all="ignore"):
        shown = np.where(raw > 0, np.log10(raw), np.nan) if log_z else raw
    finite = shown[np.isfinite(shown)]
    zmin, zmax = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
    fitted = heat["model_fitted"].values if "model_fitted" in heat.coords else np.ones(len(x), bool)
    for k, split in enumerate(splits):
        z = shown[k].T  # (horizon, snapshot)
        empty = ~np.isfinite(z).any(axis=0)
        if empty.any():  # grey columns saying why a snapshot has no value
            reason = np.where(fitted, "no valid start state", "no model fitted yet")
            fig.add_trace(go.Heatmap(
                x=x, y=y, z=np.where(empty[None, :], 0.0, np.nan) + np.zeros_like(z),
                text=np.broadcast_to(reason, z.shape), colorscale=[[0, MISSING_COLOUR], [1, MISSING_COLOUR]],
                showscale=False, name=f"{split}: no data", meta=f"{split}/missing",
                hovertemplate="step %{x}<br>%{text}<extra>" + split + "</extra>", xgap=1,
            ), row=1, col=k + 1)
        fig.add_trace(go.Heatmap(
            x=x, y=y, z=z, customdata=raw[k].T, coloraxis="coloraxis", name=split, meta=split,
            hovertemplate="step %{x}<br>H = %{y}<br>mean error %{customdata:.4g}<extra>" + split + "</extra>",
            xgap=1, ygap=0,
        ), row=1, col=k + 1)
        fig.update_xaxes(title_text="environment steps at the snapshot", row=1, col=k + 1)
    units = str(heat.attrs.get("units", ""))
    title = "mean normalised error" if heat.attrs.get("normalized") else "mean error"
    title += f" [{units}]" if units and units != "1" else ""
    fig.update_yaxes(title_text=axis_title(heat["horizon"].attrs, fallback="open-loop horizon"), row=1, col=1)
    fig.update_layout(
        template=TEMPLATE, height=430,
        title=f"{heat.attrs.get('long_name', 'mean error')}: training step x horizon (grey: no data)",
        coloraxis={"colorscale": "Viridis", "cmin": zmin, "cmax": zmax,
                   "colorbar": {"title": {"text": f"log10 {title}" if log_z else title, "side": "right"}}},
    )
    return fig
