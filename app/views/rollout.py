"""Rollout viewer: the model's predicted vs the true trajectory from one recorded start state."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import xarray as xr

from app.figures import rollout as figures
from app.studies import model_error, training
from app.studies import rollout as study
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls


@st.cache_data(show_spinner="Reading the episodes...", max_entries=16)
def _first_steps(_tree: xr.DataTree, run_key: str, commit: int) -> pd.Series:  # noqa: ARG001
    """Episode starts of a run, read once per commit (a new commit recomputes)."""
    return study.episode_first_steps(_tree)


st.title("Rollout viewer")
st.caption(
    "At each snapshot the engine rolled the current dynamics model open loop from the Study 1 "
    "start states with the recorded actions and stored the prediction. Pick a snapshot and a start "
    "state: each panel is one state dimension, the true trajectory read from the replay buffer "
    "against the model's, with the ensemble's spread as a band when the model is an ensemble."
)

runs = chooser.library_or_stop(training.KIND, "training run", "`python -m engine train` writes them")
# runs with stored predictions first (stable order otherwise): unless a run is selected, the page
# opens on one it can draw, though older stores come first in the library
runs = dict(sorted(runs.items(), key=lambda kv: not study.has_predictions(kv[1].opened.tree)))
run = chooser.choose_run(runs, key="ro_run")
tree = run.opened.tree
absent = study.missing(tree) if tree is not None else ["the store"]
if absent:
    drawable = [e.name for e in runs.values() if study.has_predictions(e.opened.tree)]
    st.info(f"**{run.name}** has no stored model predictions to show: it lacks "
            + ", ".join(f"`{a}`" for a in absent) + ". Stores written by `python -m engine train` "
            "since the rollout viewer record `model_error/prediction` at every snapshot with a model"
            + (f"; runs here that have them: {', '.join(drawable[:3])}." if drawable else "."))
    st.stop()
usable = model_error.usable_snapshots(tree)
if not usable:
    st.info(f"**{run.name}** has no snapshot with a fitted model and a valid start yet. Come back later.")
    st.stop()
steps = {int(s): int(e) for s, e in zip(tree[study.GROUP]["snapshot"].values,
                                         tree[study.GROUP]["env_step"].values, strict=True)}
c_snap, c_split = st.columns([3, 2], vertical_alignment="bottom")
urlstate.bind("ro_snapshot", usable[-1], options=usable)
snapshot = c_snap.selectbox("Snapshot", usable, key="ro_snapshot",
                            format_func=lambda s: f"step {steps[s]} (snapshot {s})")
counts = model_error.start_counts(tree).sel(snapshot=snapshot)
splits = [str(p) for p in counts["split"].values if int(counts.sel(split=p)) > 0]
urlstate.bind("ro_split", splits[0], options=splits, parse=str)
split = c_split.radio("Split", splits, key="ro_split", horizontal=True,
                      help="holdout: replay transitions never used for fitting; test: the newest data, "
                           "collected after the model's last fit.")
table = study.starts(tree, snapshot, split, _first_steps(tree, run.key, int(tree.attrs.get("commit", 0))))
labels = {int(r["start"]): study.start_label(r) for _, r in table.iterrows()}
urlstate.bind("ro_start", int(table["start"].iloc[0]), options=list(labels))
start = st.selectbox(f"Start state ({len(labels)} recorded)", list(labels), key="ro_start", format_func=labels.get)
all_dims = [int(d) for d in tree[study.GROUP]["obs_dim"].values]
dims = st.multiselect("State dimensions", all_dims, default=all_dims[:9], key="ro_dims",
                      format_func=lambda d: f"obs[{d}]")
traj = study.trajectory(tree, snapshot, split, start)
spread = bool(traj["spread"].notnull().any())  # NaN for models other than an ensemble
band = st.toggle("Ensemble spread band", value=True, key="ro_band", disabled=not spread)
urlstate.remember("ro_snapshot", "ro_split", "ro_start")

if not dims:
    st.info("Choose at least one state dimension.")
    st.stop()
fig = figures.rollout_figure(traj, dims, band=band)
st.plotly_chart(fig, key="ro_chart")
if not spread:
    about_band = " No band: the model is not an ensemble (or the store has no spread)."
elif band:
    about_band = " Band: predicted ± the elites' std of predicted means from the state the rollout reached."
else:
    about_band = ""
st.caption(f"Horizon 0 is the start state (replay step {traj.attrs['replay_step']}); the stored L2 error at "
           f"the last horizon is {float(traj['error'][-1]):.4g}." + about_band)
export_controls(fig, figures.rollout_plot_data(traj, dims).assign_attrs(training.run_attrs(tree, **traj.attrs)),
                f"{run.stem}_rollout_step{traj.attrs['replay_step']}", key="ro_fig")
