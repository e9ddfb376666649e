"""fsspec URLs (read-only, no network: fsspec's in-memory and local filesystems), lazy reads of
big variables (xarray's lazy arrays by default, no dask imported), and chunk-aligned dask reads
with `chunked=True`."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def test_opening_imports_no_dask_and_reads_no_big_variable(big_training, monkeypatch):
    code = ("import sys; from engine.record import open_run, reader; reader.BIG_BYTES = 1000; "
            f"t = open_run({str(big_training)!r}); o = t['replay']['obs'][:3].values; "
            "import xarray as xr; d = t['eval'].to_dataset(); d = (d['return'].mean('episode') * 2).to_dataframe(); "
            "print(any(m.split('.')[0] == 'dask' for m in sys.modules), o.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "(3,", f"{storekit.OBS})"]  # xarray's checks for dask arrays did not import it
    monkeypatch.setattr(reader, "BIG_BYTES", 1000)  # replay variables (>= 13 kB) are big, eval's are not
    reads: list[tuple] = []
    original = reader._PrefixArray._getitem
    monkeypatch.setattr(reader._PrefixArray, "_getitem", lambda self, key: reads.append((self.where, key)) or original(self, key))
    tree = open_run(big_training)
    assert not [w for w, _ in reads if w in ("replay/obs", "replay/reward")]  # big: not read at opening
    expected = storekit.replay_rows(0, sum(ROWS))
    np.testing.assert_array_equal(tree["replay"]["obs"].isel(step=slice(4000, 4100)).values, expected["obs"][4000:4100])
    assert [k[0] for w, k in reads if w == "replay/obs"] == [slice(4000, 4100, 1)]  # only the rows asked for


def test_chunked_big_variables_are_dask_arrays_in_whole_disk_chunks(big_training, monkeypatch):
    monkeypatch.setattr(reader, "BIG_BYTES", 1000)  # replay variables (>= 13 kB) are big, eval's are not
    monkeypatch.setattr(reader, "DASK_CHUNK_BYTES", 2 * 4096 * storekit.OBS * 4)  # two disk chunks of obs
    tree = open_run(big_training, chunked=True)
    obs = tree["replay"]["obs"].data
    assert isinstance(obs, da.Array) and "dask.array<" in repr(tree["replay"]["obs"])  # xarray knows it is dask
    assert obs.chunks == ((8192, 4808), (storekit.OBS,))
    assert tree["replay"]["action"].data.chunks == ((13000,), (storekit.ACT,))  # 5 disk chunks fit: all of it
    expected = storekit.replay_rows(0, sum(ROWS))
    np.testing.assert_array_equal(tree["replay"]["obs"].values, expected["obs"])
    np.testing.assert_array_equal(tree["replay"]["reward"].sum().values, expected["reward"].sum(dtype=np.float32))
    assert tree["eval"]["env_step"].isel(snapshot=-1).item() == 1000 * (len(ROWS) - 1)  # small variables keep numpy's API
    assert not isinstance(open_run(big_training)["replay"]["obs"].data, da.Array)  # not chunked: no dask


@pytest.mark.parametrize("chunked", [False, True])
def test_a_slice_reads_only_its_chunks(big_training, tmp_path, monkeypatch, chunked):
    """Corrupt the on-disk chunks a slice does not need: the slice still reads, the whole cannot."""
    monkeypatch.setattr(reader, "BIG_BYTES", 0)
    monkeypatch.setattr(reader, "DASK_CHUNK_BYTES", 1)  # one dask chunk per disk chunk
    url, fs = _put(big_training)
    root = url.removeprefix("memory:/")
    for i in (2, 3):
        fs.pipe_file(f"{root}/replay/obs/c/{i}/0", b"not a compressed chunk")
    replay = open_run(url, check_values=False, chunked=chunked)["replay"]
    expected = storekit.replay_rows(0, sum(ROWS))["obs"]
    np.testing.assert_array_equal(replay["obs"].isel(step=slice(100, 8192)).values, expected[100:8192])
    np.testing.assert_array_equal(replay["obs"][:5000].sum("step", dtype="float64").values,
                                  expected[:5000].sum(0, dtype=np.float64))
    with pytest.raises(StoreError, match="replay/obs"):
        replay["obs"].values


@pytest.mark.parametrize("chunked", [False, True])
def test_nan_where_forbidden_is_refused_at_opening_or_when_its_big_chunk_is_read(big_training, tmp_path, monkeypatch,
                                                                                 chunked):
    bad = tmp_path / "bad.zarr"
    shutil.copytree(big_training, bad)
    zarr.open_array(str(bad / "replay" / "reward"), mode="r+")[5000] = np.nan  # in the second disk chunk
    with pytest.raises(StoreError, match="replay/reward"):  # small: read whole at opening
        open_run(bad, chunked=chunked)
    monkeypatch.setattr(reader, "BIG_BYTES", 1000)  # now big: checked as read
    monkeypatch.setattr(reader, "DASK_CHUNK_BYTES", 1)
    replay = open_run(bad, chunked=chunked)["replay"]
    assert float(replay["reward"][:4096].sum()) == pytest.approx(storekit.replay_rows(0, 4096)["reward"].sum())
    with pytest.raises(StoreError, match="replay/reward holds 1 NaN"):
        replay["reward"].values
    assert np.isnan(open_run(bad, check_values=False, chunked=chunked)["replay"]["reward"].values[5000])
