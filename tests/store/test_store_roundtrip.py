"""Round trips: what RunWriter writes, open_run and plain xarray read back exactly."""

from __future__ import annotations

import gc
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storekit
from engine.record import RunWriter, open_run, pack, summarize
from engine.record.schema import GROUPS, all_vars


def _plain(source: Path) -> xr.DataTree:
    """Plain xarray open (directory or zip), failing on any warning, fully loaded."""
    gc.collect()  # let finalizers of earlier tests run now, not inside the block below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if source.suffix == ".zip":
            store = zarr.storage.ZipStore(source, mode="r")
            tree = xr.open_datatree(store, engine="zarr").load()
            store.close()
        else:
            tree = xr.open_datatree(source, engine="zarr").load()
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    return tree


def _assert_group(tree: xr.DataTree, group: str, expected: dict[str, np.ndarray]) -> None:
    ds = tree[group].to_dataset()
    spec = GROUPS.get(group)
    for name, values in expected.items():
        var = ds[name]
        np.testing.assert_array_equal(var.values, values, err_msg=f"{group}/{name}")
        if spec is not None and name in all_vars(spec):
            want = all_vars(spec)[name]
            assert var.dims == want.dims, name
            assert var.attrs["units"] == want.units, name
            assert var.attrs["long_name"] == want.long_name, name
    for dim in ds.dims:
        assert dim in ds.coords, f"{group}: dim {dim!r} has no coordinate"


def _expected_training(batches: list[int]) -> dict[str, dict[str, np.ndarray]]:
    n, k = sum(batches), len(batches)
    replay = storekit.replay_rows(0, n)
    replay["obs_scale"] = np.linspace(1, 2, storekit.OBS)
    return {
        "replay": replay,
        "train": storekit.train_rows(0, k),
        "eval": storekit.eval_rows(0, k),
    }


def test_training_store_round_trips_through_every_source(training_store: Path, tmp_path: Path) -> None:
    expected = _expected_training([7, 1, 30, 12])
    zip_path = pack(training_store, tmp_path / "train.zarr.zip")
    sources = {
        "dir": training_store,
        "zip path": zip_path,
        "zip bytes": zip_path.read_bytes(),
        "zip file object": io.BytesIO(zip_path.read_bytes()),
    }
    trees = {name: open_run(src) for name, src in sources.items()}
    trees["plain dir"] = _plain(training_store)
    trees["plain zip"] = _plain(zip_path)
    reference = trees["dir"]
    assert reference.attrs["status"] == "complete"
    assert reference.attrs["committed"] == {"replay": 50, "eval": 4, "train": 4}
    assert reference["train"]["loss"].attrs == {"units": "1", "long_name": "critic loss"}
    for name, tree in trees.items():
        for group, values in expected.items():
            _assert_group(tree, group, values)
        for group in expected:
            xr.testing.assert_identical(tree[group].to_dataset(), reference[group].to_dataset())
        assert tree.attrs == reference.attrs, name


def test_gradient_store_round_trips(gradient_store: Path, tmp_path: Path) -> None:
    expected = {**storekit.grad_rows(0, 3), **storekit.GRAD_COORDS}
    zip_path = pack(gradient_store, tmp_path / "g.zarr.zip")
    for tree in (open_run(gradient_store), open_run(zip_path), _plain(gradient_store), _plain(zip_path)):
        _assert_group(tree, "gradient_error", expected)
        assert tree.attrs["run_id"] == "grad-run"
    # open_run hands out fixed-width unicode (plain xarray gives numpy's StringDType)
    assert open_run(zip_path)["gradient_error"]["param"].dtype.kind == "U"
    summary = summarize(open_run(zip_path.read_bytes()))
    assert summary.kind == "gradient_error" and summary.commit > 0
    assert summary.groups == {"gradient_error": {"seed": 3, "dynamics": 2, "horizon": 4, "param": 2}}


