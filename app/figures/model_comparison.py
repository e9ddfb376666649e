"""Study 1b figures: MSE vs horizon per model class and split, and MSE vs stage."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from app.figures.style import TEMPLATE, axis_title, colour

SPLIT_DASH = {"train": "solid", "holdout": "dash", "test": "dot"}
"""Line style per split: the same on both panels."""


def _lines(fig: go.Figure, da: xr.DataArray, x: np.ndarray, xdim: str) -> None:
    for i, model in enumerate(str(m) for m in da["model"].values):
        for split in (str(s) for s in da["split"].values):
            y = da.sel(model=model, split=split).values
            if not np.isfinite(y).any():
                continue  # no start state in this split (e.g. no holdout episode yet): not drawn
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines+markers", name=f"{model} · {split}", meta=f"{model}/{split}",
                legendgroup=model, line={"color": colour(model, i), "dash": SPLIT_DASH.get(split, "solid")},
                marker={"size": 6}, hovertemplate=f"{model} {split}<br>{xdim} %{{x}}<br>MSE %{{y:.4g}}<extra></extra>",
            ))


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, log_y: bool) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE, title=title, xaxis_title=x_title, yaxis_title=y_title,
        yaxis_type="log" if log_y else "linear", height=440,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}, margin={"t": 110},
    )
    return fig


def mse_vs_horizon_figure(mse: xr.DataArray, *, log_y: bool = True) -> go.Figure:
    """(model, split, horizon): colour per model class, line style per split."""
    fig = go.Figure()
    _lines(fig, mse, mse["horizon"].values, "horizon")
    title = (f"Multi-step MSE vs horizon at stage {mse.attrs.get('stage')} "
             f"({mse.attrs.get('n_episodes')} training episodes)")
    return _layout(fig, title, axis_title(mse["horizon"].attrs, "prediction horizon"),
                   axis_title(mse.attrs, "multi-step mean squared error"), log_y)


def mse_vs_stage_figure(mse: xr.DataArray, *, log_y: bool = True) -> go.Figure:
    """(model, split, stage) against the number of training episodes of each stage."""
    fig = go.Figure()
    _lines(fig, mse, mse["n_episodes"].values, "episodes")
    title = f"Multi-step MSE at horizon {mse.attrs.get('horizon')} vs data"
    return _layout(fig, title, axis_title(mse["n_episodes"].attrs, "training episodes"),
                   axis_title(mse.attrs, "multi-step mean squared error"), log_y)
