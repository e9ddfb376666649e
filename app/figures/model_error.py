"""Study 1 figures: open-loop error vs horizon per snapshot, and the (step x horizon) heatmap."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.colors import sample_colorscale

from app.figures.style import SEED_SYMBOLS, TEMPLATE, axis_title, band_trace, facets, run_colours, seed_ranks

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


def _centre(curves: xr.DataArray) -> str:
    """What the line is: the `mean` or the `IQM` of the values reduced."""
    return "IQM" if curves.attrs.get("center") == "iqm" else "mean"


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
        title=(f"Open-loop {what}error vs horizon ({_centre(curves)} over starts, "
               f"band: {curves.attrs.get('band_label', '')})"),
        xaxis_title=axis_title(curves["horizon"].attrs, fallback="open-loop horizon"),
        yaxis_title=axis_title(curves.attrs, fallback="error"),
        yaxis_type="log" if log_y else "linear", hovermode="closest", height=500,
        legend={"title": {"text": "solid: holdout · dashed: test"}},
    )
    return fig


def runs_error_figure(curves: xr.DataArray, *, log_y: bool = False, bands: bool = True) -> go.Figure:
    """Several runs at one training step: per line (a config's seeds pooled, or one run) the
    centre and band of the open-loop error vs horizon, in its config's colour; solid for the
    holdout split, dashed for the test split; runs of one config told apart by marker symbol.

    `curves` is (stat, line, split, horizon) from `runs_error_vs_horizon`.
    """
    x = curves["horizon"].values
    lines = [str(v) for v in curves["line"].values]
    keys = dict(zip(lines, (str(k) for k in curves["config_key"].values), strict=True))
    colours, ranks = run_colours(keys), seed_ranks(keys)
    floor = _log_floor(curves.values) if log_y else None
    pairs = [(line, str(p)) for line in lines for p in curves["split"].values]
    fig = go.Figure()
    for line, split in pairs if bands else []:
        sel = curves.sel(line=line, split=split)
        lo, hi = sel.sel(stat="lo").values, sel.sel(stat="hi").values
        if floor is not None:
            lo, hi = np.maximum(lo, floor), np.maximum(hi, floor)
        if np.isfinite(lo).any():
            fig.add_trace(band_trace(x, lo, hi, colour_hex=colours[line], name=f"band {line} {split}", group=line))
    for line, split in pairs:
        sel = curves.sel(line=line, split=split)
        y = sel.sel(stat="mean").values
        if not np.isfinite(y).any():
            continue
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers", meta=f"{line}/{split}", legendgroup=line,
            name=f"{line} · {split} (step {sel['env_steps'].item()}; {int(sel['n_starts'])} starts)",
            line={"color": colours[line], "width": 2, "dash": SPLIT_DASHES.get(split, "dot")},
            marker={"size": 6, "symbol": SEED_SYMBOLS[ranks[line] % len(SEED_SYMBOLS)]},
        ))
    what = "normalised " if curves.attrs.get("normalized") else ""
    fig.update_layout(
        template=TEMPLATE,
        title=f"Open-loop {what}error vs horizon ({_centre(curves)} over the starts of each line's runs, "
              f"band: {curves.attrs.get('band_label', '')})",
        xaxis_title=axis_title(curves["horizon"].attrs, fallback="open-loop horizon"),
        yaxis_title=axis_title(curves.attrs, fallback="error"),
        yaxis_type="log" if log_y else "linear", hovermode="closest",
        height=460 + 22 * len(pairs),  # the legend, one row per line below the plot, takes its share
        legend={"title": {"text": "solid: holdout · dashed: test"}, "orientation": "h", "yanchor": "top",
                "y": -0.15, "x": 0},
    )
    return fig


def error_heatmap_figure(heats: Mapping[str, xr.DataArray], *, log_z: bool = False,
                         colours: Mapping[str, str] | None = None) -> go.Figure:
    """Mean error over (training step x horizon): one row per run, one panel per split, one
    shared colour scale; with several runs each panel's title names the run, in `colours`.

    `heats` maps a run name to its (split, snapshot, horizon) from `error_heatmap`; snapshots
    without a fitted model or without starts are blank cells. With `log_z` the colour is log10
    of the mean error. Trace `meta` is the split (one run) or `RUN/split`.
    """
    several = len(heats) > 1
    splits = [str(s) for s in next(iter(heats.values()))["split"].values]
    titles = [f"{run} · {split}" if several else split for run in heats for split in splits]
    fig = facets(titles, [(colours or {}).get(run) for run in heats for _ in splits], cols=len(splits),
                 shared_yaxes=True, horizontal_spacing=0.06, vertical_spacing=0.3 / len(heats))
    raws = {run: heat.values.astype(float) for run, heat in heats.items()}
    with np.errstate(all="ignore"):
        shown = {run: np.where(raw > 0, np.log10(raw), np.nan) if log_z else raw for run, raw in raws.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in shown.values()])
    zmin, zmax = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
    for r, (run, heat) in enumerate(heats.items()):
        x, y = heat["env_step"].values, heat["horizon"].values
        fitted = heat["model_fitted"].values if "model_fitted" in heat.coords else np.ones(len(x), bool)
        for k, split in enumerate(splits):
            tag = f"{run}/{split}" if several else split
            z = shown[run][k].T  # (horizon, snapshot)
            empty = ~np.isfinite(raws[run][k].T).any(axis=0)  # not log10(0) of an exact model: no data
            if empty.any():  # grey columns saying why a snapshot has no value
                reason = np.where(fitted, "no valid start state", "no model fitted yet")
                fig.add_trace(go.Heatmap(
                    x=x, y=y, z=np.where(empty[None, :], 0.0, np.nan) + np.zeros_like(z),
                    text=np.broadcast_to(reason, z.shape), colorscale=[[0, MISSING_COLOUR], [1, MISSING_COLOUR]],
                    showscale=False, name=f"{tag}: no data", meta=f"{tag}/missing",
                    hovertemplate="step %{x}<br>%{text}<extra>" + tag + "</extra>", xgap=1,
                ), row=r + 1, col=k + 1)
            fig.add_trace(go.Heatmap(
                x=x, y=y, z=z, customdata=raws[run][k].T, coloraxis="coloraxis", name=tag, meta=tag,
                hovertemplate="step %{x}<br>H = %{y}<br>mean error %{customdata:.4g}<extra>" + tag + "</extra>",
                xgap=1, ygap=0,
            ), row=r + 1, col=k + 1)
    fig.update_xaxes(title_text="environment steps at the snapshot", row=len(heats))
    heat = next(iter(heats.values()))
    units = str(heat.attrs.get("units", ""))
    title = "mean normalised error" if heat.attrs.get("normalized") else "mean error"
    title += f" [{units}]" if units and units != "1" else ""
    fig.update_yaxes(title_text=axis_title(heat["horizon"].attrs, fallback="open-loop horizon"), col=1)
    fig.update_layout(
        template=TEMPLATE, height=430 + 280 * (len(heats) - 1),
        title=f"{heat.attrs.get('long_name', 'mean error')}: training step x horizon (grey: no data)",
        coloraxis={"colorscale": "Viridis", "cmin": zmin, "cmax": zmax,
                   "colorbar": {"title": {"text": f"log10 {title}" if log_z else title, "side": "right"}}},
    )
    return fig
