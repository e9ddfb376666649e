"""Study 2 figure: density of normalised true return (x) vs predicted Q (y), unity line."""

from __future__ import annotations

import plotly.graph_objects as go
import xarray as xr

from app.figures.style import TEMPLATE

DENSITY_SCALE = [  # Blues, with the lowest level transparent (no box around the cloud)
    [0.0, "rgba(255, 255, 255, 0)"], [0.08, "rgba(255, 255, 255, 0)"], [0.12, "#deebf7"], [0.4, "#9ecae1"], [0.7, "#4292c6"], [1.0, "#08519c"],
]
POINT_COLOUR = "#1f2d3d"
CENSORED_COLOUR = "#ff7f0e"
UNITY_COLOUR = "#d62728"


def q_density_figure(samples: xr.DataArray, *, axis_range: tuple[float, float] | None = None,
                     title: str = "", title_colour: str | None = None) -> go.Figure:
    """A 2-D density (histogram2dcontour) of the normalised pairs, the samples as dots
    (censored ones, if kept, in orange), and the unity line y = x, on equal square axes.

    `samples` is (quantity, sample) from `normalized_samples`; `axis_range` sets both axes (for
    side-by-side panels), else they cover the data. `title_colour`: the run's colour (the
    colour of its config on every page).
    """
    g = samples.sel(quantity="return_true").values
    q = samples.sel(quantity="q_pred").values
    censored = samples["censored"].values.astype(bool)
    if axis_range is None:
        lo = float(min(g.min(), q.min())) if g.size else -1.0
        hi = float(max(g.max(), q.max())) if g.size else 1.0
        pad = 0.05 * ((hi - lo) or 1.0)
        axis_range = (lo - pad, hi + pad)
    fig = go.Figure()
    if g.size >= 3:
        fig.add_trace(go.Histogram2dContour(
            x=g, y=q, colorscale=DENSITY_SCALE, showscale=False, ncontours=14, name="density",
            contours={"coloring": "fill", "showlines": False}, hoverinfo="skip",
        ))
    for flag, colour, name in ((False, POINT_COLOUR, "samples"), (True, CENSORED_COLOUR, "censored samples")):
        pick = censored == flag
        if pick.any():
            fig.add_trace(go.Scatter(
                x=g[pick], y=q[pick], mode="markers", name=name, meta=name,
                marker={"size": 4, "color": colour, "opacity": 0.55},
                customdata=samples["t"].values[pick],
                hovertemplate="true %{x:.3f}<br>pred %{y:.3f}<br>t = %{customdata}<extra></extra>",
            ))
    fig.add_trace(go.Scatter(
        x=list(axis_range), y=list(axis_range), mode="lines", name="unity (Q̂ = G)",
        line={"color": UNITY_COLOUR, "dash": "dash", "width": 1.5}, hoverinfo="skip",
    ))
    fig.update_layout(
        template=TEMPLATE, title={"text": title, "font": {"color": title_colour} if title_colour else {}},
        height=440, showlegend=True,
        legend={"orientation": "h", "yanchor": "top", "y": -0.16, "x": 0},
        xaxis={"title": "true discounted return (normalised)", "range": list(axis_range),
               "constrain": "domain", "zeroline": False},
        yaxis={"title": "predicted Q (normalised)", "range": list(axis_range), "scaleanchor": "x",
               "scaleratio": 1, "constrain": "domain", "zeroline": False},
        margin={"t": 60, "b": 40},
    )
    return fig
