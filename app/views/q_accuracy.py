"""Study 2: critic accuracy, predicted Q vs true discounted return (MVE Fig. 5)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app.figures import q_accuracy as figures
from app.figures.style import run_colours
from app.studies import compare, training
from app.studies import q_accuracy as study
from app.widgets import runs as chooser
from app.widgets import urlstate
from app.widgets.export import export_controls, page_export_controls
from app.widgets.table import coloured_table

COLUMNS = 3

st.title("Q accuracy")
st.caption(
    "MVE (Feinberg et al. 2018) Fig. 5, after DDPG Fig. 3: at a snapshot the policy's evaluation "
    "episodes give, per visited state-action pair, the critic's prediction Q̂(s, a) and the "
    "discounted return G = Σ γ^k r observed to the episode's end. A tight cloud on the unity line "
    "is an accurate critic."
)

runs = chooser.library_or_stop(training.KIND, "training run",
                                "`python -m engine train` writes them")
with_data = {k: r for k, r in runs.items() if r.opened.tree is not None and study.available(r.opened.tree)}
if not with_data:
    st.info("None of the training runs has a critic snapshot yet. Come back later.")
    st.stop()
keys = chooser.choose_runs(with_data, key="qa_runs", label="Runs (one column each)", max_default=COLUMNS)
if not keys:
    st.info("Choose at least one run.")
    st.stop()
names = chooser.names(with_data, keys)
trees = {k: with_data[k].opened.tree for k in keys}
colours = run_colours({names[k]: key for k, key in compare.config_keys(trees).items()})

steps = sorted({int(s) for t in trees.values() for s in study.env_steps(t)})
urlstate.bind("qa_exclude", True)
c_step, c_cens = st.columns([4, 2], vertical_alignment="bottom")
if len(steps) > 1:
    urlstate.bind("qa_step", steps[-1], options=steps)
    step = c_step.select_slider("Training step (env steps)", steps, key="qa_step",
                                help="Each run shows its last snapshot at or before this step.")
else:
    step = steps[0]
    c_step.markdown(f"Training step: **{step}** (the only snapshot)")
exclude = c_cens.toggle("Exclude censored samples", key="qa_exclude")
urlstate.remember("qa_exclude", *(["qa_step"] if len(steps) > 1 else []))
st.caption(
    "Both axes are normalised the same way, per run and snapshot: subtract the mean and divide by "
    "the std of the true returns of the samples used, so the unity line stays y = x and runs with "
    "different reward scales compare. Bias = mean(Q̂' − G'), MSE = mean((Q̂' − G')²) and Pearson r "
    "are computed on these normalised values. "
    + (f"Censored samples near the cut are excluded: {study.CENSORED_REASON}" if exclude
       else f"Censored samples are included (orange). {study.CENSORED_REASON}")
)

chosen = {k: study.normalized_samples(t, study.snapshot_at(t, step), exclude_censored=exclude)
          for k, t in trees.items()}
axis_range = study.common_range([s for s in chosen.values() if s.sizes["sample"]])
rows = []
for row in range(math.ceil(len(keys) / COLUMNS)):
    cols = st.columns(COLUMNS)
    for col, k in zip(cols, keys[row * COLUMNS : (row + 1) * COLUMNS], strict=False):
        samples, tree = chosen[k], trees[k]
        a = samples.attrs
        with col:
            header = f"{names[k]} · {tree.attrs.get('algorithm', '')} · step {a['env_step']}"
            if a["n_used"] == 0:
                st.markdown(f"**{header}**")
                why = (f"all {a['n_samples']} samples are censored near the cut; turn off *Exclude censored samples* "
                       "to see them" if a["n_samples"] else "no critic sample was recorded")
                st.info(f"Nothing to plot at step {a['env_step']}: {why}.")
                continue
            stats = study.summary(samples)
            fig = figures.q_density_figure(samples, axis_range=axis_range, title=header,
                                           title_colour=colours[names[k]])
            st.plotly_chart(fig, key=f"qa_chart_{k}")
            rows.append({"run": names[k], "algorithm": tree.attrs.get("algorithm", ""), "env step": a["env_step"],
                         **study.summary_record(stats)})
            m1, m2, m3 = st.columns(3)
            for m, stat in zip((m1, m2, m3), ("bias", "mse", "corr"), strict=True):
                m.metric(study.SUMMARY_LABELS[stat], f"{float(stats.sel(stat=stat)):.3g}",
                         help=study.SUMMARY_HELP[stat])
            st.caption(
                f"{a['n_used']} of {a['n_samples']} samples used, {a['n_censored']} censored near the cut. "
                f"Normalised by mean {a['shift']:.4g} and std {a['scale']:.4g} {a['units_raw']} of the "
                "true returns" + (" (std 0: only shifted)." if a["scale_fallback"] else ".")
            )
            export_controls(fig, study.plot_data(samples, stats).assign_attrs(training.run_attrs(tree)),
                            f"{with_data[k].stem}_q_accuracy_step{a['env_step']}", key=f"qa_export_{k}")
if rows:
    st.subheader("Summary per run")
    coloured_table(pd.DataFrame(rows), colours, column="run", key="qa_table")
    st.caption("Normalised bias, MSE and Pearson r of each panel; the run's name in its colour (its config's, "
               "as on every page: seeds of one config share it).")
page_export_controls(chooser.export_stem(with_data, keys) + "_q_accuracy", key="qa_page")
