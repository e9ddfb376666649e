"""All Zarr and zip I/O of run stores: safe read-only opening and the crash-safe writer.

Crash safety works by ordering, not by transactions. Records are buffered in memory and, on
`commit()`, appended to every array of their group; only then is the root attribute
`committed` (group -> length along its append dim) rewritten, together with the counter
`commit`. zarr >= 3.1.3 replaces each metadata file atomically (temp file + rename), so a kill
at any moment leaves either the old or the new root attributes. Arrays may hold a partly
written tail beyond `committed`; readers never look past it, and a resuming writer truncates it.
Nothing is fsynced: a SIGKILL loses nothing committed, a power cut may.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import threading
import uuid
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import zarr
from zarr.storage import LocalStore, ZipStore

from engine.record.errors import StoreError, StoreLockedError
from engine.record.zipsafe import DEFAULT_LIMITS, Limits, check_zip
from engine.record.schema import GROUPS, KINDS, SCHEMA, SCHEMA_VERSION, Var, all_vars

LOCK_NAME = ".writer.lock"

Source = str | os.PathLike[str] | bytes | IO[bytes]


def engine_version() -> str:
    """Version of the installed mbrl-workbench distribution."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mbrl-workbench")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrayInfo:
    """Metadata of one stored array, read without touching its chunks."""

    path: str
    dims: tuple[str, ...] | None
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict[str, Any]


def _is_zip(source: Source) -> bool:
    if isinstance(source, (bytes, bytearray)) or hasattr(source, "read"):
        return True
    p = Path(source)
    return p.is_file() and zipfile.is_zipfile(p)


def open_root(source: Source, limits: Limits = DEFAULT_LIMITS) -> zarr.Group:
    """Open a store directory, a `.zarr.zip` file, or zip bytes/file object, read-only.

    Zips are checked member by member before zarr sees them and are never extracted. The
    zip's file handle lives as long as the returned group (lazy reads need it).
    """
    if not _is_zip(source):
        p = Path(source)  # type: ignore[arg-type]
        if not p.exists():
            raise StoreError(f"No store at {str(p)!r}.")
        if not p.is_dir():
            raise StoreError(f"{str(p)!r} is neither a store directory nor a zip file.")
        if not (p / "zarr.json").is_file():
            if (p / ".zgroup").exists() or (p / ".zarray").exists():
                raise StoreError(f"{str(p)!r} is a Zarr v2 store; run stores are Zarr v3 (schema version 1).")
            raise StoreError(f"{str(p)!r} is not a Zarr store: it has no zarr.json.")
        return _open_group(LocalStore(p, read_only=True))
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            _check_zip_file(fh, limits)
        return _open_group(ZipStore(Path(source), mode="r"))
    fileobj: IO[bytes] = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    _check_zip_file(fileobj, limits)
    return _open_group(_ZipObjectStore(fileobj))


def _check_zip_file(fileobj: IO[bytes], limits: Limits) -> None:
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise StoreError(f"The file is not a readable zip (truncated or corrupt): {exc}") from None
    check_zip(zf, size, limits)
    fileobj.seek(0)


