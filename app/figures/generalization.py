"""Study 3 figures: (a) model error vs policy KL per data size, points coloured by training step;
(b) the local slope d eps_m / d eps_pi near KL = 0: the fitted lines, and the slopes vs data size.

Several runs: (a) has one facet per run; (b) overlays the runs, each in its config's colour.
Trace `meta` names the probe (`probe P`, `probe P checks`, `probe P near`, `probe P fit`,
`slopes`), prefixed `RUN/` when there are several runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from app.figures.style import SEED_SYMBOLS, TEMPLATE, axis_title, band_trace, colour, facets, run_colours

STEP_SCALE = "Viridis"
FACET_COLUMNS = 2
SLOPE_COLOUR = "#333333"


def probe_label(data_size: int) -> str:
    """Legend name of a probe's curve."""
    return f"N = {int(data_size)}"


def error_vs_kl_figure(curves: Mapping[str, xr.Dataset], *, colours: Mapping[str, str] | None = None) -> go.Figure:
    """Per run (one facet each when several, titled in the run's colour): one line per probe
    (colour: data size) through its checks in order; the markers are coloured by the training
    step of the check (one scale shared by every facet)."""
    several = len(curves) > 1
    fig = facets(list(curves) if several else [""], [(colours or {}).get(r) for r in curves], cols=FACET_COLUMNS,
                 shared_yaxes=True, shared_xaxes=True, horizontal_spacing=0.06, vertical_spacing=0.12)
    all_steps = np.concatenate([ds["env_step"].values for ds in curves.values()])
    for k, (run, ds) in enumerate(curves.items()):
        tag = f"{run}/" if several else ""
        steps = ds["env_step"].values
        for i, p in enumerate(ds["probe"].values):
            kl, err = ds["kl"].sel(probe=p).values, ds["model_error"].sel(probe=p).values
            ok = np.isfinite(kl) & np.isfinite(err)
            name = probe_label(ds["data_size"].sel(probe=p))
            c = colour(name, i)
            where = {"row": k // FACET_COLUMNS + 1, "col": k % FACET_COLUMNS + 1}
            fig.add_trace(go.Scatter(x=kl[ok], y=err[ok], mode="lines", name=name, meta=f"{tag}probe {p}",
                                     legendgroup=name, showlegend=k == 0, line={"color": c, "width": 2.5}), **where)
            fig.add_trace(go.Scatter(
                x=kl[ok], y=err[ok], mode="markers", name=f"{name} checks", meta=f"{tag}probe {p} checks",
                legendgroup=name, showlegend=False, customdata=steps[ok],
                hovertemplate="KL %{x:.3g} nat<br>error %{y:.3g}<br>step %{customdata}<extra>" + tag + name + "</extra>",
                marker={"color": steps[ok], "colorscale": STEP_SCALE, "cmin": all_steps.min(), "cmax": all_steps.max(),
                        "size": 9, "line": {"color": c, "width": 1.5}, "showscale": k == 0 and i == 0,
                        "colorbar": {"title": "training step", "x": 1.02}},
            ), **where)
    ds = next(iter(curves.values()))
    fig.update_xaxes(title_text=axis_title(ds["kl"].attrs, fallback="KL(pi || pi_D)"))
    fig.update_yaxes(title_text=axis_title(ds["model_error"].attrs, fallback="model error"), col=1)
    rows = (len(curves) - 1) // FACET_COLUMNS + 1
    fig.update_layout(
        template=TEMPLATE, title="Frozen model error vs policy shift" + (", one facet per run" if several else ""),
        height=480 + 320 * (rows - 1), legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"t": 130 if several else 100},
    )
    return fig


