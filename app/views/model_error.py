"""Study 1: open-loop model error vs horizon during training (MVE Fig. 1, SVG Fig. 3)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.figures import model_error as figures
from app.figures.style import run_colours
from app.studies import compare, training
from app.studies import model_error as study
from app.studies.spread import BANDS, CENTERS, band_label
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls, page_export_controls

MODES = {"aggregate": "pooled per config", "each": "each run"}
SETTINGS = ("me_mode", "me_center", "me_band", "me_norm", "me_log", "me_bands")

st.title("Open-loop model error vs horizon")
st.caption(
    "MVE (Feinberg et al. 2018) Fig. 1 and SVG (Heess et al. 2015) Fig. 3: at each snapshot the "
    "current dynamics model is rolled open loop with the recorded actions from real start states "
    "and compared with the real states, for horizons 1..H, never across an episode end. "
    "**holdout** starts are replay transitions never used for fitting; **test** starts are the "
    "newest data, collected after the model's last fit."
)

runs = chooser.library_or_stop(training.KIND, "training run", "`python -m engine train` writes them")
with_data = {k: r for k, r in runs.items() if r.opened.tree is not None and study.available(r.opened.tree)}
if not with_data:
    st.info("None of the training runs has a model-error snapshot yet (a run records them when it has "
            "a dynamics model). Come back later.")
    st.stop()
trees, stem = chooser.choose_ready(with_data, key="me_runs", ready=lambda t: bool(study.usable_snapshots(t)),
                                   label="Runs (one: its snapshots over training; several: compared at one step)",
                                   not_ready="no snapshot with a fitted model and a valid start yet")
notes = {n: study.skipped_note(t) for n, t in trees.items()}
if any(notes.values()):
    st.caption("Not shown: " + "; ".join((f"{n}: {v}" if len(trees) > 1 else v) for n, v in notes.items() if v) + ".")

urlstate.bind("me_mode", "aggregate", options=list(MODES))
urlstate.bind("me_center", "mean", options=list(CENTERS))
urlstate.bind("me_band", "p10_90", options=list(BANDS))
urlstate.bind("me_norm", False)
urlstate.bind("me_log", True)
urlstate.bind("me_bands", True)
usable = {n: study.usable_steps(t) for n, t in trees.items()}
if len(trees) == 1:
    steps = next(iter(usable.values()))
    default = sorted({list(steps)[int(i)] for i in np.linspace(0, len(steps) - 1, min(5, len(steps))).round()})
    chosen = st.multiselect("Snapshots", list(steps), default=default, key="me_snapshots",
                            format_func=lambda s: f"step {steps[s]} (snapshot {s})")
else:
    all_steps = sorted({e for u in usable.values() for e in u.values()})
    urlstate.bind("me_step", all_steps[-1], options=all_steps)
    c_step, c_mode = st.columns([4, 2], vertical_alignment="bottom")
    step = c_step.select_slider("Training step (env steps)", all_steps, key="me_step",
                                help="Each run shows its last usable snapshot at or before this step.")
    mode = c_mode.radio("Seeds of a config", list(MODES), horizontal=True, key="me_mode", format_func=MODES.get)
    urlstate.remember("me_step")
c_center, c_band, c_norm, c_log, c_bands = st.columns([2, 3, 2, 2, 1], vertical_alignment="bottom")
center = c_center.selectbox("Centre", list(CENTERS), format_func=CENTERS.get, key="me_center")
band = c_band.selectbox("Spread over start states", list(BANDS), key="me_band",
                        format_func=lambda b: band_label(b, center))
normalized = c_norm.toggle("Normalised error", key="me_norm",
                           help="error_normalized: each state dimension divided by its std in the replay "
                                "buffer before the L2 norm (dimensionless); off: the raw L2 error.")
log_y = c_log.toggle("Log scale", key="me_log")
show_bands = c_bands.toggle("Bands", key="me_bands")
urlstate.remember(*SETTINGS)

st.subheader("Error vs horizon")
if len(trees) == 1:
    tree = next(iter(trees.values()))
    if not chosen:
        st.info("Choose at least one snapshot.")
    else:
        curves = study.error_vs_horizon(tree, sorted(chosen), band, center, normalized=normalized)
        fig = figures.error_vs_horizon_figure(curves, log_y=log_y, bands=show_bands)
        st.plotly_chart(fig, key="me_curve_chart")
        empty = study.empty_curves(curves)
        note = (f"Colour: training step (dark = early). Solid: holdout, dashed: test. Band over the "
                f"start states of each curve ({band_label(band, center)}); the legend gives their number.")
        if empty:
            note += " No valid start, not drawn: " + ", ".join(f"step {steps[s]} {p}" for s, p in empty) + "."
        st.caption(note)
        export_controls(fig, study.curves_plot_data(curves).assign_attrs(training.run_attrs(tree)),
                        f"{stem}_model_error_vs_horizon", key="me_curve")
else:
    snaps = {n: list(u)[compare.at_or_before(list(u.values()), step)] for n, u in usable.items()}
    groups = compare.config_groups(trees) if mode == "aggregate" else {n: [n] for n in trees}
    curves = study.runs_error_vs_horizon(trees, snaps, groups, band, center, normalized=normalized)
    fig = figures.runs_error_figure(curves, log_y=log_y, bands=show_bands)
    st.plotly_chart(fig, key="me_curve_chart")
    st.caption("Colour: the run's config (seeds of a config share it; marker symbols tell them apart). Solid: "
               "holdout, dashed: test. " + ("The start states of every seed of a config are pooled: centre and "
                                            "band over all of them. " if mode == "aggregate" else "")
               + "".join(f"  \n**{line}**: {', '.join(names)}" for line, names in groups.items() if len(names) > 1))
    export_controls(fig, study.curves_plot_data(curves).assign_attrs(compare.runs_attrs(trees, step=int(step))),
                    f"{stem}_model_error_vs_horizon_step{step}", key="me_curve")

st.subheader("Mean error over training step x horizon")
heats = {n: study.error_heatmap(t, normalized=normalized) for n, t in trees.items()}
fig2 = figures.error_heatmap_figure(heats, log_z=log_y, colours=run_colours(compare.config_keys(trees)))
st.plotly_chart(fig2, key="me_heat_chart")
st.caption("Mean over the start states of each split" + (", one row per run" if len(trees) > 1 else "")
           + "; grey: no fitted model or no valid start at that snapshot."
           + (" Colour: log10 of the mean error." if log_y else ""))
heat_data = compare.stack_runs({n: study.heatmap_plot_data(h) for n, h in heats.items()})
export_controls(fig2, heat_data.assign_attrs(compare.runs_attrs(trees)), f"{stem}_model_error_heatmap", key="me_heat")
page_export_controls(f"{stem}_model_error", key="me_page")
