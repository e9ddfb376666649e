"""fsspec URLs (read-only, no network: fsspec's in-memory and local filesystems) and lazy,
chunk-aligned dask reads of big variables."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import dask.array as da
import fsspec
import numpy as np
import pytest
import xarray as xr
import zarr

import storekit
from engine.record import StoreError, open_run, pack, reader, zarrio

ROWS = [5000, 5000, 3000]  # 13000 replay steps: on-disk chunks of 4096 -> 4 chunks, the last partial


def _put(local: Path) -> tuple[str, fsspec.AbstractFileSystem]:
    """Copy a store (folder or zip) into fsspec's memory filesystem; its memory:// URL."""
    fs = fsspec.filesystem("memory")
    target = f"/{uuid.uuid4().hex}/{local.name}"
    fs.put(str(local), target, recursive=local.is_dir())
    return f"memory:/{target}", fs


def _snapshot(fs: fsspec.AbstractFileSystem, url: str) -> dict[str, bytes]:
    root = url.removeprefix("memory:/")
    return {p: fs.cat_file(p) for p in fs.find(root)}


def _same_tree(a: xr.DataTree, b: xr.DataTree) -> None:
    assert a.attrs == b.attrs and set(a.children) == set(b.children)
    for name in a.children:
        xr.testing.assert_identical(a[name].to_dataset().load(), b[name].to_dataset().load())


@pytest.fixture(scope="module")
def big_training(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fsspec") / "train.zarr"
    storekit.write_training(path, ROWS)
    return path


def test_memory_and_file_urls_read_what_the_path_reads(big_training, tmp_path):
    local = open_run(big_training)
    url, fs = _put(big_training)
    before = _snapshot(fs, url)
    _same_tree(open_run(url), local)
    assert zarrio.open_root(url).store.read_only
    assert _snapshot(fs, url) == before  # nothing written, not even a lock or a timestamp
    _same_tree(open_run(big_training.resolve().as_uri()), local)  # file://
    zip_url, _ = _put(pack(big_training, tmp_path / "train.zarr.zip"))
    _same_tree(open_run(zip_url), local)


@pytest.mark.parametrize(("url", "message"), [
    ("memory://nowhere/run.zarr", "does not exist"),
    ("nosuchprotocol://bucket/run.zarr", "Cannot open"),
])
def test_bad_urls_get_a_message(url, message):
    with pytest.raises(StoreError, match=message):
        open_run(url)


def test_a_url_to_a_folder_that_is_no_store_is_refused(big_training):
    url, _ = _put(big_training / "replay" / "obs" / "c")
    with pytest.raises(StoreError, match="not a Zarr store"):
        open_run(url)


def test_big_variables_are_dask_arrays_in_whole_disk_chunks(big_training, monkeypatch):
    monkeypatch.setattr(reader, "DASK_MIN_BYTES", 1000)  # replay variables (>= 13 kB) are big, eval's are not
    monkeypatch.setattr(reader, "DASK_CHUNK_BYTES", 2 * 4096 * storekit.OBS * 4)  # two disk chunks of obs
    tree = open_run(big_training)
    obs = tree["replay"]["obs"].data
    assert isinstance(obs, da.Array)
    assert obs.chunks == ((8192, 4808), (storekit.OBS,))
    assert tree["replay"]["action"].data.chunks == ((13000,), (storekit.ACT,))  # 5 disk chunks fit: all of it
    expected = storekit.replay_rows(0, sum(ROWS))
    np.testing.assert_array_equal(tree["replay"]["obs"].values, expected["obs"])
    np.testing.assert_array_equal(tree["replay"]["reward"].sum().values, expected["reward"].sum(dtype=np.float32))
    assert tree["eval"]["env_step"].isel(snapshot=-1).item() == 1000 * (len(ROWS) - 1)  # small variables keep numpy's API


def test_a_slice_reads_only_its_chunks(big_training, tmp_path, monkeypatch):
    """Corrupt the on-disk chunks a slice does not need: the slice still reads, the whole cannot."""
    monkeypatch.setattr(reader, "DASK_MIN_BYTES", 0)
    monkeypatch.setattr(reader, "DASK_CHUNK_BYTES", 1)  # one dask chunk per disk chunk
    url, fs = _put(big_training)
    root = url.removeprefix("memory:/")
    for i in (2, 3):
        fs.pipe_file(f"{root}/replay/obs/c/{i}/0", b"not a compressed chunk")
    replay = open_run(url, check_values=False)["replay"]
    expected = storekit.replay_rows(0, sum(ROWS))["obs"]
    np.testing.assert_array_equal(replay["obs"].isel(step=slice(100, 8192)).values, expected[100:8192])
    np.testing.assert_array_equal(replay["obs"][:5000].sum("step", dtype="float64").values,
                                  expected[:5000].sum(0, dtype=np.float64))
    with pytest.raises(StoreError, match="replay/obs"):
        replay["obs"].values


def test_nan_where_forbidden_is_refused_at_opening_or_when_its_big_chunk_is_read(big_training, tmp_path, monkeypatch):
    bad = tmp_path / "bad.zarr"
    shutil.copytree(big_training, bad)
    zarr.open_array(str(bad / "replay" / "reward"), mode="r+")[5000] = np.nan  # in the second disk chunk
    with pytest.raises(StoreError, match="replay/reward"):  # small: read whole at opening
        open_run(bad)
    monkeypatch.setattr(reader, "DASK_MIN_BYTES", 1000)  # now big: dask, checked as read
    monkeypatch.setattr(reader, "DASK_CHUNK_BYTES", 1)
    replay = open_run(bad)["replay"]
    assert float(replay["reward"][:4096].sum()) == pytest.approx(storekit.replay_rows(0, 4096)["reward"].sum())
    with pytest.raises(StoreError, match="replay/reward holds 1 NaN"):
        replay["reward"].values
    assert np.isnan(open_run(bad, check_values=False)["replay"]["reward"].values[5000])
