"""Replay-buffer browser: episodes, histograms by data age and transition pages, against plain
xarray + pandas/numpy on the bundled HalfCheetah training store (15000 steps, chunks of 4096);
a page read fetches only the chunks holding its rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from app_helpers import REPO, assert_clean, chart_traces, page, plotly_array

from app.studies import buffer as study
from engine.record import open_run

STORE = REPO / "datasets" / "mve_ddpg_halfcheetah.zarr.zip"
BUFFER_PAGE = "views/buffer.py"
ROWS = 1000  # blocks smaller than the chunks and not aligned with them: episodes span blocks


@pytest.fixture(scope="module")
def tree():  # noqa: ANN201
    if not STORE.is_file():
        pytest.fail(f"the bundled store {STORE.relative_to(REPO)} is missing")
    return open_run(STORE)


@pytest.fixture(scope="module")
def plain() -> pd.DataFrame:
    """The replay group read whole with plain zarr + xarray (not through engine.record)."""
    import xarray as xr

    ds = xr.open_datatree(zarr.storage.ZipStore(STORE, mode="r"), engine="zarr")["replay"].to_dataset()
    return ds.load()


def test_episodes_equal_a_pandas_groupby(tree, plain) -> None:  # noqa: ANN001
    got = study.episodes(tree, rows=ROWS)
    df = plain[["episode", "reward", "terminated", "truncated"]].to_dataframe()
    want = df.groupby("episode").agg(ret=("reward", "sum"), n=("reward", "size"),
                                    term=("terminated", "any"), trunc=("truncated", "any"))
    assert list(got["episode"]) == list(want.index)
    np.testing.assert_allclose(got["return"], want["ret"], rtol=1e-5)
    assert list(got["length"]) == list(want["n"])
    ends = np.where(want["term"], "terminated", np.where(want["trunc"], "time limit", "open"))
    assert list(got["end"]) == list(ends)
    assert set(got["end"]) == {"time limit"}  # HalfCheetah never terminates; 15 cut episodes
    assert got["length"].sum() == plain.sizes["step"]


@pytest.mark.parametrize("var", ["obs", "action"])
def test_histograms_equal_numpy_per_age_group(tree, plain, var: str) -> None:  # noqa: ANN001
    hist = study.histograms(tree, var, bins=17, age_groups=4, rows=ROWS)
    x = plain[var].values
    pv = plain["policy_version"].values
    assert int(hist["count"].sum()) == x.size
    assert int(hist["version_first"][0]) == pv.min() and int(hist["version_last"][-1]) == pv.max()
    for age in range(hist.sizes["age"]):
        rows = (pv >= int(hist["version_first"][age])) & (pv <= int(hist["version_last"][age]))
        for j in range(x.shape[1]):
            edges = np.append(hist["bin_left"].values[j], hist["bin_right"].values[j, -1])
            counts, _ = np.histogram(x[rows, j], bins=edges)
            np.testing.assert_array_equal(hist["count"].values[j, age], counts)


def test_age_groups_are_consecutive_versions() -> None:
    assert list(study._age_groups(0, 5, 4)) == [0, 1, 3, 4]  # 6 versions in 4 groups
    assert list(study._age_groups(2, 3, 4)) == [2, 3]  # fewer versions than groups


@pytest.fixture
def chunk_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key read from a zip store from now on."""
    keys: list[str] = []
    original = zarr.storage.ZipStore.get

    async def counting(self, key, prototype, byte_range=None):  # noqa: ANN001, ANN202
        keys.append(key)
        return await original(self, key, prototype, byte_range)

    monkeypatch.setattr(zarr.storage.ZipStore, "get", counting)
    return keys


@pytest.mark.parametrize(("page_no", "size", "chunks"), [(200, 25, {1}), (163, 25, {0, 1}), (0, 100, {0})])
def test_a_page_reads_only_the_chunks_of_its_rows(
    tree, plain, chunk_reads: list[str], page_no: int, size: int, chunks: set[int],  # noqa: ANN001
) -> None:
    table = study.transition_page(tree, page_no, size)
    lo = page_no * size
    assert list(table["step"]) == list(range(lo, lo + size))
    np.testing.assert_array_equal(table["obs[3]"], plain["obs"].values[lo : lo + size, 3])
    np.testing.assert_array_equal(table["action[5]"], plain["action"].values[lo : lo + size, 5])
    np.testing.assert_array_equal(table["reward"], plain["reward"].values[lo : lo + size])
    data = [k for k in chunk_reads if "/c/" in k]
    assert data, "nothing was read"
    # replay/<var>/c/<step chunk>/...: only the chunks of steps lo..lo+size-1 (4096 per chunk)
    assert {int(k.split("/c/")[1].split("/")[0]) for k in data} == chunks
    assert all(k.startswith("replay/") for k in data)
    assert not tree["replay"]["obs"].variable._in_memory  # the tree still holds no data


def test_last_page_is_short_and_bad_pages_are_refused(tree) -> None:  # noqa: ANN001
    n = study.n_steps(tree)
    last = study.page_count(tree, 400) - 1
    assert len(study.transition_page(tree, last, 400)) == n - last * 400
    with pytest.raises(ValueError, match="outside"):
        study.transition_page(tree, last + 1, 400)


@pytest.fixture
def halfcheetah_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    from app.library import DATASETS_ENV

    (tmp_path / STORE.name).symlink_to(STORE)
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    return tmp_path


def test_buffer_page(halfcheetah_only: Path, tree) -> None:  # noqa: ANN001
    at = page(BUFFER_PAGE)
    assert_clean(at)
    episodes, transitions = at.dataframe[0].value, at.dataframe[1].value
    pd.testing.assert_frame_equal(episodes.reset_index(drop=True), study.episodes(tree), check_dtype=False)
    assert list(transitions["step"]) == list(range(25))
    # the histogram's bars of obs[0] sum to the number of transitions
    bars = [t for t in chart_traces(at, 1) if t.get("meta", "").startswith("0:")]
    assert sum(plotly_array(t["y"]).sum() for t in bars) == study.n_steps(tree)
    # change controls: another page of 100 rows, the action variable
    at.selectbox(key="buf_page_size").set_value(100).run()
    at.number_input(key="buf_page_100").set_value(51).run()
    at.radio(key="buf_var").set_value("action").run()
    assert_clean(at)
    assert list(at.dataframe[1].value["step"]) == list(range(5000, 5100))
    assert len([t for t in chart_traces(at, 1) if t.get("meta", "").startswith("0:")]) == 4


def test_buffer_page_without_training_runs(gradient_only: Path) -> None:
    at = page(BUFFER_PAGE)
    assert_clean(at)
    assert at.info and "No training run" in at.info[0].value
