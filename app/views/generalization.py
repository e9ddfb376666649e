"""Study 3: frozen-model error vs policy KL (MBPO Fig. 1)."""

from __future__ import annotations

import streamlit as st

from app.figures import generalization as figures
from app.figures.style import run_colours
from app.studies import compare
from app.studies import generalization as study
from app.studies.spread import BANDS, CENTERS, band_label, stats_to_vars
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls, page_export_controls

MODES = {"aggregate": "centre and band", "each": "each run"}

st.title("Model generalization vs policy shift")
st.caption(
    "MBPO (Janner et al. 2019) section 4.3, Fig. 1: while SAC trains, a dynamics model and a copy "
    "of the policy pi_D are frozen when the replay reaches each data size N. At each later check, "
    "fresh transitions collected with the current policy pi give the mean KL(pi || pi_D) over "
    "their states (closed form) and the frozen model's one-step error on them (L2 norm)."
)

runs = chooser.library_or_stop(study.KIND, "generalization run",
                                "`python -m engine study generalization` writes them")
trees, stem = chooser.choose_ready(runs, key="gen_runs", ready=study.available, not_ready="no committed check yet")
colours = run_colours(compare.config_keys(trees))
attrs = compare.runs_attrs(trees)

curves = {n: study.curves(t) for n, t in trees.items()}
st.subheader("(a) Model error vs KL, one curve per data size" + (", one facet per run" if len(trees) > 1 else ""))
fig = figures.error_vs_kl_figure(curves, colours=colours)
st.plotly_chart(fig, key="gen_error_chart")
train_err = "; ".join((f"{n}: " if len(trees) > 1 else "") + ", ".join(
    f"N = {int(s)}: {e:.3g}" for s, e in zip(ds["data_size"].values, ds["model_error_train"].values, strict=True)
    if e == e) for n, ds in curves.items())
st.caption("Line colour: data size N of the probe; marker colour: training step of the check. Each curve "
           "starts at its freeze (KL = 0 exactly). Error on the probe's own holdout data "
           f"(model_error_train): {train_err or 'none yet'}.")
export_controls(fig, compare.stack_runs({n: study.error_plot_data(ds) for n, ds in curves.items()}).assign_attrs(attrs),
                f"{stem}_error_vs_kl", key="gen_error")

st.subheader("(b) Local slope d eps_m / d eps_pi near KL = 0")
default_kl = min(study.default_kl_max(ds) for ds in curves.values())
urlstate.bind("gen_kl_max", round(default_kl, 4), parse=float, valid=lambda v: v >= 1e-6)
kl_max = st.number_input(
    "Near 0 means KL(pi || pi_D) at most (nat)", min_value=1e-6,
    format="%.4g", key="gen_kl_max",
    help="The slope of each probe is the least-squares line through its checks with KL up to this value, "
         "the check at freezing (KL = 0) included. Default: the median positive KL of the run (the smallest "
         "of the runs' medians).",
)
urlstate.remember("gen_kl_max")
per_config = None
if len(trees) > 1:
    urlstate.bind("gen_mode", "aggregate", options=list(MODES))
    urlstate.bind("gen_center", "mean", options=list(CENTERS))
    urlstate.bind("gen_band", "std", options=list(BANDS))
    c_mode, c_center, c_band = st.columns([2, 2, 3], vertical_alignment="bottom")
    mode = c_mode.radio("Slopes of a config's seeds", list(MODES), horizontal=True, key="gen_mode",
                        format_func=MODES.get)
    center = c_center.selectbox("Centre", list(CENTERS), format_func=CENTERS.get, key="gen_center",
                                disabled=mode == "each")
    band = c_band.selectbox("Spread over seeds", list(BANDS), key="gen_band", disabled=mode == "each",
                            format_func=lambda b: band_label(b, center))
    urlstate.remember("gen_mode", "gen_center", "gen_band")
fits = {}
for n, ds in curves.items():
    slopes = study.local_slopes(ds, kl_max)
    fits[n] = (ds, slopes, study.fitted_lines(slopes))
if len(trees) > 1 and mode == "aggregate":
    per_config = study.config_slopes({n: f[1] for n, f in fits.items()}, compare.config_groups(trees),
                                     compare.group_keys(trees), band, center)
fig2 = figures.slope_figure(fits, colours=colours, per_config=per_config)
st.plotly_chart(fig2, key="gen_slope_chart")
few = [(f"{n} " if len(fits) > 1 else "") + f"N = {int(s)}" for n, (_, slopes, _) in fits.items()
       for s, k in zip(slopes["data_size"].values, slopes["n_points"].values, strict=True) if k < study.MIN_POINTS]
st.caption(f"Fit: scipy.stats.linregress of model error on KL over the checks with KL <= {kl_max:.4g} nat; "
           "error bars: ±1 standard error of the slope (about a 68 % interval for many points; with n "
           "points, multiply by Student's t with n - 2 degrees of freedom for other levels)."
           + (" Colour: the run's config; marker symbol: the probe." if len(fits) > 1 else "")
           + (" Right: per config the centre and band of its seeds' slopes at each data size (no error bars: "
              "the band is the spread over seeds)." if per_config is not None else "")
           + (f" No slope (fewer than {study.MIN_POINTS} checks that close): {', '.join(few)}." if few else ""))
slope_data = compare.stack_runs({n: study.slope_plot_data(ds, s) for n, (ds, s, _) in fits.items()})
if per_config is not None:
    slope_data = slope_data.merge(stats_to_vars(per_config.rename("config_slope").rename(data_size="config_data_size")))
export_controls(fig2, slope_data.assign_attrs(attrs), f"{stem}_local_slope", key="gen_slope")
page_export_controls(f"{stem}_generalization", key="gen_page")
