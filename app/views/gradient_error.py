"""Study 4: MAAC policy-gradient error vs model horizon on the double integrator."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.figures import gradient_error as figures
from app.figures.style import run_colours
from app.studies import compare
from app.studies import gradient_error as study
from app.studies.spread import BANDS
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls, page_export_controls
from app.widgets.metrics import metric_help, metric_text
from app.widgets.table import coloured_table

st.title("Gradient error vs model horizon")
st.caption(
    "MAAC (Clavera et al. 2020) Fig. 3 and Lemma 4.1: L1 error of the H-step pathwise policy "
    "gradient against the analytic gradient of the double integrator (LQR), rolling out "
    "through the true dynamics or a learned model."
)

runs = chooser.library_or_stop(study.KIND, "gradient_error run",
                                "`python -m engine study gradient-error` writes them")
trees, stem = chooser.choose_ready(runs, key="ge_runs", ready=lambda t: study.n_seeds(t) > 0,
                                   not_ready="no committed seed yet")

urlstate.bind("ge_band", "std", options=list(BANDS))
urlstate.bind("ge_log", True)
urlstate.bind("ge_bound", True)
c_band, c_log, c_bound = st.columns([2, 1, 1], vertical_alignment="bottom")
band = c_band.selectbox("Spread over seeds", list(BANDS), format_func=BANDS.get, key="ge_band")
log_y = c_log.toggle("Log y axis", key="ge_log")
show_bound = c_bound.toggle("Lemma 4.1 bound shape", key="ge_bound")
urlstate.remember("ge_band", "ge_log", "ge_bound")

# the seeds of every run of a config are pooled (a store holds several seeds already)
groups = compare.config_groups(trees)
pooled = {label: study.pooled_tree([trees[n] for n in ns]) for label, ns in groups.items()}
config_keys = compare.group_keys(trees)
per_config = {label: (study.seed_mean(t, "eps_f"), study.seed_mean(t, "eps_q")) for label, t in pooled.items()}
attrs = compare.runs_attrs(trees)

st.subheader("L1 gradient error vs H")
if len(pooled) == 1:
    eps_f, eps_q = next(iter(per_config.values()))
    m1, m2, m3 = st.columns(3)
    m1.metric("eps_f: model Jacobian error (mean over seeds)", metric_text(eps_f), help=metric_help(eps_f))
    m2.metric("eps_Q: critic gradient error (mean over seeds)", metric_text(eps_q), help=metric_help(eps_q))
    m3.metric("Seeds", eps_f.attrs["n_seeds"])
else:
    coloured_table(pd.DataFrame([
        {"config": label, "runs": ", ".join(groups[label]), "seeds": f.attrs["n_seeds"], "eps_f": metric_text(f),
         "eps_f std": f.attrs["std"], "eps_Q": metric_text(q), "eps_Q std": q.attrs["std"]}
        for label, (f, q) in per_config.items()]), run_colours(config_keys), column="config", key="ge_table")

curve = study.by_config({c: study.l1_vs_horizon(t, band) for c, t in pooled.items()}, config_keys)
bound = study.by_config({c: study.bound_shape(t, curve.sel(config=c, stat="mean")) for c, t in pooled.items()},
                        config_keys) if show_bound else None
fig = figures.l1_error_figure(curve, bound, log_y=log_y)
st.plotly_chart(fig, key="ge_l1_chart")
st.caption("Colour: the run's config (the seeds of its runs pooled); solid: true dynamics, dashed: learned. "
           + ("Thin dashed (true) and dotted (learned): the Lemma 4.1 bound c1(H)·eps_f + c2(H)·eps_Q "
              "(eps_f = 0 for the true dynamics), "
              "scaled per dynamics to equal the measured mean at H = 0. Its constants are unknown, so "
              "only its shape in H is meaningful, not its level. The y axis fits the measured curves; "
              "double-click the plot to see all of a bound that grows beyond them." if show_bound else ""))
export_controls(fig, study.l1_plot_data(curve, bound).assign_attrs(attrs), f"{stem}_l1_error", key="ge_l1")

st.subheader("Gradient estimate per policy parameter vs H")
grads = study.by_config({c: study.est_grad_vs_horizon(t, band) for c, t in pooled.items()}, config_keys)
true_grad = study.by_config({c: study.true_gradient(t) for c, t in pooled.items()}, config_keys)
fig2 = figures.gradients_figure(grads, true_grad)
st.plotly_chart(fig2, key="ge_grad_chart")
st.caption("Dotted: the analytic gradient dJ/dK (mean over seeds).")
export_controls(fig2, study.gradients_plot_data(grads, true_grad).assign_attrs(attrs), f"{stem}_gradients",
                key="ge_grad")
page_export_controls(f"{stem}_gradient_error", key="ge_page")
