"""Every study page on the bundled stores (the app a fresh clone opens): it renders its figures
with no exception, and what it draws by default comes from the bundled store of its kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from app_helpers import MAIN, REPO, assert_clean, by_meta, chart_layout, chart_traces, floats, page, plain_tree
from streamlit.testing.v1 import AppTest

DATASETS = REPO / "datasets"


@pytest.mark.parametrize(("view", "charts"), [
    # Q accuracy: one chart per run it selects by default, the first three training runs with a
    # critic group (mve_ddpg_halfcheetah and the Study 2 pair q_accuracy_ddpg, q_accuracy_mve_oracle);
    # rollout viewer: the first run with stored predictions (gallery_mbpo_s0)
    ("views/learning_curves.py", 1), ("views/model_error.py", 2), ("views/rollout.py", 1), ("views/q_accuracy.py", 3),
    ("views/model_comparison.py", 2), ("views/generalization.py", 2), ("views/gradient_error.py", 2),
    ("views/buffer.py", 2),
])
def test_page_renders_on_the_bundled_stores(datasets: Path, view: str, charts: int) -> None:
    at = page(view)
    assert_clean(at)
    assert not at.error
    assert len(at.get("plotly_chart")) == charts


def test_model_classes_page_draws_the_bundled_store(datasets: Path) -> None:
    mc = plain_tree(DATASETS / "model_comparison.zarr.zip")["model_comparison"]
    at = page("views/model_comparison.py")
    last = int(mc.stage[-1])
    for model in mc.model.values:  # every class, every split: the bundled store has them all
        for split in mc.split.values:
            line = by_meta(chart_traces(at, 0), f"{model}/{split}")
            np.testing.assert_allclose(floats(line["y"]), mc["mse"].sel(model=model, split=split, stage=last).values,
                                       rtol=1e-6)


def test_q_page_shows_the_study_2_pair_side_by_side(datasets: Path) -> None:
    """MVE Fig. 5's two bundled runs (DDPG, MVE-DDPG with the oracle) each get a panel by default,
    at their last snapshot, with the page's normalised MSE under it."""
    from app.studies import q_accuracy as qa

    at = page("views/q_accuracy.py")
    assert_clean(at)
    titles = [chart_layout(at, i)["title"]["text"] for i in range(len(at.get("plotly_chart")))]
    mse_shown = [m.value for m in at.metric if m.label == "MSE"]
    for name, algo in (("q_accuracy_ddpg", "ddpg"), ("q_accuracy_mve_oracle", "mve-ddpg")):
        tree = plain_tree(DATASETS / f"{name}.zarr.zip")
        last = int(tree["critic"]["env_step"].values[-1])
        panel = [i for i, t in enumerate(titles) if name in t and f"· {algo} ·" in t and f"step {last}" in t]
        assert len(panel) == 1, titles
        mse = float(qa.summary(qa.normalized_samples(tree, len(tree["critic"]["env_step"]) - 1)).sel(stat="mse"))
        assert mse_shown[panel[0]] == f"{mse:.3g}"


def test_q_page_keeps_censored_samples_far_from_the_cut(datasets: Path) -> None:
    """HalfCheetah never terminates: every evaluation episode is cut at 1000 steps, so every
    sample is censored. Those whose missing tail weighs gamma^(L - t) <= 1 % are used."""
    import json

    tree = plain_tree(DATASETS / "mve_ddpg_halfcheetah.zarr.zip")
    c = tree["critic"].isel(snapshot=-1)
    lengths = tree["eval"]["length"].isel(snapshot=-1).values
    gamma = json.loads(tree.attrs["config"])["agent"]["gamma"]
    ep, t = c["episode"].values, c["t"].values
    real = ep >= 0
    assert c["censored"].values[real].all()
    exact_enough = real & (gamma ** (lengths[np.maximum(ep, 0)] - t) <= 0.01)
    assert 0 < exact_enough.sum() < real.sum()
    at = page("views/q_accuracy.py")
    assert_clean(at)
    assert any(c.value.startswith(f"{exact_enough.sum()} of {real.sum()} samples used") for c in at.caption)
    g = c["return_true"].values.astype(float)[exact_enough]
    q = c["q_pred"].values.astype(float)[exact_enough]
    points = next(t for t in chart_traces(at, 0) if len(floats(t.get("x", [])).ravel()) == exact_enough.sum())
    np.testing.assert_allclose(np.sort(floats(points["x"])), np.sort((g - g.mean()) / g.std()), rtol=1e-5)
    np.testing.assert_allclose(np.sort(floats(points["y"])), np.sort((q - g.mean()) / g.std()), rtol=1e-5)


# bundled training runs (mve_ddpg_halfcheetah and the Study 2 pair): the multi-run pages show
# every selected one, so the Q accuracy page draws one chart per copy of each
TRAINING = sorted(p.name for p in DATASETS.glob("*.zarr.zip") if plain_tree(p).attrs.get("kind") == "training")
WITH_MODEL_ERROR = [n for n in TRAINING if "model_error" in plain_tree(DATASETS / n).children]
FITTED = [n for n in WITH_MODEL_ERROR if (plain_tree(DATASETS / n)["model_error"]["model_fit_step"] > 0).any()]
"""Runs with a model-error group (offered on that page), and those with a fitted model (drawn)."""
# the rollout viewer: the headline training runs predate stored predictions, so it shows its note
VIEWS = {"views/learning_curves.py": 1, "views/model_error.py": 2, "views/rollout.py": 0,
         "views/q_accuracy.py": 2 * len(TRAINING),
         "views/model_comparison.py": 2, "views/generalization.py": 2, "views/gradient_error.py": 2, "views/buffer.py": 2}
