"""URL state: the selection, the user's folder and page settings come back from the query of a
shared or bookmarked link, invalid values are ignored, and changed settings are written back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from app_helpers import (
    LEARNING_PAGE, MAIN, REPO, app, assert_clean, chart_layout, chart_traces, floats, plain_tree,
)
from streamlit.testing.v1 import AppTest

DATASETS = REPO / "datasets"
MVE = "bundled:mve_ddpg_halfcheetah.zarr.zip"


def test_home_restores_selection_folder_and_filter(datasets: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(DATASETS / "gradient_error.zarr.zip", folder / "mine.zarr.zip")
    mine = f"folder:{(folder / 'mine.zarr.zip').resolve()}"
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    at.query_params.update({"run": [MVE, mine], "folder": str(folder), "lib_filter": "halfcheetah"})
    at.run()
    assert_clean(at)
    assert at.text_input(key="folder_input").value == str(folder)
    assert at.multiselect(key="lib_selection").value == [MVE, mine]  # the folder's run is found
    assert at.text_input(key="lib_filter").value == "halfcheetah"
    shown = at.dataframe[0].value
    assert sorted(shown["name"]) == ["generalization_halfcheetah.zarr.zip", "model_comparison.zarr.zip",
                                     "mve_ddpg_halfcheetah.zarr.zip", "q_accuracy_ddpg.zarr.zip",
                                     "q_accuracy_mve_oracle.zarr.zip"]  # HalfCheetah runs, by env
    assert at.query_params["run"] == [MVE, mine] and at.query_params["folder"] == str(folder)

    at.multiselect(key="lib_selection").set_value([mine]).run()  # a change is written back
    assert at.query_params["run"] == mine


def _learning_page_with(params: dict[str, str | list[str]]) -> AppTest:
    at = app()
    at.switch_page(LEARNING_PAGE)
    at.query_params.update(params)
    at.run()
    assert_clean(at)
    return at


def test_learning_page_settings_come_from_the_url_and_go_back(datasets: Path) -> None:
    at = _learning_page_with({"run": MVE, "lc_center": "iqm", "lc_band": "ci95", "lc_smooth": "3", "lc_log": "true"})
    assert at.multiselect(key="lc_runs").value == [MVE]
    assert (at.selectbox(key="lc_center").value, at.selectbox(key="lc_band").value) == ("iqm", "ci95")
    assert at.slider(key="lc_smooth").value == 3 and at.toggle(key="lc_log").value
    layout = chart_layout(at, 0)
    assert layout["yaxis"]["type"] == "log"
    assert "IQM over seeds × episodes" in layout["title"]["text"]
    assert "95 % bootstrap CI of the IQM" in layout["title"]["text"]

    at.slider(key="lc_smooth").set_value(1).run()  # written back; the IQM is the IQM
    assert at.query_params["lc_smooth"] == "1" and at.query_params["lc_band"] == "ci95"
    ev = plain_tree(DATASETS / "mve_ddpg_halfcheetah.zarr.zip")["eval"]
    returns = np.sort(ev["return"].values.astype(float), axis=1)  # (snapshot, episode)
    cut = returns.shape[1] // 4
    line = next(t for t in chart_traces(at, 0) if t.get("meta"))
    np.testing.assert_allclose(floats(line["x"]), ev["env_step"].values)
    np.testing.assert_allclose(floats(line["y"]), returns[:, cut : returns.shape[1] - cut].mean(1), rtol=1e-6)


def test_invalid_url_values_are_ignored(datasets: Path) -> None:
    at = _learning_page_with({"lc_band": "bogus", "lc_smooth": "99", "lc_log": "maybe", "lc_metric": "nope"})
    assert not at.error
    assert at.selectbox(key="lc_band").value == "std"
    assert at.slider(key="lc_smooth").value == 1
    assert not at.toggle(key="lc_log").value
    assert at.selectbox(key="lc_metric").value == "eval_return"


def test_a_link_to_an_upload_says_it_cannot_come_back(datasets: Path) -> None:
    at = _learning_page_with({"run": [MVE, "upload:" + "0" * 64]})
    assert at.multiselect(key="lc_runs").value == [MVE]
    assert any("a link cannot bring them back" in c.value for c in at.caption)


def test_model_classes_page_settings_from_the_url(datasets: Path) -> None:
    mc = plain_tree(DATASETS / "model_comparison.zarr.zip")["model_comparison"]
    first = int(mc["stage"][0])
    at = app()
    at.switch_page("views/model_comparison.py")
    at.query_params.update({"mc_stage": str(first), "mc_log": "false", "run": "bundled:model_comparison.zarr.zip"})
    at.run()
    assert_clean(at)
    assert at.select_slider(key="mc_stage").value == first
    assert chart_layout(at, 0)["yaxis"].get("type", "linear") == "linear"
    assert json.loads(json.dumps(at.query_params))["mc_stage"] == str(first)
