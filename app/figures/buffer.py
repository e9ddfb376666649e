"""Replay-buffer figures: histograms per dimension coloured by data age, and episode returns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from app.figures.model_error import snapshot_colours
from app.figures.style import TEMPLATE
from app.studies.buffer import END_TYPES, age_label

END_COLOURS = dict(zip(END_TYPES, ("#d62728", "#1f77b4", "#7f7f7f"), strict=True))
COLUMNS = 3


def histogram_figure(hist: xr.Dataset, dims: list[int]) -> go.Figure:
    """One subplot per chosen dimension: counts per bin, stacked by age group (dark = old data,
    as the snapshots elsewhere: dark = early)."""
    dim = next(d for d in hist["count"].dims if d not in ("age", "bin"))
    var = hist.attrs["variable"]
    rows = max(1, math.ceil(len(dims) / COLUMNS))
    cols = min(COLUMNS, max(1, len(dims)))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{var}[{d}]" for d in dims],
                        vertical_spacing=0.12 if rows > 1 else 0.1)
    colours = snapshot_colours(hist.sizes["age"])
    for i, d in enumerate(dims):
        h = hist.sel({dim: d})
        centre = (h["bin_left"].values + h["bin_right"].values) / 2
        width = h["bin_right"].values - h["bin_left"].values
        for age in range(hist.sizes["age"]):
            fig.add_trace(go.Bar(
                x=centre, y=h["count"].isel(age=age).values, width=width, marker_color=colours[age],
                name=age_label(hist, age), legendgroup=str(age), showlegend=i == 0, meta=f"{d}:{age}",
                hovertemplate=f"{age_label(hist, age)}<br>%{{x:.3g}}: %{{y}} transitions<extra></extra>",
            ), row=i // COLUMNS + 1, col=i % COLUMNS + 1)
    fig.update_layout(template=TEMPLATE, barmode="stack", bargap=0, height=260 * rows + 60,
                      legend_title_text="Data age (policy version)",
                      margin={"l": 50, "r": 20, "t": 50, "b": 40})
    fig.update_yaxes(title_text="transitions", col=1)
    return fig


def histogram_plot_data(hist: xr.Dataset, dims: list[int]) -> xr.Dataset:
    """The plotted histograms (chosen dimensions only), for export."""
    dim = next(d for d in hist["count"].dims if d not in ("age", "bin"))
    return hist.sel({dim: dims})


def episodes_figure(table: pd.DataFrame) -> go.Figure:
    """Return per episode, coloured by how the episode ended."""
    fig = go.Figure()
    for end in END_TYPES:
        part = table[table["end"] == end]
        if len(part):
            fig.add_trace(go.Scatter(
                x=part["episode"], y=part["return"], mode="markers", name=end, meta=end,
                marker={"color": END_COLOURS[end], "size": 7},
                customdata=np.stack([part["length"], part["version_min"], part["version_max"]], axis=1),
                hovertemplate="episode %{x}: return %{y:.4g}<br>length %{customdata[0]}, "
                              "policy versions %{customdata[1]}–%{customdata[2]}<extra></extra>",
            ))
    fig.update_layout(template=TEMPLATE, xaxis_title="episode", yaxis_title="return (reward)",
                      legend_title_text="Episode end", showlegend=True, height=340, margin={"l": 60, "r": 20, "t": 30, "b": 50})
    return fig


def episodes_plot_data(table: pd.DataFrame) -> xr.Dataset:
    """The episodes table as a Dataset (dim `episode`), for export."""
    ds = xr.Dataset.from_dataframe(table.set_index("episode"))
    ds["return"].attrs.update(long_name="episode return", units="reward")
    ds["length"].attrs.update(long_name="episode length", units="1")
    return ds
