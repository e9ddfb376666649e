"""Study 4 figures: L1 gradient error vs H (MAAC Fig. 3) and per-parameter gradients vs H."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from app.figures.style import TEMPLATE, TRUE_VALUE_COLOUR, axis_title, band_trace, colour, run_colours

DYNAMICS_DASH = {"true": "solid", "learned": "dash"}
DYNAMICS_SYMBOL = {"true": "circle", "learned": "x"}
"""With configs coloured by their key, the dynamics are told apart by line dash and marker."""


def _configs(da: xr.DataArray) -> list[tuple[str, str, xr.DataArray]]:
    """(legend prefix, config label, slice) per config of `da` (dim `config`, from `by_config`);
    a single slice with no prefix when `da` has no `config` dim or only one config."""
    if "config" not in da.dims:
        return [("", "", da)]
    labels = [str(c) for c in da["config"].values]
    return [("" if len(labels) == 1 else f"{c} · ", c, da.sel(config=c)) for c in labels]


def _style(curve: xr.DataArray, label: str, dyn: str, i: int) -> tuple[str, str, str]:
    """(colour, dash, marker symbol) of a config's dynamics: the config's colour when the curve
    carries config keys (several runs, `by_config`), else the fixed dynamics colours."""
    if "config_key" in curve.coords:
        keys = dict(zip((str(c) for c in curve["config"].values), (str(k) for k in curve["config_key"].values),
                        strict=True))
        return run_colours(keys)[label], DYNAMICS_DASH.get(dyn, "dot"), DYNAMICS_SYMBOL.get(dyn, "circle")
    return colour(dyn, i), "solid", "circle"


def _horizon_title(da: xr.DataArray) -> str:
    return axis_title(da["horizon"].attrs, fallback="model horizon H")


def _band_label(curve: xr.DataArray) -> str:
    n = curve.attrs.get("n_seeds")
    band = curve.attrs.get("band_label", curve.attrs.get("band", ""))
    return f"mean over {n} seeds, band: {band}" if n else f"band: {band}"


def l1_error_figure(
    curve: xr.DataArray, bound: xr.DataArray | None = None, *, log_y: bool = False
) -> go.Figure:
    """L1 error vs H, one colour per dynamics: mean line, spread band, dashed bound shape.

    `curve` is (stat, dynamics, horizon) from `l1_vs_horizon`; `bound` is (dynamics, horizon)
    from `bound_shape`. The y range fits the measured curves and bands: a bound that grows far
    beyond them leaves the plot (autoscale, by double-click, shows all of it). On a log axis,
    band edges at or below zero are drawn at a floor (a tenth of the smallest positive value).
    """
    x = curve["horizon"].values
    fig = go.Figure()
    floor = None
    if log_y:
        vals = curve.values[np.isfinite(curve.values) & (curve.values > 0)]
        floor = float(vals.min()) / 10 if vals.size else None
    dynamics = [str(d) for d in curve["dynamics"].values]
    for prefix, label, part in _configs(curve):  # bands first, so no band hides a line
        for i, dyn in enumerate(dynamics):
            sel = part.sel(dynamics=dyn)
            lo, hi = sel.sel(stat="lo").values, sel.sel(stat="hi").values
            if floor is not None:
                lo, hi = np.maximum(lo, floor), np.maximum(hi, floor)
            c = _style(curve, label, dyn, i)[0]
            fig.add_trace(band_trace(x, lo, hi, colour_hex=c, name=f"{prefix}{dyn} band", group=prefix + dyn))
    for prefix, label, part in _configs(curve):
        for i, dyn in enumerate(dynamics):
            c, dash, symbol = _style(curve, label, dyn, i)
            fig.add_trace(go.Scatter(
                x=x, y=part.sel(dynamics=dyn, stat="mean").values, mode="lines+markers",
                name=f"{prefix}{dyn} dynamics", legendgroup=prefix + dyn, meta=f"{label}/{dyn}",
                line={"color": c, "width": 2.5, "dash": dash}, marker={"size": 6, "symbol": symbol},
            ))
            b = _bound(bound, label, dyn)
            if b is not None:
                fig.add_trace(go.Scatter(
                    x=x, y=b, mode="lines", name=f"{prefix}{dyn}: Lemma 4.1 bound (shape)",
                    legendgroup=prefix + dyn, line={"color": c, "dash": "dot" if dash != "solid" else "dash",
                                                    "width": 1.5},
                ))
    fig.update_layout(
        template=TEMPLATE,
        title=f"L1 policy-gradient error vs model horizon ({_band_label(curve)})",
        xaxis_title=_horizon_title(curve),
        yaxis_title=axis_title(curve.attrs, fallback="L1 gradient error"),
        yaxis_type="log" if log_y else "linear",
        hovermode="x unified",
        height=460,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"t": 110},
    )
    fig.update_xaxes(dtick=max(1, math.ceil(len(x) / 20)), zeroline=False)
    y_range = _measured_range(curve.values, log_y)
    if y_range is not None:
        fig.update_yaxes(range=y_range)
        if log_y and y_range[1] - y_range[0] < 2.5:  # few decades: label 0.2, 0.3, ... in full
            fig.update_yaxes(tickformat=".2~g")
    return fig


def _bound(bound: xr.DataArray | None, label: str, dyn: str) -> np.ndarray | None:
    """The bound shape of a config's dynamics, if drawn and finite somewhere."""
    if bound is None or dyn not in bound["dynamics"].values:
        return None
    b = (bound.sel(config=label) if "config" in bound.dims else bound).sel(dynamics=dyn).values
    return b if np.isfinite(b).any() else None


