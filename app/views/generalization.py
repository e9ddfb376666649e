"""Study 3: frozen-model error vs policy KL (MBPO Fig. 1)."""

from __future__ import annotations

import streamlit as st

from app.figures import generalization as figures
from app.studies import generalization as study
from app.studies.training import run_attrs
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls, page_export_controls

st.title("Model generalization vs policy shift")
st.caption(
    "MBPO (Janner et al. 2019) section 4.3, Fig. 1: while SAC trains, a dynamics model and a copy "
    "of the policy pi_D are frozen when the replay reaches each data size N. At each later check, "
    "fresh transitions collected with the current policy pi give the mean KL(pi || pi_D) over "
    "their states (closed form) and the frozen model's one-step error on them (L2 norm)."
)

runs = chooser.library_or_stop(study.KIND, "generalization run",
                                "`python -m engine study generalization` writes them")
run = chooser.choose_run(runs, key="gen_run")
tree = run.opened.tree
if tree is None or not study.available(tree):
    st.info(f"**{run.name}** has no committed check yet (status: "
            f"{tree.attrs.get('status') if tree is not None else 'unknown'}). Come back later.")
    st.stop()

ds = study.curves(tree)
st.subheader("(a) Model error vs KL, one curve per data size")
fig = figures.error_vs_kl_figure(ds)
st.plotly_chart(fig, key="gen_error_chart")
train_err = ", ".join(f"N = {int(n)}: {e:.3g}" for n, e in
                      zip(ds["data_size"].values, ds["model_error_train"].values, strict=True) if e == e)
st.caption("Line colour: data size N of the probe; marker colour: training step of the check. Each curve "
           "starts at its freeze (KL = 0 exactly). Error on the probe's own holdout data "
           f"(model_error_train): {train_err or 'none yet'}.")
export_controls(fig, study.error_plot_data(ds).assign_attrs(run_attrs(tree)), f"{run.stem}_error_vs_kl",
                key="gen_error")

st.subheader("(b) Local slope d eps_m / d eps_pi near KL = 0")
urlstate.bind("gen_kl_max", round(study.default_kl_max(ds), 4), parse=float, valid=lambda v: v >= 1e-6)
kl_max = st.number_input(
    "Near 0 means KL(pi || pi_D) at most (nat)", min_value=1e-6,
    format="%.4g", key="gen_kl_max",
    help="The slope of each probe is the least-squares line through its checks with KL up to this value, "
         "the check at freezing (KL = 0) included. Default: the median positive KL of the run.",
)
urlstate.remember("gen_kl_max")
slopes = study.local_slopes(ds, kl_max)
lines = study.fitted_lines(slopes)
fig2 = figures.slope_figure(ds, slopes, lines)
st.plotly_chart(fig2, key="gen_slope_chart")
few = [f"N = {int(n)}" for n, k in zip(slopes["data_size"].values, slopes["n_points"].values, strict=True)
       if k < study.MIN_POINTS]
st.caption(f"Fit: scipy.stats.linregress of model error on KL over the checks with KL <= {kl_max:.4g} nat; "
           "error bars: ±1 standard error of the slope (about a 68 % interval for many points; with n "
           "points, multiply by Student's t with n - 2 degrees of freedom for other levels)."
           + (f" No slope (fewer than {study.MIN_POINTS} checks that close): {', '.join(few)}." if few else ""))
export_controls(fig2, study.slope_plot_data(ds, slopes).assign_attrs(run_attrs(tree)),
                f"{run.stem}_local_slope", key="gen_slope")
page_export_controls(f"{run.stem}_generalization", key="gen_page")
