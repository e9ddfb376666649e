"""Uploading zipped stores through the Home page's file uploader (AppTest drives the widget)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from app_helpers import app, assert_clean, chart_traces, plotly_array, trace

from engine.record import StoreError, open_run


def _upload(at, name: str, data: bytes):  # noqa: ANN001, ANN202 - AppTest types
    at.file_uploader[0].set_value((name, data, "application/zip")).run()
    return at


def test_valid_upload_is_added_and_plotted(
    datasets: Path, small_zip: Path, small_zip_bytes: bytes
) -> None:
    at = _upload(app(), "small.zarr.zip", small_zip_bytes)
    assert_clean(at)
    assert not at.error
    assert any("small.zarr.zip" in s.value for s in at.success)
    table = at.dataframe[0].value
    row = table[table["source"] == "upload"].iloc[0]
    assert (row["name"], row["kind"], row["status"]) == ("small.zarr.zip", "gradient_error", "complete")

    at.switch_page("views/gradient_error.py").run()
    run_box = at.selectbox(key="ge_run")
    upload_key = next(o for o in run_box.options if "(upload)" in o)
    run_box.select(upload_key).run()
    assert_clean(at)
    expected = open_run(small_zip)["gradient_error"]["l1_error"].mean("seed").sel(dynamics="learned")
    got = plotly_array(trace(chart_traces(at, 0), "learned dynamics")["y"])
    np.testing.assert_allclose(got, expected.values, rtol=1e-12)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


BAD_UPLOADS = {
    "random bytes": np.random.default_rng(1).bytes(10_000),
    "dot-dot member": _zip({"zarr.json": b"{}", "../evil.txt": b"x"}),
    "non-zarr zip": _zip({"notes.txt": b"hello", "data.csv": b"a,b\n1,2\n"}),
    "zarr v2 zip": _zip({".zgroup": b'{"zarr_format": 2}'}),
    "foreign zarr group": _zip(
        {"zarr.json": b'{"zarr_format": 3, "node_type": "group", "attributes": {}}'}
    ),
    "empty file": b"",
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_shows_an_error_and_the_app_keeps_running(datasets: Path, case: str) -> None:
    data = BAD_UPLOADS[case]
    with pytest.raises(StoreError) as refused:  # the reader's own message is what must show
        open_run(data)
    at = _upload(app(), f"{case}.zip", data)
    assert_clean(at)
    assert len(at.error) == 1
    assert str(refused.value) in at.error[0].value
    assert "Traceback" not in at.error[0].value
    table = at.dataframe[0].value
    assert (table["source"] != "upload").all()
    # and the app still works afterwards
    at.switch_page("views/gradient_error.py").run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 2


def test_forgetting_uploads(datasets: Path, small_zip_bytes: bytes) -> None:
    at = _upload(app(), "small.zarr.zip", small_zip_bytes)
    assert (at.dataframe[0].value["source"] == "upload").sum() == 1
    at.button(key="forget_uploads").click().run()
    at.run()  # a further rerun must not re-add the file the uploader held
    assert_clean(at)
    assert (at.dataframe[0].value["source"] != "upload").all()
    assert not at.success and all(b.key != "forget_uploads" for b in at.button)