def slope_figure(fits: Mapping[str, tuple[xr.Dataset, xr.Dataset, xr.Dataset]], *,
                 colours: Mapping[str, str] | None = None, per_config: xr.DataArray | None = None) -> go.Figure:
    """Left: the checks with KL <= kl_max and each probe's fitted line. Right: the fitted slope
    vs data size with +-1 standard error bars. `fits` maps a run to its (curves, local_slopes,
    fitted_lines); with several runs each is drawn in its colour (probes told apart by marker
    symbol on the left), one slope line per run on the right, or with `per_config` (from
    `config_slopes`) the centre and band over each config's seeds instead (`meta` CONFIG/slopes)."""
    several = len(fits) > 1
    kl_max = next(iter(fits.values()))[1].attrs["kl_max"]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.12,
                        subplot_titles=(f"Checks with KL <= {kl_max:.3g} nat and fitted lines",
                                        "Local slope d eps_m / d eps_pi vs data size"))
    for run, (ds, slopes, lines) in fits.items():
        tag = f"{run}/" if several else ""
        for i, p in enumerate(ds["probe"].values):
            name = tag + probe_label(ds["data_size"].sel(probe=p))
            c = (colours or {}).get(run, SLOPE_COLOUR) if several else colour(name, i)
            kl, err = ds["kl"].sel(probe=p).values, ds["model_error"].sel(probe=p).values
            near = np.isfinite(kl) & np.isfinite(err) & (kl <= kl_max)
            fig.add_trace(go.Scatter(x=kl[near], y=err[near], mode="markers", name=name, meta=f"{tag}probe {p} near",
                                     legendgroup=name, showlegend=not several,
                                     marker={"color": c, "size": 8, "symbol": SEED_SYMBOLS[i % len(SEED_SYMBOLS)]
                                             if several else "circle"}), row=1, col=1)
            if np.isfinite(slopes["slope"].sel(probe=p)):
                line = lines.sel(probe=p)
                fig.add_trace(go.Scatter(x=line["kl_fit"].values, y=line["model_error_fit"].values, mode="lines",
                                         name=f"{name} fit", meta=f"{tag}probe {p} fit", legendgroup=name,
                                         showlegend=False, line={"color": c, "dash": "dash"}), row=1, col=1)
        ok = np.isfinite(slopes["slope"].values)
        if per_config is not None:
            continue
        c = (colours or {}).get(run, SLOPE_COLOUR) if several else SLOPE_COLOUR
        fig.add_trace(go.Scatter(
            x=slopes["data_size"].values[ok], y=slopes["slope"].values[ok], mode="lines+markers",
            name=f"{tag}slope ± 1 SE", meta=f"{tag}slopes", line={"color": c}, marker={"size": 9},
            error_y={"type": "data", "array": slopes["slope_stderr"].values[ok], "visible": True},
        ), row=1, col=2)
    if per_config is not None:
        _config_slopes(fig, per_config)
    ds, slopes, _ = next(iter(fits.values()))
    fig.update_xaxes(title_text=axis_title(ds["kl"].attrs, fallback="KL"), row=1, col=1)
    fig.update_yaxes(title_text=axis_title(ds["model_error"].attrs, fallback="model error"), row=1, col=1)
    fig.update_xaxes(title_text="data size N (transitions)", row=1, col=2)
    fig.update_yaxes(title_text=axis_title(slopes["slope"].attrs, fallback="slope"), row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=460, margin={"t": 110},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "x": 0})
    return fig


def _config_slopes(fig: go.Figure, per_config: xr.DataArray) -> None:
    """The right panel per config: centre line and band over its seeds, in the config's colour."""
    labels = [str(c) for c in per_config["config"].values]
    colours = run_colours(dict(zip(labels, (str(k) for k in per_config["config_key"].values), strict=True)))
    centre = "IQM" if per_config.attrs.get("center") == "iqm" else "mean"
    for label in labels:
        sel = per_config.sel(config=label)
        ok = np.isfinite(sel.sel(stat="mean").values)
        x = per_config["data_size"].values[ok]
        n = int(sel["n_seeds"])
        if n > 1:
            fig.add_trace(band_trace(x, sel.sel(stat="lo").values[ok], sel.sel(stat="hi").values[ok],
                                     colour_hex=colours[label], name=f"{label} band", group=label), row=1, col=2)
        fig.add_trace(go.Scatter(
            x=x, y=sel.sel(stat="mean").values[ok], mode="lines+markers", meta=f"{label}/slopes", legendgroup=label,
            name=f"{label}: slope, {centre} of {n} seed{'s' if n != 1 else ''}", line={"color": colours[label]},
            marker={"size": 9},
        ), row=1, col=2)
