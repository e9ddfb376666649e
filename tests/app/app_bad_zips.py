"""Malformed uploads (issue 6's list), each built from the bundled gradient_error store: the
store is unpacked into a temp folder, one thing is broken (with zarr or in its JSON), and it is
zipped again. Zip-level attacks (bomb, encryption, symlink, absolute names) are written byte by
byte, since `zipfile` refuses to make most of them."""

from __future__ import annotations

import io
import json
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr

from app_helpers import BUNDLED

GIB = 2**30
BOMB_DECLARED = 3 * GIB
"""What the bomb member inflates to (3 GiB of zeros from ~3 MB); below 4 GiB, so no zip64."""
BOMB_MEMBER = "gradient_error/est_grad/c/0/0/0/0"
"""The store's largest chunk, which the bomb replaces."""


def unpack(dst: Path) -> Path:
    """The bundled store unpacked into `dst` (a trusted file, extracted only in tests)."""
    with zipfile.ZipFile(BUNDLED) as zf:
        zf.extractall(dst)
    return dst


def zip_dir(src: Path) -> bytes:
    """The folder's files zipped like `engine pack` (contents, not the folder)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for file in sorted(src.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(src).as_posix())
    return buf.getvalue()


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _root_attrs(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda d: _edit_json(d / "zarr.json", lambda m: edit(m["attributes"]))


def _array_meta(var: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda d: _edit_json(d / "gradient_error" / var / "zarr.json", edit)


def _write_value(var: str, index: tuple, value: float) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        arr = zarr.open_array(d / "gradient_error" / var, mode="r+")
        arr[index] = value

    return go


def _remove(var: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        for f in sorted((d / "gradient_error" / var).rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        (d / "gradient_error" / var).rmdir()

    return go


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda m: m.__setitem__(key, value)


STORE_EDITS: dict[str, tuple[Callable[[Path], None], str]] = {
    # case -> (what breaks the unpacked store, text the error message must contain)
    "wrong schema version": (_root_attrs(_set("schema_version", 2)), "schema version 2"),
    "missing schema version": (_root_attrs(lambda a: a.pop("schema_version")), "no schema version"),
    "missing variable": (_remove("l1_error"), "missing variable(s) ['l1_error']"),
    "ragged lengths": (_array_meta("l1_error", lambda m: m["shape"].__setitem__(2, 30)), "Ragged lengths"),
    "truncated array": (_array_meta("eps_f", lambda m: m["shape"].__setitem__(0, 7)), "ragged lengths"),
    "NaN value": (_write_value("eps_f", (3,), np.nan), "gradient_error/eps_f holds 1 NaN or infinite"),
    "inf value": (_write_value("l1_error", (2, 1, 5), np.inf), "gradient_error/l1_error holds 1 NaN or infinite"),
    "declared shape 2^40": (_array_meta("est_grad", lambda m: m["shape"].__setitem__(0, 2**40)), "GiB limit per array"),
}


def broken_store(tmp: Path, case: str) -> bytes:
    """The bundled store with `case` broken, zipped."""
    d = unpack(tmp / case.replace(" ", "_"))
    STORE_EDITS[case][0](d)
    return zip_dir(d)


def zarr_v2(tmp: Path) -> bytes:
    """A real Zarr v2 group with one array, zipped."""
    d = tmp / "v2"
    g = zarr.open_group(d, mode="w", zarr_format=2)
    g.create_array("x", shape=(4,), dtype="f4")[:] = 1.0
    return zip_dir(d)


def _local(name: bytes, method: int, crc: int, csize: int, usize: int, flags: int) -> bytes:
    return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, csize, usize,
                       len(name), 0) + name


def _central(name: bytes, method: int, crc: int, csize: int, usize: int, flags: int, attr: int,
             offset: int) -> bytes:
    return struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x0314, 20, flags, method, 0, 0x21, crc,
                       csize, usize, len(name), 0, 0, 0, 0, attr, offset) + name


def raw_zip(members: list[dict]) -> bytes:
    """A zip written by hand: each member a dict with `name`, `payload` (already compressed),
    and optional `method` (0 stored, 8 deflate), `crc`, `size` (declared uncompressed size),
    `flags` and `mode` (unix mode bits, e.g. a symlink's)."""
    out, central = bytearray(), bytearray()
    for m in members:
        name, payload = m["name"].encode(), m["payload"]
        method, flags = m.get("method", 0), m.get("flags", 0)
        crc = m.get("crc", zlib.crc32(payload) if method == 0 else 0)
        size = m.get("size", len(payload))
        attr = m.get("mode", stat.S_IFREG | 0o644) << 16
        central += _central(name, method, crc, len(payload), size, flags, attr, len(out))
        out += _local(name, method, crc, len(payload), size, flags) + payload
    n = len(members)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(central), len(out), 0)
    return bytes(out + central + eocd)


def _store_members() -> list[dict]:
    with zipfile.ZipFile(BUNDLED) as zf:
        return [{"name": i.filename, "payload": zf.read(i)} for i in zf.infolist()]


def bomb() -> bytes:
    """The bundled store with its largest chunk replaced by 3 GiB of zeros deflated to ~3 MB:
    16 MiB of zeros compressed once and flushed (byte-aligned, no back-references), repeated.
    The CRC is left 0: the guard refuses the member before inflating a byte, and computing the
    CRC of 3 GiB would cost seconds."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(bytes(16 * 2**20)) + comp.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = piece * (BOMB_DECLARED // (16 * 2**20)) + last.compress(b"") + last.flush()
    members = [m for m in _store_members() if m["name"] != BOMB_MEMBER]
    return raw_zip([*members, {"name": BOMB_MEMBER, "payload": payload,
                               "method": 8, "crc": 0, "size": BOMB_DECLARED}])


def encrypted() -> bytes:
    """The bundled store with every member flagged as encrypted (traditional PKWARE)."""
    return raw_zip([{**m, "flags": 0x1} for m in _store_members()])


def with_member(name: str, payload: bytes = b"x", mode: int = stat.S_IFREG | 0o644) -> bytes:
    """The bundled store plus one member."""
    return raw_zip([*_store_members(), {"name": name, "payload": payload, "mode": mode}])


def duplicate() -> bytes:
    """The bundled store with its root `zarr.json` twice (the second one foreign)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name"
        with zipfile.ZipFile(buf, "w") as zf:
            for m in _store_members():
                zf.writestr(m["name"], m["payload"])
            zf.writestr("zarr.json", b'{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    return buf.getvalue()


def corrupt_chunk() -> bytes:
    """The bundled store with the chunk of `bound_c1` (not checked at open: NaN is allowed
    there) replaced by bytes that are not zstd: it opens, and fails when a page reads it."""
    return raw_zip([{**m, "payload": b"not zstd data"} if m["name"] == "gradient_error/bound_c1/c/0" else m
                    for m in _store_members()])


def truncated() -> bytes:
    """The first half of the bundled zip (an interrupted download)."""
    data = BUNDLED.read_bytes()
    return data[: len(data) // 2]