MULTI = {"views/learning_curves.py": ("lc_runs", 2 * len(TRAINING)), "views/q_accuracy.py": ("qa_runs", 2 * len(TRAINING)),
         "views/model_error.py": ("me_runs", 2 * len(WITH_MODEL_ERROR)), "views/model_comparison.py": ("mc_runs", 2),
         "views/generalization.py": ("gen_runs", 2), "views/gradient_error.py": ("ge_runs", 2)}
SINGLE = {"views/rollout.py": "ro_run", "views/buffer.py": "buf_run"}
FACETS = {"views/model_comparison.py": "model_comparison", "views/generalization.py": "generalization_halfcheetah"}


@pytest.fixture
def bundled_twice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A bundled folder holding every bundled store twice (as itself and as `copy_NAME`): two
    runs of every kind. Returns every run key, copies first."""
    from app.library import DATASETS_ENV

    folder = tmp_path / "twice"
    folder.mkdir()
    keys = []
    for store in sorted(DATASETS.glob("*.zarr.zip")):
        for name in (f"copy_{store.name}", store.name):
            (folder / name).symlink_to(store)
        keys += [f"bundled:copy_{store.name}", f"bundled:{store.name}"]
    monkeypatch.setenv(DATASETS_ENV, str(folder))
    return keys


@pytest.mark.parametrize(("view", "charts"), list(VIEWS.items()))
def test_page_renders_with_two_runs_of_its_kind_selected(bundled_twice: list[str], view: str, charts: int) -> None:
    """Every bundled run selected through the URL (two of each kind): multi-run pages draw
    every one (a facet, a panel or a line each), the buffer page the first selected and can
    switch to the second."""
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.query_params["run"] = bundled_twice
    at.run()
    assert_clean(at)
    assert at.multiselect(key="lib_selection").value == bundled_twice
    at.switch_page(view).run()
    assert_clean(at)
    assert not at.error
    assert len(at.get("plotly_chart")) == charts
    if view in SINGLE:
        box = at.selectbox(key=SINGLE[view])
        assert box.value.startswith("bundled:copy_")  # the first selected of its kind
        box.set_value(box.value.replace("bundled:copy_", "bundled:")).run()
        assert_clean(at)
        assert len(at.get("plotly_chart")) == charts
    else:
        key, n = MULTI[view]
        assert len(at.multiselect(key=key).value) == n
    if view == "views/rollout.py":  # no headline store has predictions: the note says what is missing
        assert any("model_error/prediction" in i.value for i in at.info)
        return
    traces = chart_traces(at, 0)
    names = [t["name"] for t in traces if t.get("showlegend", True) is not False]
    if view == "views/learning_curves.py":  # the two copies of each run: one config, two "seeds"
        assert len(names) == len(TRAINING) and all(n.endswith("(mean of 2 seeds: 0, 0)") for n in names), names
    if view == "views/model_error.py":  # each config's two copies pooled: twice the starts of one
        assert len({t["meta"].split("/")[0] for t in traces if t.get("meta")}) == len(FITTED)
        assert len(chart_traces(at, 1)) >= 2 * 2 * len(FITTED)  # heatmap: run x split facets
    if view == "views/gradient_error.py":  # the copies' seeds pooled: twice the store's seeds
        assert "mean over 20 seeds" in chart_layout(at, 0)["title"]["text"]
    if view in FACETS:  # one facet per run, named by the run
        assert {t["meta"].split("/")[0] for t in traces if t.get("meta")} == {FACETS[view], f"copy_{FACETS[view]}"}


def test_gallery_seeds_aggregate_per_preset(datasets: Path) -> None:
    """The bundled algorithm gallery (datasets/gallery/, every preset with two seeds): selected
    through the URL, the learning-curves page draws one mean-of-two-seeds curve per preset, and
    the model-error page opens each preset's run without an exception."""
    from engine.bundles import GALLERY_ALGOS, RECIPES

    manifest = json.loads((DATASETS / "manifest.json").read_text())
    keys = [f"bundled:{entry['path']}" for name, entry in manifest.items() if RECIPES[name].folder]
    assert len(keys) == 2 * len(GALLERY_ALGOS)
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.query_params["run"] = keys
    at.run()
    assert_clean(at)
    at.switch_page("views/learning_curves.py").run()
    assert_clean(at)
    names = [t["name"] for t in chart_traces(at, 0) if t.get("showlegend", True) is not False]
    assert sorted(names) == sorted(f"{algo} · InvertedPendulum-v5 (mean of 2 seeds: 0, 1)" for algo in GALLERY_ALGOS)
    at.switch_page("views/model_error.py").run()
    assert_clean(at)
    with_model = [k for k in keys if "model_error" in plain_tree(DATASETS / k.split(":", 1)[1]).children]
    assert at.multiselect(key="me_runs").value == with_model  # every selected run with a model
    for key in with_model[::2]:  # each preset's run alone
        at.multiselect(key="me_runs").set_value([key]).run()
        assert_clean(at)
