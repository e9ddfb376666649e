"""Study 1b figures: MSE vs horizon per model class and split, and MSE vs stage; one facet per
run when several runs are compared."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from app.figures.style import TEMPLATE, axis_title, colour, facets

SPLIT_DASH = {"train": "solid", "holdout": "dash", "test": "dot"}
"""Line style per split: the same on both panels."""
FACET_COLUMNS = 3


def _lines(fig: go.Figure, da: xr.DataArray, x: np.ndarray, xdim: str, *, tag: str, first: bool,
           row: int, col: int) -> None:
    for i, model in enumerate(str(m) for m in da["model"].values):
        for split in (str(s) for s in da["split"].values):
            y = da.sel(model=model, split=split).values
            if not np.isfinite(y).any():
                continue  # no start state in this split (e.g. no holdout episode yet): not drawn
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines+markers", name=f"{model} · {split}", meta=f"{tag}{model}/{split}",
                legendgroup=f"{model}/{split}", showlegend=first,
                line={"color": colour(model, i), "dash": SPLIT_DASH.get(split, "solid")}, marker={"size": 6},
                hovertemplate=f"{tag}{model} {split}<br>{xdim} %{{x}}<br>MSE %{{y:.4g}}<extra></extra>",
            ), row=row, col=col)


def _faceted(mses: Mapping[str, xr.DataArray], colours: Mapping[str, str] | None, title: str,
             facet: Callable[[xr.DataArray], str], x: Callable[[xr.DataArray], np.ndarray], xdim: str,
             x_title: str, log_y: bool) -> go.Figure:
    """One facet per run, titled `RUN: facet(run's data)` in the run's colour; a single run has
    no facet title, and `facet` joins the figure's `title`. Trace `meta` is `model/split`,
    prefixed `RUN/` for several runs."""
    several = len(mses) > 1
    fig = facets([f"{run}: {facet(da)}" if several else "" for run, da in mses.items()],
                 [(colours or {}).get(run) for run in mses], cols=FACET_COLUMNS, shared_yaxes=True,
                 horizontal_spacing=0.05)
    for k, (run, da) in enumerate(mses.items()):
        _lines(fig, da, x(da), xdim, tag=f"{run}/" if several else "", first=k == 0,
               row=k // FACET_COLUMNS + 1, col=k % FACET_COLUMNS + 1)
    da = next(iter(mses.values()))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=axis_title(da.attrs, "multi-step mean squared error"), col=1)
    rows = (len(mses) - 1) // FACET_COLUMNS + 1
    fig.update_layout(
        template=TEMPLATE, title=f"{title}, one facet per run" if several else f"{title} {facet(da)}",
        yaxis_type="log" if log_y else "linear",
        height=440 + 300 * (rows - 1), legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        margin={"t": 80},
    )
    fig.update_yaxes(type="log" if log_y else "linear")
    return fig


def mse_vs_horizon_figure(mses: Mapping[str, xr.DataArray], *, log_y: bool = True,
                          colours: Mapping[str, str] | None = None) -> go.Figure:
    """Per run (model, split, horizon): colour per model class, line style per split."""
    return _faceted(
        mses, colours, "Multi-step MSE vs horizon",
        lambda da: f"at stage {da.attrs.get('stage')} ({da.attrs.get('n_episodes')} training episodes)",
        lambda da: da["horizon"].values, "horizon",
        axis_title(next(iter(mses.values()))["horizon"].attrs, "prediction horizon"), log_y)


def mse_vs_stage_figure(mses: Mapping[str, xr.DataArray], *, log_y: bool = True,
                        colours: Mapping[str, str] | None = None) -> go.Figure:
    """Per run (model, split, stage) against the number of training episodes of each stage."""
    return _faceted(
        mses, colours, "Multi-step MSE vs data", lambda da: f"at horizon {da.attrs.get('horizon')}",
        lambda da: da["n_episodes"].values, "episodes",
        axis_title(next(iter(mses.values()))["n_episodes"].attrs, "training episodes"), log_y)