def test_append_dim_in_second_position(tmp_path: Path) -> None:
    """generalization (probe, check) and model_comparison (model, stage, ...) append along a
    dim that is not first: records carry it as their leading axis."""
    g = RunWriter.create(tmp_path / "gen.zarr", kind="generalization", env_id="E", algorithm="sac",
                         seed=1, config={})
    g.add_group("generalization", coords={"probe": np.arange(3)}, static={"data_size": [2000, 5000, 10000]})
    g.add_group("generalization_probe", coords={})  # per-probe records, appended as probes freeze
    g.append("generalization_probe", probe=[0, 1, 2], env_step=[2000, 5000, 10000],
             model_error_train=[0.5, 0.25, 0.125], n_holdout=[400, 1000, 2000], fit_epochs=[30, 20, 10])
    kl = np.arange(12, dtype=np.float32).reshape(4, 3) / 8  # (check, probe) as appended
    kl[0, 2] = np.nan  # probe 2 not frozen yet at check 0: NaN is allowed here
    for c in range(4):
        g.append("generalization", check=[c], env_step=[100 * c], kl=kl[c : c + 1],
                 model_error=kl[c : c + 1] * 2)
        g.commit()
    g.close()
    m = RunWriter.create(tmp_path / "cmp.zarr", kind="model_comparison", env_id="E",
                         algorithm="offline", seed=1, config={})
    m.add_group("model_comparison", coords={"model": ["mlp", "pe", "gru"],
                                            "split": ["train", "holdout", "test"],
                                            "horizon": np.arange(1, 6)})
    mse = np.arange(2 * 3 * 3 * 5, dtype=np.float32).reshape(2, 3, 3, 5) / 8  # (stage, model, ...)
    m.append("model_comparison", stage=[0, 1], n_episodes=[3, 6], n_transitions=[60, 120],
             n_starts=[[8, 2, 4], [8, 3, 4]], fit_epochs=[[5, 6, 7], [8, 9, 10]], mse=mse)
    m.close()
    for tree in (open_run(tmp_path / "gen.zarr"), _plain(tmp_path / "gen.zarr")):
        np.testing.assert_array_equal(tree["generalization_probe"]["model_error_train"].values, [0.5, 0.25, 0.125])
        ds = tree["generalization"]
        assert ds["kl"].dims == ("probe", "check")
        np.testing.assert_array_equal(ds["kl"].values, kl.T)
        np.testing.assert_array_equal(ds["check"].values, np.arange(4))
    for tree in (open_run(tmp_path / "cmp.zarr"), _plain(tmp_path / "cmp.zarr")):
        da = tree["model_comparison"]["mse"]
        assert da.dims == ("model", "stage", "split", "horizon")
        np.testing.assert_array_equal(da.values, np.moveaxis(mse, 0, 1))


def test_reader_never_shows_the_uncommitted_tail(tmp_path: Path) -> None:
    path = tmp_path / "tail.zarr"
    w = RunWriter.create(path, kind="generalization", env_id="E", algorithm="a", seed=0, config={})
    w.add_group("generalization", coords={"probe": np.arange(2)}, static={"data_size": [1, 2]})
    w.append("generalization", check=[0, 1], env_step=[0, 1], kl=[[0, 0], [1, 1]],
             model_error=[[0, 0], [1, 1]])
    w.commit()
    # A crash mid-commit: data of check 2 reached the arrays, the commit record did not.
    raw = zarr.open_group(path / "generalization", mode="r+")
    raw["check"].append(np.array([2]))
    raw["kl"].append(np.array([[99.0], [99.0]]), axis=1)
    raw["env_step"].append(np.array([99]))
    ds = open_run(path)["generalization"].to_dataset()
    assert ds.sizes["check"] == 2
    np.testing.assert_array_equal(ds["kl"].values, [[0, 1], [0, 1]])
    assert ds["kl"][:, -1].values.tolist() == [1, 1]
    assert ds["env_step"][-1].item() == 1
    assert ds["env_step"][::-1].values.tolist() == [1, 0]
    assert ds["kl"].isel(check=slice(0, 10)).shape == (2, 2)
    assert ds["kl"].isel(check=[1, 0, 1]).values.tolist() == [[1, 0, 1]] * 2
    assert ds["env_step"].to_numpy().max() == 1
    w.close("failed")


