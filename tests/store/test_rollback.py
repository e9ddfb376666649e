"""RunWriter.rollback: returning a store to an earlier commit (training checkpoints use it)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from engine.record import RunWriter, open_run


def _write(path, n_commits):
    w = RunWriter.create(path, kind="training", env_id="X-v0", algorithm="t", seed=0, config={})
    w.add_group("eval", coords={"episode": np.arange(2)})
    for i in range(n_commits):
        w.append("eval", snapshot=[i], env_step=[10 * i], **{"return": [[i, -i]]}, length=[[1, 2]])
        w.commit()
    return w


def test_rollback_forgets_later_records_for_readers_and_plain_xarray(tmp_path):
    path = tmp_path / "r.zarr"
    w = _write(path, 5)
    assert w.appended_variables("eval") == ["env_step", "length", "return", "snapshot"]
    w.rollback({"eval": 3})
    assert open_run(path)["eval"].sizes["snapshot"] == 3
    w.append("eval", snapshot=[3], env_step=[99], **{"return": [[7, 7]]}, length=[[1, 1]])
    w.commit()
    w.close(status="failed")  # a training store without replay may not be marked complete
    ds = xr.open_datatree(path, engine="zarr", consolidated=False)["eval"]
    assert list(ds.snapshot.values) == [0, 1, 2, 3] and int(ds.env_step[-1]) == 99


def test_rollback_cannot_go_forward_and_absent_groups_empty(tmp_path):
    w = _write(tmp_path / "r.zarr", 2)
    with pytest.raises(ValueError, match="forward"):
        w.rollback({"eval": 5})
    w.rollback({})
    assert w.committed["eval"] == 0
    w.close(status="failed")
    assert open_run(tmp_path / "r.zarr")["eval"].sizes["snapshot"] == 0
