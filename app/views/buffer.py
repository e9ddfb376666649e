"""Replay-buffer browser: episodes, histograms per dimension by data age, transitions by page."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import xarray as xr

from app.figures import buffer as figures
from app.studies import buffer as study
from app.studies import training
from app.widgets import runs as chooser
from app.widgets.export import export_controls, page_export_controls

PAGE_SIZES = (25, 50, 100, 500)

st.title("Replay buffer")
st.caption(
    "The real transitions a training run collected (`replay` group), read in blocks: the buffer "
    "is never loaded whole. Data age is the behaviour-policy snapshot (`policy_version`) that "
    "collected a transition."
)

runs = chooser.library_or_stop(training.KIND, "training run",
                                "`python -m engine train` writes them")
run = chooser.choose_run(runs, key="buf_run")
key = run.key
tree = run.opened.tree
if tree is None or not study.available(tree):
    st.info(f"**{run.name}** has no committed transition yet. Come back later.")
    st.stop()
commit = int(tree.attrs.get("commit", 0))  # cache key: a new commit recomputes


@st.cache_data(show_spinner="Reading the episodes...", max_entries=16)
def _episodes(_tree: xr.DataTree, run_key: str, commit: int) -> pd.DataFrame:  # noqa: ARG001
    return study.episodes(_tree)


@st.cache_data(show_spinner="Counting...", max_entries=32)
def _histograms(_tree: xr.DataTree, run_key: str, commit: int, var: str, bins: int,  # noqa: ARG001
                ages: int) -> xr.Dataset:
    return study.histograms(_tree, var, bins=bins, age_groups=ages)


st.subheader("Episodes")
table = _episodes(tree, key, commit)
ends = table["end"].value_counts()
st.caption(f"{study.n_steps(tree)} transitions in {len(table)} episodes: "
           + ", ".join(f"{int(ends.get(e, 0))} {e}" for e in study.END_TYPES)
           + ". *time limit*: cut by the time limit (`truncated`), not a true terminal; *open*: the "
           "buffer ends inside the episode.")
fig_ep = figures.episodes_figure(table)
st.plotly_chart(fig_ep, key="buf_episodes_chart")
st.dataframe(table, hide_index=True, width="stretch", height=240)
export_controls(fig_ep, figures.episodes_plot_data(table).assign_attrs(training.run_attrs(tree)),
                f"{run.stem}_episodes", key="buf_ep")

st.subheader("Histograms by data age")
c_var, c_bins, c_age = st.columns([2, 1, 1], vertical_alignment="bottom")
var = c_var.radio("Variable", list(study.VARIABLES), horizontal=True, key="buf_var")
bins = c_bins.slider("Bins", 5, 100, 30, key="buf_bins")
ages = c_age.slider("Age groups", 1, 10, 4, key="buf_ages")
dim = study.VARIABLES[var]
all_dims = [int(d) for d in tree[study.GROUP][dim].values]
dims = st.multiselect(f"Dimensions ({dim})", all_dims, default=all_dims[:6], key=f"buf_dims_{var}")
if not dims:
    st.info("Choose at least one dimension.")
else:
    hist = _histograms(tree, key, commit, var, bins, ages)
    fig_h = figures.histogram_figure(hist, dims)
    st.plotly_chart(fig_h, key="buf_hist_chart")
    st.caption("Exact counts over every committed transition, computed block by block "
               f"({study.BLOCK_ROWS} steps at a time): bins span each dimension's range; bars are "
               "stacked by age group (dark = old data).")
    export_controls(fig_h, figures.histogram_plot_data(hist, dims).assign_attrs(training.run_attrs(tree)),
                    f"{run.stem}_{var}_histograms", key="buf_hist")

st.subheader("Transitions")
c_size, c_page = st.columns([1, 3], vertical_alignment="bottom")
size = c_size.selectbox("Rows per page", PAGE_SIZES, key="buf_page_size")
pages = study.page_count(tree, size)
page = c_page.number_input(f"Page (1–{pages})", 1, pages, 1, key=f"buf_page_{size}") - 1
st.dataframe(study.transition_page(tree, int(page), size), hide_index=True, width="stretch")
st.caption(f"Steps {page * size}–{min((page + 1) * size, study.n_steps(tree)) - 1}: only these rows "
           "are read from the store.")
page_export_controls(f"{run.stem}_replay_buffer", key="buf_page_export")
