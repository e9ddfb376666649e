"""Study 1b: model classes refitted in stages on a recorded buffer (SVG Fig. 3)."""

from __future__ import annotations

import streamlit as st

from app.figures import model_comparison as figures
from app.studies import model_comparison as study
from app.studies.training import run_attrs
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
run = chooser.choose_run(runs, key="mc_run")
tree = run.opened.tree
if tree is None or study.n_stages(tree) == 0:
    st.info(f"**{run.name}** has no committed stage yet (status: "
            f"{tree.attrs.get('status') if tree is not None else 'unknown'}). Come back later.")
    st.stop()

group = tree[study.GROUP]
stages = [int(s) for s in group["stage"].values]
horizons = [int(h) for h in group["horizon"].values]
urlstate.bind("mc_stage", stages[-1], options=stages)
urlstate.bind("mc_horizon", horizons[-1], options=horizons)
urlstate.bind("mc_log", True)
c_stage, c_h, c_log = st.columns([2, 2, 1], vertical_alignment="bottom")
stage = c_stage.select_slider("Stage (left panel)", stages, key="mc_stage")
horizon = c_h.select_slider("Horizon (right panel)", horizons, key="mc_horizon")
log_y = c_log.toggle("Log scale", key="mc_log")
urlstate.remember("mc_stage", "mc_horizon", "mc_log")

left, right = st.columns(2)
with left:
    by_h = study.mse_vs_horizon(tree, stage)
    fig1 = figures.mse_vs_horizon_figure(by_h, log_y=log_y)
    st.plotly_chart(fig1, key="mc_horizon_chart")
    export_controls(fig1, by_h.to_dataset(name="mse").assign_attrs(run_attrs(tree, stage=stage)),
                    f"{run.stem}_mse_vs_horizon_stage{stage}", key="mc_h")
with right:
    by_stage = study.mse_vs_stage(tree, horizon)
    fig2 = figures.mse_vs_stage_figure(by_stage, log_y=log_y)
    st.plotly_chart(fig2, key="mc_stage_chart")
    export_controls(fig2, by_stage.to_dataset(name="mse").assign_attrs(run_attrs(tree, horizon=horizon)),
                    f"{run.stem}_mse_vs_stage_h{horizon}", key="mc_s")
st.caption("Colour: model class; solid: train, dashed: holdout, dotted: test. A split with no "
           "window of the full horizon inside one episode has no value and is not drawn.")
with st.expander("Start states per stage and split"):
    st.dataframe(study.starts_table(tree).to_pandas())
page_export_controls(f"{run.stem}_model_comparison", key="mc_page")