class _ZipObjectStore(ZipStore):
    """zarr's read-only ZipStore over an open file object (an upload held in memory)."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        super().__init__(Path("<upload>"), mode="r")
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
        raise StoreError(f"The Zarr metadata could not be read: {exc}") from None
    if not isinstance(node, zarr.Group):
        raise StoreError("The store's root is a single array, not a run store group.")
    return node


def list_arrays(group: zarr.Group) -> dict[str, ArrayInfo]:
    """Metadata of the arrays directly in `group`, by name (no chunk is read)."""
    out: dict[str, ArrayInfo] = {}
    try:
        members = list(group.arrays())
    except Exception as exc:
        raise StoreError(f"Group {group.path!r} has unreadable array metadata: {exc}") from None
    for name, arr in members:
        dims = arr.metadata.dimension_names if arr.metadata.zarr_format == 3 else None
        if dims is None and arr.shape == ():
            dims = ()  # scalars need no names
        out[name] = ArrayInfo(
            path=arr.path,
            dims=tuple(dims) if dims is not None else None,
            shape=tuple(arr.shape),
            dtype=_numpy_dtype(arr),
            attrs=dict(arr.attrs),
        )
    return out


def list_groups(root: zarr.Group) -> list[str]:
    """Names of the child groups of the root."""
    try:
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
    data = np.asarray(arr[key])
    return plain_strings(data)


def plain_strings(data: np.ndarray) -> np.ndarray:
    """numpy StringDType (zarr's variable-length strings) -> fixed unicode, which pandas and
    xarray's netCDF export handle everywhere."""
    return data.astype(object).astype(str) if data.dtype.kind == "T" else data


def array_handle(group: zarr.Group, name: str) -> zarr.Array:
    """The zarr array itself, for lazy reads by the reader."""
    return group[name]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _zarr_dtype(dtype: str) -> Any:
    return str if dtype == "str" else np.dtype(dtype)


class RunWriter:
    """The only writer of a run store: buffered appends, crash-safe commits, one per store.

    Use `RunWriter.create(...)` for a new store or `RunWriter.resume(path)` to continue one;
    both take the store's lock, which the OS releases if the process dies.
    """

    def __init__(self, path: Path, root: zarr.Group, lock: IO[str]) -> None:
        self.path = path
        self._root = root
        self._lock = lock
        self._buffers: dict[str, list[dict[str, np.ndarray]]] = {}
        attrs = dict(root.attrs)
        self.committed: dict[str, int] = dict(attrs.get("committed", {}))
        self.commit_count: int = int(attrs.get("commit", 0))
        self._closed = False

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def _acquire(path: Path) -> IO[str]:
        path.mkdir(parents=True, exist_ok=True)
        fh = open(path / LOCK_NAME, "a+")  # noqa: SIM115 - held for the writer's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise StoreLockedError(
                f"Another writer (process {holder}) is writing {str(path)!r}; "
                "one store has one writer. Wait for it to finish or stop it first."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        return fh

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        kind: str,
        env_id: str,
        algorithm: str,
        seed: int,
        config: Mapping[str, Any],
        run_id: str | None = None,
        overwrite: bool = False,
    ) -> RunWriter:
        """Create a new store at `path` (refusing an existing one unless `overwrite`)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        path = Path(path)
        if path.exists() and any(p.name != LOCK_NAME for p in path.iterdir()) and not overwrite:
            raise StoreError(
                f"{str(path)!r} already exists; pass --resume to continue it or choose a new path."
            )
        lock = cls._acquire(path)
        try:
            for child in path.iterdir():  # overwrite: clear everything but our lock
                if child.name != LOCK_NAME:
                    import shutil

                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            root = zarr.open_group(LocalStore(path), mode="w", zarr_format=3)
            now = _now()
            root.attrs.update(
                {
                    "schema": SCHEMA,
                    "schema_version": SCHEMA_VERSION,
                    "kind": kind,
                    "run_id": run_id or uuid.uuid4().hex[:12],
                    "env_id": env_id,
                    "algorithm": algorithm,
                    "seed": int(seed),
                    "config": json.dumps(config, sort_keys=True),
                    "status": "running",
                    "created": now,
                    "updated": now,
                    "engine_version": engine_version(),
                    "commit": 0,
                    "committed": {},
                }
            )
        except BaseException:
            lock.close()
            raise
        return cls(path, root, lock)

    @classmethod
    def resume(cls, path: str | os.PathLike[str]) -> RunWriter:
        """Continue an existing store: drop any uncommitted tail and mark it running."""
        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise StoreError(f"No store to resume at {str(path)!r}.")
        lock = cls._acquire(path)
        try:
            root = zarr.open_group(LocalStore(path), mode="r+", zarr_format=3, use_consolidated=False)
            if root.attrs.get("schema") != SCHEMA or root.attrs.get("schema_version") != SCHEMA_VERSION:
                raise StoreError(f"{str(path)!r} is not a schema-v{SCHEMA_VERSION} run store.")
            # Rewriting the root attributes first also drops consolidated metadata, which
            # would otherwise show readers the shapes of the finished run.
            root.attrs.update({"status": "running", "updated": _now()})
            writer = cls(path, root, lock)
            for gname, n in writer.committed.items():
                group = root[gname]
                append_dim = GROUPS[gname].append_dim if gname in GROUPS else group.attrs["append_dim"]
                for _, arr in group.arrays():
                    dims = arr.metadata.dimension_names or ()
                    if dims[:1] == (append_dim,) and arr.shape[0] != n:
                        arr.resize((n, *arr.shape[1:]))
        except BaseException:
            lock.close()
            raise
        return writer

    # -- groups ----------------------------------------------------------------------------

    @property
    def attrs(self) -> dict[str, Any]:
        """The root attributes as last written."""
        return dict(self._root.attrs)

    def has_group(self, name: str) -> bool:
        """Whether the group was created (and registered by a commit)."""
        return name in self.committed

    def add_group(
        self,
        name: str,
        coords: Mapping[str, Any],
        extra: Mapping[str, Var] | None = None,
        static: Mapping[str, Any] | None = None,
        append_dim: str | None = None,
    ) -> None:
        """Create group `name` with coordinates for its fixed dims, then commit its registration.

        `extra` declares variables beyond the schema (appended like the others if they have
        the append dim, otherwise given in `static` and written now). A group not in the
        schema needs `append_dim` and declares everything in `extra`.
        """
        if name in self.committed:
            return
        spec = GROUPS.get(name)
        if spec is None and append_dim is None:
            raise ValueError(f"group {name!r} is not in the schema: give its append_dim")
        adim = spec.append_dim if spec else append_dim
        variables = {**(all_vars(spec) if spec else {}), **(extra or {})}
        for dim, values in coords.items():  # every dim gets a coordinate, schema or not
            if dim not in variables:
                kind = "str" if np.asarray(values).dtype.kind in "UOT" else "int64"
                variables[dim] = Var((dim,), kind, "1", dim.replace("_", " "))
        static = dict(static or {})
        group = self._root.create_group(name, overwrite=True)
        group.attrs.update({"append_dim": adim})
        chunk = spec.chunk if spec else 1024
        for vname, var in variables.items():
            unnamed = [d for d in var.dims if d != adim and d not in coords]
            if unnamed:
                raise ValueError(f"group {name!r}: {vname!r} uses dims {unnamed} with no coordinate")
            attrs = {"units": var.units, "long_name": var.long_name}
            if var.dims and var.dims[0] == adim:
                fixed = tuple(len(coords[d]) for d in var.dims[1:])
                arr = group.create_array(
                    vname, shape=(0, *fixed), chunks=(chunk, *[max(n, 1) for n in fixed]),
                    dtype=_zarr_dtype(var.dtype), dimension_names=var.dims, attributes=attrs,
                    fill_value=_fill(var.dtype),
                )
                continue
            if vname in coords and var.dims == (vname,):
                values = np.asarray(coords[vname])
            elif vname in static:
                values = np.asarray(static[vname])
            else:
                raise ValueError(f"group {name!r}: no values for fixed variable {vname!r}")
            values = values.astype(str) if var.dtype == "str" else values.astype(var.dtype)
            if values.ndim != len(var.dims):
                raise ValueError(f"{name}/{vname}: expected dims {var.dims}, got shape {values.shape}")
            arr = group.create_array(
                vname, shape=values.shape, dtype=_zarr_dtype(var.dtype),
                dimension_names=var.dims, attributes=attrs, fill_value=_fill(var.dtype),
            )
            if values.size:
                arr[...] = values
        self.committed[name] = 0
        self._buffers[name] = []
        self._write_commit()

    def append(self, group: str, **arrays: Any) -> None:
        """Buffer one or more records (leading axis = append dim) for `group` until `commit()`."""
        if group not in self.committed:
            raise KeyError(f"group {group!r} was not added")
        self._buffers.setdefault(group, []).append({k: np.asarray(v) for k, v in arrays.items()})

    def commit(self) -> None:
        """Write buffered records, then advance the commit counter (the crash-safety point)."""
        zgroups = {}
        for gname, records in self._buffers.items():
            if not records:
                continue
            zgroup = zgroups[gname] = self._root[gname]
            adim = zgroup.attrs["append_dim"]
            targets = {n: a for n, a in zgroup.arrays() if (a.metadata.dimension_names or ())[:1] == (adim,)}
            missing = set(targets) - set(records[0])
            unknown = set(records[0]) - set(targets)
            if missing or unknown:
                raise ValueError(f"{gname}: record is missing {sorted(missing)} / has unknown {sorted(unknown)}")
            batch = {n: np.concatenate([r[n] for r in records], axis=0) for n in targets}
            lengths = {len(v) for v in batch.values()}
            if len(lengths) != 1:
                raise ValueError(f"{gname}: variables have different record counts {lengths}")
            for n, arr in targets.items():
                data = batch[n]
                if arr.shape[0] != self.committed[gname]:  # resumed or retried after an error
                    arr.resize((self.committed[gname], *arr.shape[1:]))
                if data.shape[1:] != arr.shape[1:]:
                    raise ValueError(f"{gname}/{n}: record shape {data.shape[1:]} != {arr.shape[1:]}")
                arr.append(data.astype(str) if data.dtype.kind in "UOT" else data, axis=0)
            self.committed[gname] += lengths.pop()
            records.clear()
        self._write_commit()

    def _write_commit(self, **extra: Any) -> None:
        self.commit_count += 1
        self._root.attrs.update(
            {"committed": dict(self.committed), "commit": self.commit_count, "updated": _now(), **extra}
        )

    def close(self, status: str = "complete") -> None:
        """Commit what is buffered, set the final status, consolidate, release the lock."""
        if self._closed:
            return
        try:
            if status != "failed":
                self.commit()
            self._write_commit(status=status)
            if status == "complete":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # consolidated metadata is not yet in the v3 spec
                    zarr.consolidate_metadata(LocalStore(self.path))
        finally:
            self._closed = True
            with contextlib.suppress(OSError):
                (self.path / LOCK_NAME).unlink()
            self._lock.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is KeyboardInterrupt:
            # Interrupted by the user: keep what was committed, leave it resumable.
            self.close(status="running")
        else:
            self.close(status="failed" if exc_type else "complete")


def _fill(dtype: str) -> Any:
    if dtype == "str":
        return ""
    kind = np.dtype(dtype).kind
    return {"f": float("nan"), "b": False}.get(kind, 0)


def pack(store_dir: str | os.PathLike[str], zip_path: str | os.PathLike[str]) -> Path:
    """Zip a store's contents (not its folder) so `open_run` and zarr read it unextracted."""
    src, dst = Path(store_dir), Path(zip_path)
    if (src / LOCK_NAME).exists():
        with open(src / LOCK_NAME, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreLockedError(f"{str(src)!r} is being written; pack it when it is done.") from None
    tmp = dst.with_name(dst.name + ".tmp")
    # Chunks are already compressed by zarr; storing them keeps reads seekable and cheap.
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for file in sorted(src.rglob("*")):
            if file.is_file() and file.name != LOCK_NAME:
                zf.write(file, file.relative_to(src).as_posix())
    os.replace(tmp, dst)
    return dst
