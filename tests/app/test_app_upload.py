"""Uploading zipped stores through the Home page's file uploader (AppTest drives the widget)."""

from __future__ import annotations

import gc
import hashlib
import io
import re
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import app_bad_zips as bad
import numpy as np
import pytest
from app_helpers import app, assert_clean, chart_traces, plotly_array, trace

from engine.record import StoreError, open_run


def _upload_key(data: bytes) -> str:
    """The run key of an upload (`upload:SHA256` of its bytes)."""
    return f"upload:{hashlib.sha256(data).hexdigest()}"


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
    at.multiselect(key="ge_runs").set_value([_upload_key(small_zip_bytes)]).run()
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


# --- issue 6's malformed inputs: each names what is wrong, none raises ------------------------

MALFORMED: dict[str, tuple[Callable[[Path], bytes], str]] = {
    # case -> (builder of the upload's bytes, text the message must contain)
    "truncated zip": (lambda _: bad.truncated(), "the zip is truncated or corrupt"),
    "non-zarr zip": (lambda _: BAD_UPLOADS["non-zarr zip"], "has no zarr.json at its root"),
    "zarr v2 store": (bad.zarr_v2, "Zarr v2 store"),
    **{case: (lambda tmp, c=case: bad.broken_store(tmp, c), text)
       for case, (_, text) in bad.STORE_EDITS.items()},
    "absolute member": (lambda _: bad.with_member("/etc/passwd"), "unsafe member name '/etc/passwd'"),
    "nested dot-dot member": (lambda _: bad.with_member("gradient_error/../../x"), "unsafe member name"),
    "symlink member": (lambda _: bad.with_member("gradient_error/link", b"/etc/passwd",
                                                  stat.S_IFLNK | 0o777), "'gradient_error/link' is a symbolic link"),
    "duplicate names": (lambda _: bad.duplicate(), "the member 'zarr.json' twice"),
    "zip bomb": (lambda _: bad.bomb(), "refusing a possible zip bomb"),
    "encrypted zip": (lambda _: bad.encrypted(), "is encrypted"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_upload_names_what_is_wrong(datasets: Path, tmp_path: Path, case: str) -> None:
    build, text = MALFORMED[case]
    data = build(tmp_path)
    with pytest.raises(StoreError, match=re.escape(text)) as refused:
        open_run(data)
    at = _upload(app(), f"{case}.zip", data)
    assert_clean(at)
    assert len(at.error) == 1
    assert str(refused.value) in at.error[0].value and text in at.error[0].value
    assert (at.dataframe[0].value["source"] != "upload").all()


def _peak_rss() -> int:
    """Peak resident set size of this process since the last reset, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def _reset_peak_rss() -> int:
    """Reset the peak to the current RSS (writing 5 to clear_refs, Linux >= 4.0); return it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("cannot reset the peak RSS here (/proc/self/clear_refs)")
    return _peak_rss()


def test_zip_bomb_upload_keeps_memory_bounded(datasets: Path) -> None:
    data = bad.bomb()  # ~3 MB that inflate to 3 GiB
    at = app()
    gc.collect()
    base = _reset_peak_rss()
    _upload(at, "bomb.zip", data)
    grown = _peak_rss() - base
    print(f"\nzip bomb ({len(data) / 2**20:.1f} MiB declaring {bad.BOMB_DECLARED / 2**30:.0f} GiB): "
          f"peak RSS {grown / 2**20:.1f} MiB above the baseline of {base / 2**20:.0f} MiB")
    assert_clean(at)
    assert "zip bomb" in at.error[0].value
    assert grown < 200 * 2**20
    # the meter works: reading the first 300 MiB of the member, as an unguarded reader would,
    # shows up in the peak
    base = _reset_peak_rss()
    with zipfile.ZipFile(io.BytesIO(data)).open(bad.BOMB_MEMBER) as member:
        inflated = member.read(300 * 2**20)
    assert len(inflated) == 300 * 2**20
    assert _peak_rss() - base > 250 * 2**20


def test_corrupt_chunk_found_by_a_page_shows_an_error(datasets: Path) -> None:
    """Chunks are read lazily, so a corrupt one passes the upload and is met by the page that
    reads it: the page stops with a message naming the array, not an exception."""
    data = bad.corrupt_chunk()
    at = _upload(app(), "corrupt.zarr.zip", data)
    assert_clean(at)
    assert any("corrupt.zarr.zip" in s.value for s in at.success)
    at.switch_page("views/gradient_error.py").run()
    at.multiselect(key="ge_runs").set_value([_upload_key(data)]).run()
    assert_clean(at)
    assert len(at.error) == 1
    assert "gradient_error/bound_c1: its data could not be read" in at.error[0].value
