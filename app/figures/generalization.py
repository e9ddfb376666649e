"""Study 3 figures: (a) model error vs policy KL per data size, points coloured by training step;
(b) the local slope d eps_m / d eps_pi near KL = 0: the fitted lines, and the slopes vs data size."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from app.figures.style import TEMPLATE, axis_title, colour

STEP_SCALE = "Viridis"


def probe_label(data_size: int) -> str:
    """Legend name of a probe's curve."""
    return f"N = {int(data_size)}"


def error_vs_kl_figure(ds: xr.Dataset) -> go.Figure:
    """One line per probe (colour: data size) through its checks in order; the markers are
    coloured by the training step of the check (one shared scale)."""
    fig = go.Figure()
    steps = ds["env_step"].values
    for i, p in enumerate(ds["probe"].values):
        kl, err = ds["kl"].sel(probe=p).values, ds["model_error"].sel(probe=p).values
        ok = np.isfinite(kl) & np.isfinite(err)
        name = probe_label(ds["data_size"].sel(probe=p))
        c = colour(name, i)
        fig.add_trace(go.Scatter(x=kl[ok], y=err[ok], mode="lines", name=name, meta=f"probe {p}",
                                 legendgroup=name, line={"color": c, "width": 2.5}))
        fig.add_trace(go.Scatter(
            x=kl[ok], y=err[ok], mode="markers", name=f"{name} checks", meta=f"probe {p} checks",
            legendgroup=name, showlegend=False, customdata=steps[ok],
            hovertemplate="KL %{x:.3g} nat<br>error %{y:.3g}<br>step %{customdata}<extra>" + name + "</extra>",
            marker={"color": steps[ok], "colorscale": STEP_SCALE, "cmin": steps.min(), "cmax": steps.max(),
                    "size": 9, "line": {"color": c, "width": 1.5}, "showscale": i == 0,
                    "colorbar": {"title": "training step", "x": 1.02}},
        ))
    fig.update_layout(
        template=TEMPLATE, title="Frozen model error vs policy shift",
        xaxis_title=axis_title(ds["kl"].attrs, fallback="KL(pi || pi_D)"),
        yaxis_title=axis_title(ds["model_error"].attrs, fallback="model error"),
        height=480, legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}, margin={"t": 100},
    )
    return fig


def slope_figure(ds: xr.Dataset, slopes: xr.Dataset, lines: xr.Dataset) -> go.Figure:
    """Left: the checks with KL <= kl_max and each probe's fitted line. Right: the fitted slope
    vs data size with +-1 standard error bars."""
    kl_max = slopes.attrs["kl_max"]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.12,
                        subplot_titles=(f"Checks with KL <= {kl_max:.3g} nat and fitted lines",
                                        "Local slope d eps_m / d eps_pi vs data size"))
    for i, p in enumerate(ds["probe"].values):
        name = probe_label(ds["data_size"].sel(probe=p))
        c = colour(name, i)
        kl, err = ds["kl"].sel(probe=p).values, ds["model_error"].sel(probe=p).values
        near = np.isfinite(kl) & np.isfinite(err) & (kl <= kl_max)
        fig.add_trace(go.Scatter(x=kl[near], y=err[near], mode="markers", name=name, meta=f"probe {p} near",
                                 legendgroup=name, marker={"color": c, "size": 8}), row=1, col=1)
        if np.isfinite(slopes["slope"].sel(probe=p)):
            line = lines.sel(probe=p)
            fig.add_trace(go.Scatter(x=line["kl_fit"].values, y=line["model_error_fit"].values, mode="lines",
                                     name=f"{name} fit", meta=f"probe {p} fit", legendgroup=name,
                                     showlegend=False, line={"color": c, "dash": "dash"}), row=1, col=1)
    ok = np.isfinite(slopes["slope"].values)
    fig.add_trace(go.Scatter(
        x=slopes["data_size"].values[ok], y=slopes["slope"].values[ok], mode="lines+markers", name="slope ± 1 SE",
        meta="slopes", error_y={"type": "data", "array": slopes["slope_stderr"].values[ok], "visible": True},
        line={"color": "#333333"}, marker={"size": 9},
    ), row=1, col=2)
    fig.update_xaxes(title_text=axis_title(ds["kl"].attrs, fallback="KL"), row=1, col=1)
    fig.update_yaxes(title_text=axis_title(ds["model_error"].attrs, fallback="model error"), row=1, col=1)
    fig.update_xaxes(title_text="data size N (transitions)", row=1, col=2)
    fig.update_yaxes(title_text=axis_title(slopes["slope"].attrs, fallback="slope"), row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=460, margin={"t": 110},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "x": 0})
    return fig
