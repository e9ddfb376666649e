"""Zarr I/O of run stores, reading side: safe read-only opening and metadata listing.

Directories, `.zarr.zip` files, zip bytes, zip file objects and fsspec URLs (`file://`,
`memory://`, `s3://`, `gcs://`... of a store folder or a `.zarr.zip`) all open read-only; zips
are checked member by member (`zipsafe`) before zarr sees them and are never extracted. The
writing side (`RunWriter` in `engine.record.writer`, the lock and `pack` in
`engine.record.files`) is re-exported here.
"""

from __future__ import annotations

import io
import os
import re
import threading
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import zarr
from zarr.storage import FsspecStore, LocalStore, ZipStore

from engine.record.errors import StoreError
from engine.record.files import LOCK_NAME, pack, quiet_listing
from engine.record.writer import RunWriter, engine_version
from engine.record.zipsafe import DEFAULT_LIMITS, Limits, check_zip_file

Source = str | os.PathLike[str] | bytes | IO[bytes]


@dataclass(frozen=True)
class ArrayInfo:
    """Metadata of one stored array, read without touching its chunks."""

    path: str
    dims: tuple[str, ...] | None
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict[str, Any]
    chunk_shape: tuple[int, ...] = ()
    """Shape of the unit a read decodes whole (the shard if sharded, else the chunk)."""
    handle: Any = field(default=None, repr=False, compare=False)
    """The opened zarr array, for reads (opening it again would read its metadata again)."""


def _looks_like_zip(path: Path) -> bool:
    if path.name.lower().endswith(".zip") or zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as fh:
        return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(source: object) -> bool:
    """Whether `source` is an fsspec URL (`PROTOCOL://...`) rather than a local path."""
    return isinstance(source, str) and bool(_URL.match(source))


def open_root(source: Source, limits: Limits = DEFAULT_LIMITS) -> zarr.Group:
    """Open a store directory, a `.zarr.zip` file, zip bytes/file object, or an fsspec URL of
    either, read-only.

    Zips are checked before zarr sees them and are never extracted. The zip's file handle
    lives as long as the returned group (lazy reads need it).
    """
    owned = False
    if isinstance(source, (bytes, bytearray, memoryview)):
        fileobj: IO[bytes] = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        fileobj = source  # type: ignore[assignment]
    elif is_url(source):
        if str(source).startswith("file://"):  # a local path: the directory checks below apply
            return open_root(_local_path(str(source)), limits)
        opened = _open_url(str(source))
        if isinstance(opened, zarr.Group):
            return opened
        fileobj, owned = opened, True
    else:
        p = Path(source)  # type: ignore[arg-type]
        if not p.exists():
            raise StoreError(f"No store at {str(p)!r}.")
        if p.is_dir():
            return _open_dir(p)
        if not p.is_file() or not _looks_like_zip(p):
            raise StoreError(
                f"{str(p)!r} is neither a store directory (NAME.zarr) nor a zip file "
                "(NAME.zarr.zip)."
            )
        # One handle for checking and reading: the file cannot be swapped in between.
        fileobj = open(p, "rb")  # noqa: SIM115 - owned by the returned group's store
        owned = True
    try:
        check_zip_file(fileobj, limits)
        store = _ZipObjectStore(fileobj)
        if owned:  # close our handle once nothing reads through the store any more
            weakref.finalize(store, fileobj.close)
        return _open_group(store)
    except BaseException:
        if owned:
            fileobj.close()
        raise


def _local_path(url: str) -> Path:
    import fsspec.core

    return Path(fsspec.core.strip_protocol(url))