@st.composite
def _rows(draw: st.DrawFn, dims: tuple[int, int]) -> tuple[tuple[int, ...], np.ndarray]:
    n, m = dims
    key = []
    for size in (n, m):
        if draw(st.booleans()):
            key.append(draw(st.integers(-size, size - 1)))
        else:
            key.append(slice(draw(st.none() | st.integers(-2 * size, 2 * size)),
                             draw(st.none() | st.integers(-2 * size, 2 * size)),
                             draw(st.none() | st.sampled_from([-3, -2, -1, 1, 2, 3]))))
    return tuple(key)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.integers(1, 7), st.integers(1, 5), st.integers(0, 4), st.data())
def test_prefix_key_matches_numpy_on_the_prefix(n: int, m: int, tail: int, data: st.DataObject) -> None:
    """Any basic key on the committed prefix reads the same values as numpy on the prefix,
    from an array that holds `tail` more (uncommitted) rows."""
    from engine.record.reader import prefix_key

    stored = np.arange((n + tail) * m).reshape(n + tail, m)
    prefix = stored[:n]
    key = data.draw(_rows((n, m)))
    raw, post = prefix_key(key, prefix.shape)
    got = stored[raw]
    for axis, p in enumerate(post):
        got = got[(slice(None),) * axis + (p,)] if isinstance(p, slice) else np.take(got, p, axis=axis)
    np.testing.assert_array_equal(got, prefix[key])


@settings(max_examples=12, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.integers(0, 9), min_size=0, max_size=3), min_size=1, max_size=4),
       st.integers(0, 4))
def test_random_commit_patterns_round_trip(commits: list[list[int]], reopen_after: int) -> None:
    """Any pattern of appends (including empty ones) and commits, with a close + resume in
    between, reads back as exactly the concatenated records."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.zarr"
        w = storekit.new_training(path)
        step = 0
        for i, batches in enumerate(commits):
            if i == reopen_after:
                w.close("running")
                w = RunWriter.resume(path)
            for n in batches:
                w.append("replay", **storekit.replay_rows(step, n))
                step += n
            w.commit()
            assert open_run(path)["replay"].sizes["step"] == step
        w.close()
        expected = storekit.replay_rows(0, step)
        for tree in (open_run(path), _plain(path)):
            for name, values in expected.items():
                np.testing.assert_array_equal(tree["replay"][name].values, values, err_msg=name)


def test_writer_refuses_bad_records(tmp_path: Path) -> None:
    w = storekit.new_training(tmp_path / "r.zarr")
    rows = storekit.replay_rows(0, 3)
    with pytest.raises(ValueError, match="missing"):
        w.append("replay", **{k: v for k, v in rows.items() if k != "reward"})
    with pytest.raises(ValueError, match="record counts"):
        w.append("replay", **{**rows, "reward": rows["reward"][:2]})
    with pytest.raises(ValueError, match="record shape"):
        w.append("replay", **{**rows, "obs": rows["obs"][:, :2]})
    with pytest.raises(ValueError, match="NaN"):
        w.append("replay", **{**rows, "obs": rows["obs"] * np.nan})
    with pytest.raises(KeyError):
        w.append("critic", snapshot=[0])
    w.append("replay", **rows)
    w.close()
    assert open_run(tmp_path / "r.zarr")["replay"].sizes["step"] == 3


def test_a_store_lacking_required_groups_is_not_marked_complete(tmp_path: Path) -> None:
    w = RunWriter.create(tmp_path / "x.zarr", kind="training", env_id="E", algorithm="a", seed=0,
                         config={})
    w.add_group("train", coords={})
    w.append("train", update=[0, 1], env_step=[5, 9])
    with pytest.raises(ValueError, match=r"needs group\(s\) \['replay', 'eval'\]"):
        w.close()
    tree = open_run(tmp_path / "x.zarr")  # still readable: running, with its records
    assert tree.attrs["status"] == "running"
    assert tree["train"]["env_step"].values.tolist() == [5, 9]
    RunWriter.resume(tmp_path / "x.zarr").close("failed")  # and the lock was released
    assert open_run(tmp_path / "x.zarr").attrs["status"] == "failed"
