"""The runs library: a table of runs with identity, status, progress and config keys, seeds
grouped by config, filters, and the selection that every study page then shows."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from app_helpers import LEARNING_PAGE, MODEL_ERROR_PAGE, app, assert_clean, chart_traces, plain_tree

from app.library import DATASETS_ENV, RunEntry, filter_table, library_table, open_store, varying_config_columns
from engine.record import RunWriter


def _entries(folder: Path) -> list[RunEntry]:
    return [RunEntry(f"bundled:{p.name}", p.name, "bundled", open_store(p), p)
            for p in sorted(folder.iterdir()) if p.name.endswith((".zarr", ".zarr.zip"))]


def _without_seeds(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_seeds(v) for k, v in value.items() if k != "seed"}
    return [_without_seeds(v) for v in value] if isinstance(value, list) else value


def test_table_groups_seeds_by_config(training_stores: Path) -> None:
    table = library_table(_entries(training_stores)).set_index("name")
    assert sorted(table.index) == ["ddpg.zarr.zip", "sac_s0.zarr", "sac_s1.zarr"]
    configs = {n: json.loads(plain_tree(training_stores / n).attrs["config"]) for n in table.index}
    for n, row in table.iterrows():
        tree = plain_tree(training_stores / n)
        assert (row["status"], row["kind"], row["env"], row["seed"]) == (
            "complete", "training", "InvertedPendulum-v5", configs[n]["seed"])
        assert row["steps"] == int(tree["eval"]["env_step"].values.max()) == 300
        assert row["commits"] == tree.attrs["commit"]
        assert row["config.agent.hidden"] == configs[n]["agent"]["hidden"]
        same = [m for m in table.index if _without_seeds(configs[m]) == _without_seeds(configs[n])]
        assert row["group size"] == len(same)
        assert set(table.loc[same, "config group"]) == {row["config group"]}
    assert table.loc["sac_s0.zarr", "config group"] == table.loc["sac_s1.zarr", "config group"]
    assert table.loc["ddpg.zarr.zip", "config group"] != table.loc["sac_s0.zarr", "config group"]
    assert table.loc["sac_s0.zarr", "config group"].startswith("sac · InvertedPendulum-v5 · ")
    varying = varying_config_columns(table)
    assert {"config.seed", "config.algo"} <= set(varying) and "config.agent.hidden" not in varying


def test_filter_by_text_and_columns(training_stores: Path) -> None:
    table = library_table(_entries(training_stores))
    assert list(filter_table(table, "SAC pendulum")["name"]) == ["sac_s0.zarr", "sac_s1.zarr"]
    assert list(filter_table(table, "sac s1")["name"]) == ["sac_s1.zarr"]
    assert list(filter_table(table, "", {"algorithm": ["ddpg"]})["name"]) == ["ddpg.zarr.zip"]
    assert list(filter_table(table, "sac", {"algorithm": ["ddpg"]})["name"]) == []
    assert len(filter_table(table, "", {"algorithm": []})) == 3


def test_a_store_being_written_is_listed_as_running(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    w = RunWriter.create(tmp_path / "now.zarr", kind="training", env_id="Hopper-v5", algorithm="sac", seed=3,
                         config={"algo": "sac", "env_id": "Hopper-v5", "seed": 3, "horizon": 5})
    try:
        w.add_group("eval", coords={"episode": np.arange(2)})
        w.append("eval", snapshot=[0], env_step=[700], length=[[10, 10]], **{"return": [[1.0, 2.0]]})
        w.commit()
        at = app()
        assert_clean(at)
        row = at.dataframe[0].value.iloc[0]
        assert (row["status"], row["seed"], row["horizon"], row["steps"]) == ("running", 3, 5, 700)
    finally:
        w.close(status="failed")
    at.run()
    assert at.dataframe[0].value.iloc[0]["status"] == "failed"


_KILLED_WRITER = """
import sys, time
from engine.record import RunWriter
w = RunWriter.create(sys.argv[1], kind="training", env_id="Hopper-v5", algorithm="sac", seed=1,
                     config={"algo": "sac", "env_id": "Hopper-v5", "seed": 1})
w.commit()
print("committed", flush=True)
time.sleep(120)
"""


def test_a_store_whose_writer_was_killed_is_listed_as_interrupted(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A SIGKILLed writer cannot mark its store; the library must not call it `running` (nor
    offer its live view) just because the store says so. Resuming makes it `running` again."""
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    store = tmp_path / "killed.zarr"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(store)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "committed"
        assert _entries(tmp_path)[0].status == "running"  # its writer is alive
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)  # reaped: a zombie would still count as alive
    at = app()
    assert_clean(at)
    assert at.dataframe[0].value.iloc[0]["status"] == "interrupted"
    w = RunWriter.resume(store)
    try:
        assert _entries(tmp_path)[0].status == "running"
    finally:
        w.close(status="failed")
    assert _entries(tmp_path)[0].status == "failed"


def test_selection_on_home_drives_the_study_pages(training_datasets: Path) -> None:
    at = app()
    colour = dict(zip(at.dataframe[0].value["name"], at.dataframe[0].value["colour"], strict=True))
    at.text_input(key="lib_filter").set_value("sac").run()
    assert list(at.dataframe[0].value["name"]) == ["sac_s0.zarr", "sac_s1.zarr"]
    at.button(key="lib_select_shown").click().run()
    assert at.multiselect(key="lib_selection").value == ["bundled:sac_s0.zarr", "bundled:sac_s1.zarr"]
    at.multiselect(key="lib_selection").set_value(["bundled:sac_s1.zarr", "bundled:ddpg.zarr.zip"]).run()
    at.switch_page(LEARNING_PAGE).run()
    assert_clean(at)
    assert at.multiselect(key="lc_runs").value == ["bundled:sac_s1.zarr", "bundled:ddpg.zarr.zip"]
    lines = {t["name"].split(" (")[0]: t["line"]["color"] for t in chart_traces(at, 0) if t.get("meta")}
    assert lines == {"sac · InvertedPendulum-v5": colour["sac_s1.zarr"],  # the library's group colours
                     "ddpg · InvertedPendulum-v5": colour["ddpg.zarr.zip"]}
    at.multiselect(key="lc_runs").set_value(["bundled:ddpg.zarr.zip"]).run()  # the page changes it
    at.switch_page(MODEL_ERROR_PAGE).run()
    assert_clean(at)
    assert at.multiselect(key="me_runs").value == ["bundled:ddpg.zarr.zip"]  # the selection
    at.switch_page("views/home.py").run()
    assert at.multiselect(key="lib_selection").value == ["bundled:ddpg.zarr.zip"]
    at.button(key="lib_clear").click().run()
    assert at.multiselect(key="lib_selection").value == []
