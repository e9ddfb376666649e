"""Study 1: open-loop model error vs horizon during training (MVE Fig. 1, SVG Fig. 3)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.figures import model_error as figures
from app.studies import model_error as study
from app.studies import training
from app.studies.spread import BANDS
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls, page_export_controls

st.title("Open-loop model error vs horizon")
st.caption(
    "MVE (Feinberg et al. 2018) Fig. 1 and SVG (Heess et al. 2015) Fig. 3: at each snapshot the "
    "current dynamics model is rolled open loop with the recorded actions from real start states "
    "and compared with the real states, for horizons 1..H, never across an episode end. "
    "**holdout** starts are replay transitions never used for fitting; **test** starts are the "
    "newest data, collected after the model's last fit."
)

runs = chooser.library_or_stop(training.KIND, "training run",
                                "`python -m engine train` writes them")
run = chooser.choose_run(runs, key="me_run")
tree = run.opened.tree
if tree is None or not study.available(tree):
    st.info(f"**{run.name}** has no model-error snapshot yet (a run records them when it has a "
            "dynamics model; status: "
            f"{tree.attrs.get('status') if tree is not None else 'unknown'}).")
    st.stop()

fitted = study.model_fitted(tree)
usable = study.usable_snapshots(tree)
steps = {int(s): int(e) for s, e in zip(fitted["snapshot"].values, fitted["env_step"].values, strict=True)}
skipped = [s for s in steps if s not in usable]
if skipped:
    unfitted = [steps[s] for s in skipped if not bool(fitted.sel(snapshot=s))]
    no_start = [steps[s] for s in skipped if bool(fitted.sel(snapshot=s))]
    parts = []
    if unfitted:
        parts.append(f"no model fitted yet at step(s) {', '.join(map(str, unfitted))}")
    if no_start:
        parts.append(f"no valid start state (an episode long enough for the horizon) at step(s) "
                     f"{', '.join(map(str, no_start))}")
    st.caption("Not shown: " + "; ".join(parts) + ".")
if not usable:
    st.info(f"**{run.name}** has no snapshot with a fitted model and a valid start yet. Come back later.")
    st.stop()

default = sorted({usable[int(i)] for i in np.linspace(0, len(usable) - 1, min(5, len(usable))).round()})
chosen = st.multiselect("Snapshots", usable, default=default, key="me_snapshots",
                        format_func=lambda s: f"step {steps[s]} (snapshot {s})")
urlstate.bind("me_band", "p10_90", options=list(BANDS))
urlstate.bind("me_norm", False)
urlstate.bind("me_log", True)
urlstate.bind("me_bands", True)
c_band, c_norm, c_log, c_bands = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
band = c_band.selectbox("Spread over start states", list(BANDS), format_func=BANDS.get, key="me_band")
normalized = c_norm.toggle("Normalised error", key="me_norm",
                           help="error_normalized: each state dimension divided by its std in the replay "
                                "buffer before the L2 norm (dimensionless); off: the raw L2 error.")
log_y = c_log.toggle("Log scale", key="me_log")
show_bands = c_bands.toggle("Bands", key="me_bands")
urlstate.remember("me_band", "me_norm", "me_log", "me_bands")

st.subheader("Error vs horizon")
if not chosen:
    st.info("Choose at least one snapshot.")
else:
    curves = study.error_vs_horizon(tree, sorted(chosen), band, normalized=normalized)
    fig = figures.error_vs_horizon_figure(curves, log_y=log_y, bands=show_bands)
    st.plotly_chart(fig, key="me_curve_chart")
    empty = study.empty_curves(curves)
    note = (f"Colour: training step (dark = early). Solid: holdout, dashed: test. Band over the "
            f"start states of each curve ({BANDS[band]}); the legend gives their number.")
    if empty:
        note += " No valid start, not drawn: " + ", ".join(f"step {steps[s]} {p}" for s, p in empty) + "."
    st.caption(note)
    export_controls(fig, study.curves_plot_data(curves).assign_attrs(training.run_attrs(tree)),
                    f"{run.stem}_model_error_vs_horizon", key="me_curve")

st.subheader("Mean error over training step x horizon")
heat = study.error_heatmap(tree, normalized=normalized)
fig2 = figures.error_heatmap_figure(heat, log_z=log_y)
st.plotly_chart(fig2, key="me_heat_chart")
st.caption("Mean over the start states of each split; grey: no fitted model or no valid start at "
           "that snapshot." + (" Colour: log10 of the mean error." if log_y else ""))
export_controls(fig2, study.heatmap_plot_data(heat).assign_attrs(training.run_attrs(tree)),
                f"{run.stem}_model_error_heatmap", key="me_heat")
page_export_controls(f"{run.stem}_model_error", key="me_page")