def _open_url(url: str) -> zarr.Group | IO[bytes]:
    """The root group of a store folder at `url`, or an open file object of a zip at `url`
    (checked and opened by the caller). Nothing is ever written through the store."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # unknown protocol, its fsspec driver not installed
        raise StoreError(f"Cannot open {url!r}: {exc}") from None
    try:
        if path.rstrip("/").lower().endswith(".zip") and fs.isfile(path):
            return fs.open(path, "rb")
        if not fs.isfile(f"{path.rstrip('/')}/zarr.json"):
            what = "is not a Zarr store (no zarr.json)" if fs.exists(path) else "does not exist"
            raise StoreError(f"{url!r} {what}; expected a store folder (NAME.zarr) or NAME.zarr.zip.")
        store = FsspecStore.from_url(url.rstrip("/"), read_only=True)
    except OSError as exc:  # permission, network
        raise StoreError(f"Cannot read {url!r}: {exc}") from None
    return _open_group(store)


def _open_dir(p: Path) -> zarr.Group:
    if not (p / "zarr.json").is_file():
        if (p / ".zgroup").exists() or (p / ".zarray").exists() or (p / ".zattrs").exists():
            raise StoreError(
                f"{str(p)!r} is a Zarr v2 store; run stores are Zarr v3 (schema version 1)."
            )
        if (p / ".zmetadata").exists():
            raise StoreError(f"{str(p)!r} is a Zarr v2 store (consolidated); run stores are Zarr v3.")
        inner = [c.name for c in p.iterdir() if (c / "zarr.json").is_file()] if p.is_dir() else []
        hint = f" (did you mean the store inside it, {inner[0]!r}?)" if len(inner) == 1 else ""
        raise StoreError(f"{str(p)!r} is not a Zarr store: it has no zarr.json{hint}.")
    return _open_group(LocalStore(p, read_only=True))


class _ZipObjectStore(ZipStore):
    """zarr's read-only ZipStore over an open file object (an upload held in memory)."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        name = getattr(fileobj, "name", "<upload>")
        super().__init__(Path(name if isinstance(name, str) else "<upload>"), mode="r")
        self._fileobj = fileobj

    def _sync_open(self) -> None:
        if self._is_open:
            raise ValueError("store is already open")
        self._lock = threading.RLock()
        self._zf = zipfile.ZipFile(self._fileobj, mode="r")
        self._is_open = True


def _open_group(store: Any) -> zarr.Group:
    try:
        node = zarr.open(store=store, mode="r", zarr_format=3, use_consolidated=False)
    except Exception as exc:  # zarr raises many types for bad metadata
        raise StoreError(f"The store's root Zarr metadata (zarr.json) could not be read: {exc}") from None
    if not isinstance(node, zarr.Group):
        raise StoreError("The store's root is a single array, not a run store group.")
    return node


def list_arrays(group: zarr.Group) -> dict[str, ArrayInfo]:
    """Metadata of the arrays directly in `group`, by name (no chunk is read)."""
    out: dict[str, ArrayInfo] = {}
    try:
        with quiet_listing():
            members = list(group.arrays())
    except Exception as exc:
        raise StoreError(f"Group {group.path!r} has unreadable array metadata: {exc}") from None
    for name, arr in members:
        dims = arr.metadata.dimension_names if arr.metadata.zarr_format == 3 else None
        if dims is None and arr.shape == ():
            dims = ()  # scalars need no names
        try:
            unit = arr.shards or arr.chunks
        except Exception:  # an irregular grid: treat the whole array as one unit
            unit = arr.shape
        out[name] = ArrayInfo(
            path=arr.path,
            dims=tuple(dims) if dims is not None else None,
            shape=tuple(arr.shape),
            dtype=_numpy_dtype(arr),
            attrs=dict(arr.attrs),
            chunk_shape=tuple(unit),
            handle=arr,
        )
    return out


def list_groups(root: zarr.Group) -> list[str]:
    """Names of the child groups of the root."""
    try:
        with quiet_listing():
            return sorted(name for name, _ in root.groups())
    except Exception as exc:
        raise StoreError(f"The store's groups could not be listed: {exc}") from None


def _numpy_dtype(arr: zarr.Array) -> np.dtype:
    dt = arr.dtype
    if not isinstance(dt, np.dtype) or dt.kind == "T":
        return np.dtype("str")
    return dt


def read_array(group: zarr.Group, name: str, key: tuple[slice | int, ...] | slice = slice(None)) -> np.ndarray:
    """Read `key` of array `name` in `group` (basic indexing only)."""
    arr = group[name]
    try:
        data = np.asarray(arr[key])
    except Exception as exc:
        raise StoreError(f"{group.path}/{name}: its data could not be read ({exc}).") from None
    return plain_strings(data)


def plain_strings(data: np.ndarray) -> np.ndarray:
    """numpy StringDType (zarr's variable-length strings) -> fixed unicode, which pandas and
    xarray's netCDF export handle everywhere."""
    return data.astype(object).astype(str) if data.dtype.kind in "TO" else data


def array_handle(group: zarr.Group, name: str) -> zarr.Array:
    """The zarr array itself, for lazy reads by the reader."""
    return group[name]


# The writing side lives in engine.record.writer and engine.record.files; re-exported here.
__all__ = [
    "LOCK_NAME", "ArrayInfo", "RunWriter", "array_handle", "engine_version", "list_arrays",
    "is_url", "list_groups", "open_root", "pack", "plain_strings", "read_array",
]
