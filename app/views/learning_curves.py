"""Learning curves: several training runs overlaid, seeds of one config aggregated or not."""

from __future__ import annotations

import streamlit as st

from app.figures import learning_curves as figures
from app.library import run_names
from app.studies import learning_curves as study
from app.studies import training
from app.studies.spread import BANDS, CENTERS
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls

MODES = {"aggregate": "centre and band", "each": "each run"}
SETTINGS = ("lc_metric", "lc_mode", "lc_center", "lc_band", "lc_smooth", "lc_log")

st.title("Learning curves")
st.caption(
    "Mean evaluation return per snapshot vs environment steps, or any metric the agent logged vs "
    "gradient updates. Runs whose configs are equal except for `seed` form one config: one "
    "colour, aggregated into a centre (mean or IQM) and a band over seeds, or drawn one line per seed."
)

runs = chooser.library_or_stop(training.KIND, "training run",
                                "`python -m engine train` writes them")
keys = chooser.choose_runs(runs, key="lc_runs")
if not keys:
    st.info("Choose at least one run.")
    st.stop()
names = run_names([runs[k] for k in keys])
trees = {names[k]: runs[k].opened.tree for k in keys}

offered = list(dict.fromkeys(m for t in trees.values() for m in study.metrics(t)))
offered = sorted(offered, key=lambda m: (m != study.EVAL_RETURN, m))
if not offered:
    st.info("The chosen runs have no evaluation or training records yet. Come back later.")
    st.stop()
urlstate.bind("lc_metric", offered[0], options=offered)
urlstate.bind("lc_mode", "aggregate", options=list(MODES))
urlstate.bind("lc_center", "mean", options=list(CENTERS))
urlstate.bind("lc_band", "std", options=list(BANDS))
urlstate.bind("lc_smooth", 1, valid=lambda v: 1 <= v <= 25)
urlstate.bind("lc_log", False)
c_metric, c_mode, c_center, c_band = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
metric = c_metric.selectbox("Metric", offered, format_func=study.metric_label, key="lc_metric")
mode = c_mode.radio("Seeds of a config", list(MODES), horizontal=True, key="lc_mode", format_func=MODES.get)
center = c_center.selectbox("Centre", list(CENTERS), format_func=CENTERS.get, key="lc_center",
                            disabled=mode == "each",
                            help="IQM: scipy.stats.trim_mean(x, 0.25), rliable's interquartile mean. For the "
                                 "evaluation return it pools every episode of every seed at a snapshot.")
band = c_band.selectbox("Spread", list(BANDS), format_func=BANDS.get, key="lc_band", disabled=mode == "each")
c_smooth, c_log = st.columns([4, 2], vertical_alignment="bottom")
window = c_smooth.slider("Moving average (points; 1 = none)", 1, 25, key="lc_smooth")
log_y = c_log.toggle("Log y axis", key="lc_log")
urlstate.remember(*SETTINGS)

per_episode = mode == "aggregate" and center == "iqm" and metric == study.EVAL_RETURN
curves = study.run_curves(trees, metric, window, per_episode=per_episode)
if curves.sizes["run"] == 0:
    st.info(f"None of the chosen runs has values of **{study.metric_label(metric)}** yet.")
    st.stop()
shown = study.config_curves(curves, band, center) if mode == "aggregate" else curves
fig = figures.learning_curve_figure(shown, log_y=log_y)
st.plotly_chart(fig, key="lc_chart")
groups = {c: [str(r) for r in curves["run"].values[curves["config"].values == c]] for c in study.configs(curves)}
notes = [f"**{c}**: {', '.join(rs)}" for c, rs in groups.items()]
if curves.attrs.get("skipped"):
    notes.append(f"Without {study.metric_label(metric)}: {', '.join(curves.attrs['skipped'])}")
st.caption("  \n".join(notes))
if mode == "aggregate":
    st.caption("The centre and band are drawn where every seed of the config has a value (a run still "
               "training cuts its config's curve); smoothing is applied to each run before aggregating. "
               "The 95 % CI is a percentile bootstrap (scipy.stats.bootstrap, seeded) of the centre.")
export_controls(fig, study.plot_data(shown), f"learning_curves_{metric}", key="lc_export")