def _measured_range(values: np.ndarray, log_y: bool) -> list[float] | None:
    """An axis range covering `values` with a margin (log10 units on a log axis)."""
    finite = values[np.isfinite(values)]
    if log_y:
        finite = finite[finite > 0]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if log_y:
        return [math.log10(lo) - 0.15, math.log10(hi) + 0.15]
    lo = min(lo, 0.0)
    pad = 0.05 * (hi - lo) or 1.0
    return [lo - pad, hi + pad]


def gradients_figure(curve: xr.DataArray, true_grad: xr.DataArray, *, max_cols: int = 3) -> go.Figure:
    """One subplot per policy parameter: estimate mean and band per dynamics, true value dotted.

    `curve` is (stat, dynamics, horizon, param) from `est_grad_vs_horizon`; `true_grad` is
    (param) from `true_gradient`.
    """
    params = [str(p) for p in curve["param"].values]
    cols = max(1, min(max_cols, len(params)))
    rows = math.ceil(len(params) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=params, shared_xaxes=True)
    x = curve["horizon"].values
    for k, param in enumerate(params):
        row, col = k // cols + 1, k % cols + 1
        dynamics = [str(d) for d in curve["dynamics"].values]
        for prefix, label, part in _configs(curve):  # bands first, lines on top
            for i, dyn in enumerate(dynamics):
                sel = part.sel(dynamics=dyn, param=param)
                fig.add_trace(band_trace(x, sel.sel(stat="lo").values, sel.sel(stat="hi").values,
                                         colour_hex=_style(curve, label, dyn, i)[0], name=f"{prefix}{dyn} band",
                                         group=prefix + dyn), row=row, col=col)
        for prefix, label, part in _configs(curve):
            for i, dyn in enumerate(dynamics):
                c, dash, symbol = _style(curve, label, dyn, i)
                fig.add_trace(go.Scatter(
                    x=x, y=part.sel(dynamics=dyn, param=param, stat="mean").values, mode="lines+markers",
                    name=f"{prefix}{dyn} dynamics", legendgroup=prefix + dyn, showlegend=k == 0,
                    line={"color": c, "width": 2, "dash": dash}, marker={"size": 5, "symbol": symbol}, meta=param,
                ), row=row, col=col)
        for prefix, label, part in _configs(true_grad):
            value = float(part.sel(param=param))
            c = _style(true_grad, label, "", 0)[0] if "config_key" in true_grad.coords else TRUE_VALUE_COLOUR
            fig.add_trace(go.Scatter(
                x=[x.min(), x.max()], y=[value, value], mode="lines", name=f"{prefix}true gradient",
                legendgroup=f"{prefix}true_grad", showlegend=k == 0, meta=param,
                line={"color": c, "dash": "dot", "width": 2},
            ), row=row, col=col)
    fig.update_xaxes(title_text=_horizon_title(curve), row=rows)
    fig.update_xaxes(zeroline=False)
    fig.update_yaxes(title_text=axis_title(curve.attrs, fallback="gradient"), col=1)
    fig.update_layout(
        template=TEMPLATE,
        title=f"Policy gradient per parameter vs model horizon ({_band_label(curve)})",
        height=max(380, 320 * rows) + 80,
        hovermode="x unified",
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
        margin={"t": 90, "b": 110},
    )
    return fig
