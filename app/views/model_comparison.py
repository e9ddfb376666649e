"""Study 1b: model classes refitted in stages on a recorded buffer (SVG Fig. 3)."""

from __future__ import annotations

import streamlit as st
import xarray as xr

from app.figures import model_comparison as figures
from app.figures.style import run_colours
from app.studies import compare
from app.studies import model_comparison as study
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls, page_export_controls

st.title("Model classes on a recorded buffer")
st.caption(
    "SAC-SVG (Amos et al. 2021) sec. 5.1, Fig. 3: a training run's episodes are added in stages; "
    "at each stage every model class is refitted from scratch and rolled open loop with the "
    "recorded actions. **train**: the episodes it was fitted on; **holdout**: episodes of the same "
    "period never fitted; **test**: the run's last episodes, the same at every stage. "
    "`python -m engine study model-comparison` writes these stores."
)

runs = chooser.library_or_stop(
    study.KIND, "model_comparison run",
    "`python -m engine study model-comparison --buffer RUN.zarr --out OUT.zarr` makes one")
trees, stem = chooser.choose_ready(runs, key="mc_runs", label="Runs (one facet each)",
                                   ready=lambda t: study.n_stages(t) > 0, not_ready="no committed stage yet")
colours = run_colours(compare.config_keys(trees))

groups = {n: t[study.GROUP] for n, t in trees.items()}
stages = sorted({int(s) for g in groups.values() for s in g["stage"].values})
horizons = sorted({int(h) for g in groups.values() for h in g["horizon"].values})
urlstate.bind("mc_stage", stages[-1], options=stages)
urlstate.bind("mc_horizon", horizons[-1], options=horizons)
urlstate.bind("mc_log", True)
c_stage, c_h, c_log = st.columns([2, 2, 1], vertical_alignment="bottom")
stage = c_stage.select_slider("Stage (left panel)", stages, key="mc_stage",
                              help="A run without this stage shows its last stage before it.")
horizon = c_h.select_slider("Horizon (right panel)", horizons, key="mc_horizon",
                            help="A run without this horizon shows its longest horizon below it.")
log_y = c_log.toggle("Log scale", key="mc_log")
urlstate.remember("mc_stage", "mc_horizon", "mc_log")


def _at(values: xr.DataArray, v: int) -> int:
    return int(values.values[compare.at_or_before(values.values, v)])


left, right = st.columns(2) if len(trees) == 1 else (st.container(), st.container())
with left:
    by_h = {n: study.mse_vs_horizon(t, _at(groups[n]["stage"], stage)) for n, t in trees.items()}
    fig1 = figures.mse_vs_horizon_figure(by_h, log_y=log_y, colours=colours)
    st.plotly_chart(fig1, key="mc_horizon_chart")
    data1 = compare.stack_runs({n: d.to_dataset(name="mse").assign_coords(stage=d.attrs["stage"])
                                for n, d in by_h.items()})
    export_controls(fig1, data1.assign_attrs(compare.runs_attrs(trees, stage=stage)),
                    f"{stem}_mse_vs_horizon_stage{stage}", key="mc_h")
with right:
    by_stage = {n: study.mse_vs_stage(t, _at(groups[n]["horizon"], horizon)) for n, t in trees.items()}
    fig2 = figures.mse_vs_stage_figure(by_stage, log_y=log_y, colours=colours)
    st.plotly_chart(fig2, key="mc_stage_chart")
    data2 = compare.stack_runs({n: d.to_dataset(name="mse").assign_coords(horizon=d.attrs["horizon"])
                                for n, d in by_stage.items()})
    export_controls(fig2, data2.assign_attrs(compare.runs_attrs(trees, horizon=horizon)),
                    f"{stem}_mse_vs_stage_h{horizon}", key="mc_s")
st.caption("Colour: model class; solid: train, dashed: holdout, dotted: test"
           + ("; one facet per run, its title in the run's colour" if len(trees) > 1 else "")
           + ". A split with no window of the full horizon inside one episode has no value and is not drawn.")
with st.expander("Start states per stage and split"):
    for n, t in trees.items():
        if len(trees) > 1:
            st.markdown(f"**{n}**")
        st.dataframe(study.starts_table(t).to_pandas())
page_export_controls(f"{stem}_model_comparison", key="mc_page")
