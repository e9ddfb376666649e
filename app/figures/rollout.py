"""Rollout viewer figure: predicted vs true trajectory, one subplot per state dimension."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from app.figures.style import PALETTE, TEMPLATE, TRUE_VALUE_COLOUR, band_trace

PREDICTED_COLOUR = PALETTE[3]
COLUMNS = 3
SPREAD_WIDTH = 1.0
"""The band is predicted ± this many spreads (the elites' std of predicted means)."""


def rollout_figure(traj: xr.Dataset, dims: Sequence[int], *, band: bool = True) -> go.Figure:
    """One subplot per observation dimension in `dims`: the true trajectory (grey), the model's
    prediction (coloured) and, with `band` and an ensemble spread, the band predicted ± spread.

    `traj` is `app.studies.rollout.trajectory` output, (horizon, obs_dim) per variable.
    """
    dims = [int(d) for d in dims]
    cols = min(COLUMNS, max(len(dims), 1))
    rows = max(math.ceil(len(dims) / cols), 1)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"obs[{d}]" for d in dims],
                        horizontal_spacing=0.06, vertical_spacing=min(0.12, 0.5 / rows))
    x = traj["horizon"].values
    for i, d in enumerate(dims):
        row, col = i // cols + 1, i % cols + 1
        one = traj.sel(obs_dim=d)
        pred, spread = one["predicted"].values, one["spread"].values
        first = i == 0  # one legend entry per series, shared by every subplot
        if band and np.isfinite(spread[1:]).any():
            lo, hi = pred - SPREAD_WIDTH * spread, pred + SPREAD_WIDTH * spread
            trace = band_trace(x, lo, hi, colour_hex=PREDICTED_COLOUR, name=f"spread {d}", group="predicted")
            trace.update(meta=f"{d}/spread", showlegend=first, name="ensemble spread (± std)")
            fig.add_trace(trace, row=row, col=col)
        fig.add_trace(go.Scatter(
            x=x, y=one["true"].values, mode="lines+markers", name="true (replay)", legendgroup="true",
            showlegend=first, meta=f"{d}/true", line={"color": TRUE_VALUE_COLOUR, "width": 2},
            marker={"size": 4},
        ), row=row, col=col)
        fig.add_trace(go.Scatter(
            x=x, y=pred, mode="lines+markers", name="predicted (model)", legendgroup="predicted",
            showlegend=first, meta=f"{d}/predicted", line={"color": PREDICTED_COLOUR, "width": 2, "dash": "dash"},
            marker={"size": 4},
        ), row=row, col=col)
    a = traj.attrs
    fig.update_xaxes(title_text="open-loop horizon", row=rows)
    fig.update_layout(
        template=TEMPLATE, height=max(300, 230 * rows + 90), hovermode="x unified",
        title=(f"Open-loop rollout from replay step {a.get('replay_step')} (episode {a.get('episode')}), "
               f"model at step {a.get('env_step')}, {a.get('split')} start"),
    )
    return fig


def rollout_plot_data(traj: xr.Dataset, dims: Sequence[int]) -> xr.Dataset:
    """What the figure plots: the trajectory's variables for the shown dimensions, with the
    band's edges."""
    out = traj.sel(obs_dim=[int(d) for d in dims])
    units = out["predicted"].attrs.get("units", "")
    out["band_lo"] = (out["predicted"] - SPREAD_WIDTH * out["spread"]).assign_attrs(
        long_name=f"predicted - {SPREAD_WIDTH:g} x spread", units=units)
    out["band_hi"] = (out["predicted"] + SPREAD_WIDTH * out["spread"]).assign_attrs(
        long_name=f"predicted + {SPREAD_WIDTH:g} x spread", units=units)
    return out
