"""Study 4 figures: L1 gradient error vs H (MAAC Fig. 3) and per-parameter gradients vs H."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from app.figures.style import TEMPLATE, TRUE_VALUE_COLOUR, axis_title, band_trace, colour


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
    for i, dyn in enumerate(dynamics):  # bands first, so no band hides another dynamics' line
        sel = curve.sel(dynamics=dyn)
        lo, hi = sel.sel(stat="lo").values, sel.sel(stat="hi").values
        if floor is not None:
            lo, hi = np.maximum(lo, floor), np.maximum(hi, floor)
        fig.add_trace(band_trace(x, lo, hi, colour_hex=colour(dyn, i), name=f"{dyn} band", group=dyn))
    for i, dyn in enumerate(dynamics):
        c = colour(dyn, i)
        fig.add_trace(
            go.Scatter(
                x=x, y=curve.sel(dynamics=dyn, stat="mean").values, mode="lines+markers",
                name=f"{dyn} dynamics", legendgroup=dyn, line={"color": c, "width": 2.5},
                marker={"size": 6},
            )
        )
        if bound is not None and dyn in bound["dynamics"].values:
            b = bound.sel(dynamics=dyn).values
            if np.isfinite(b).any():
                fig.add_trace(
                    go.Scatter(
                        x=x, y=b, mode="lines", name=f"{dyn}: Lemma 4.1 bound (shape)",
                        legendgroup=dyn, line={"color": c, "dash": "dash", "width": 1.5},
                    )
                )
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
        for i, dyn in enumerate(dynamics):  # bands first, lines on top
            sel = curve.sel(dynamics=dyn, param=param)
            fig.add_trace(
                band_trace(x, sel.sel(stat="lo").values, sel.sel(stat="hi").values,
                           colour_hex=colour(dyn, i), name=f"{dyn} band", group=dyn),
                row=row, col=col,
            )
        for i, dyn in enumerate(dynamics):
            fig.add_trace(
                go.Scatter(
                    x=x, y=curve.sel(dynamics=dyn, param=param, stat="mean").values,
                    mode="lines+markers", name=f"{dyn} dynamics", legendgroup=dyn,
                    showlegend=k == 0, line={"color": colour(dyn, i), "width": 2},
                    marker={"size": 5}, meta=param,
                ),
                row=row, col=col,
            )
        value = float(true_grad.sel(param=param))
        fig.add_trace(
            go.Scatter(
                x=[x.min(), x.max()], y=[value, value], mode="lines", name="true gradient",
                legendgroup="true_grad", showlegend=k == 0, meta=param,
                line={"color": TRUE_VALUE_COLOUR, "dash": "dot", "width": 2},
            ),
            row=row, col=col,
        )
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
