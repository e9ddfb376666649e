"""The crash-safe writer of run stores.

Crash safety works by ordering, not by transactions. Records are buffered in memory and, on
`commit()`, appended to every array of their group; only then is the root attribute
`committed` (group -> length along its append dim) rewritten, together with the counter
`commit`. zarr >= 3.1.3 replaces each file atomically (temp file + rename), so a kill at any
moment leaves either the old or the new root attributes. Arrays may hold a partly written tail
beyond `committed`; readers never look past it, and a resuming writer truncates it.
Nothing is fsynced: a SIGKILL loses nothing committed, a power cut may.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import zarr
from zarr.storage import LocalStore

from engine.record.errors import StoreError
from engine.record.files import (
    LOCK_NAME, PARTIAL_SUFFIX, acquire_lock, pack, quiet_listing, release_lock, remove_partials,
)
from engine.record.schema import (
    GROUPS, KINDS, REQUIRED_GROUPS, SCHEMA, SCHEMA_VERSION, STATUSES, Var, all_vars,
)


def engine_version() -> str:
    """Version of the installed mbrl-workbench distribution."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mbrl-workbench")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _zarr_dtype(dtype: str) -> Any:
    return str if dtype == "str" else np.dtype(dtype)


def _fill(dtype: str) -> Any:
    if dtype == "str":
        return ""
    kind = np.dtype(dtype).kind
    return {"f": float("nan"), "b": False}.get(kind, 0)


def _dims(arr: zarr.Array) -> tuple[str, ...]:
    return tuple(arr.metadata.dimension_names or ())


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
        self._targets: dict[str, dict[str, tuple[zarr.Array, int, bool]]] = {}
        attrs = dict(root.attrs)
        self.committed: dict[str, int] = dict(attrs.get("committed", {}))
        self.commit_count: int = int(attrs.get("commit", 0))
        self._closed = False

    # -- opening ---------------------------------------------------------------------------

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
        if path.exists() and not path.is_dir():
            raise StoreError(f"{str(path)!r} exists and is not a directory.")
        if path.exists() and any(p.name != LOCK_NAME for p in path.iterdir()) and not overwrite:
            raise StoreError(
                f"{str(path)!r} already exists; pass --resume to continue it or choose a new path."
            )
        config_text = json.dumps(config, sort_keys=True)  # fail before touching the disk
        path.mkdir(parents=True, exist_ok=True)
        lock = acquire_lock(path)
        try:
            for child in path.iterdir():  # overwrite: clear everything but our lock
                if child.name != LOCK_NAME:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            # Not mode="w": that clears the directory, lock file included, and a second
            # writer would then lock a fresh file.
            root = zarr.open_group(LocalStore(path), mode="a", zarr_format=3)
            now = _now()
            root.update_attributes(
                {
                    "schema": SCHEMA,
                    "schema_version": SCHEMA_VERSION,
                    "kind": kind,
                    "run_id": run_id or uuid.uuid4().hex[:12],
                    "env_id": env_id,
                    "algorithm": algorithm,
                    "seed": int(seed),
                    "config": config_text,
                    "status": "running",
                    "created": now,
                    "updated": now,
                    "engine_version": engine_version(),
                    "commit": 0,
                    "committed": {},
                }
            )
        except BaseException:
            release_lock(path, lock)
            raise
        return cls(path, root, lock)

    @classmethod
    def resume(cls, path: str | os.PathLike[str]) -> RunWriter:
        """Continue an existing store: drop any uncommitted tail and mark it running."""
        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise StoreError(f"No store to resume at {str(path)!r}.")
        lock = acquire_lock(path)
        try:
            remove_partials(path)
            root = zarr.open_group(LocalStore(path), mode="r+", zarr_format=3, use_consolidated=False)
            version = root.attrs.get("schema_version")
            if root.attrs.get("schema") != SCHEMA or version != SCHEMA_VERSION:
                raise StoreError(f"{str(path)!r} is not a schema-v{SCHEMA_VERSION} run store.")
            # Rewriting the root metadata first also drops consolidated metadata, which
            # would otherwise show readers the shapes of the finished run.
            root.update_attributes({"status": "running", "updated": _now()})
            writer = cls(path, root, lock)
            with quiet_listing():
                on_disk = [gname for gname, _ in root.groups()]
            for gname in on_disk:
                if gname not in writer.committed:  # registration never committed: a crash
                    del root[gname]
            for gname, n in writer.committed.items():
                for arr, axis, _ in writer._appended(gname).values():
                    if arr.shape[axis] != n:
                        arr.resize(tuple(n if i == axis else s for i, s in enumerate(arr.shape)))
        except BaseException:
            release_lock(path, lock)
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
        schema needs `append_dim` and declares everything in `extra`. Does nothing if the
        group already exists (a resumed run).
        """
        if name in self.committed:
            return
        spec = GROUPS.get(name)
        if spec is None and append_dim is None:
            raise ValueError(f"group {name!r} is not in the schema: give its append_dim")
        adim = spec.append_dim if spec else append_dim
        if adim in coords:
            raise ValueError(f"group {name!r}: the append dim {adim!r} takes its values from records")
        variables = {**(all_vars(spec) if spec else {}), **(extra or {})}
        for dim, values in coords.items():  # every dim gets a coordinate, schema or not
            if dim not in variables:
                kind = "str" if np.asarray(values).dtype.kind in "UOT" else "int64"
                variables[dim] = Var((dim,), kind, "1", dim.replace("_", " "))
        if adim not in variables:
            variables[adim] = Var((adim,), "int64", "1", adim.replace("_", " "))
        for vname, var in variables.items():
            if not var.units or not var.long_name:
                raise ValueError(f"{name}/{vname}: every variable needs units and long_name")
            unnamed = [d for d in var.dims if d != adim and d not in coords]
            if unnamed:
                raise ValueError(f"group {name!r}: {vname!r} uses dims {unnamed} with no coordinate")
        static = dict(static or {})
        group = self._root.create_group(name, overwrite=True)
        group.attrs.update({"append_dim": adim})
        chunk = spec.chunk if spec else 1024
        for vname, var in variables.items():
            attrs = {"units": var.units, "long_name": var.long_name}
            if adim in var.dims:
                shape = tuple(0 if d == adim else len(coords[d]) for d in var.dims)
                chunks = tuple(chunk if d == adim else max(n, 1) for d, n in zip(var.dims, shape))
                group.create_array(
                    vname, shape=shape, chunks=chunks, dtype=_zarr_dtype(var.dtype),
                    dimension_names=var.dims, attributes=attrs, fill_value=_fill(var.dtype),
                )
                continue
            if vname in coords and var.dims == (vname,):
                values = np.asarray(coords[vname])
            elif vname in static:
                values = np.asarray(static[vname])
            else:
                raise ValueError(f"group {name!r}: no values for fixed variable {vname!r}")
            values = values.astype(str) if var.dtype == "str" else values.astype(var.dtype)
            expected = tuple(len(coords[d]) for d in var.dims)
            if values.shape != expected:
                raise ValueError(f"{name}/{vname}: expected shape {expected} for dims {var.dims}, got {values.shape}")
            if spec is not None and vname in all_vars(spec):
                _check_finite_record(name, vname, var, values)
            arr = group.create_array(
                vname, shape=values.shape, dtype=_zarr_dtype(var.dtype),
                dimension_names=var.dims, attributes=attrs, fill_value=_fill(var.dtype),
            )
            if values.size:
                arr[...] = values
        self.committed[name] = 0
        self._buffers[name] = []
        self._write_commit()

    def _appended(self, gname: str) -> dict[str, tuple[zarr.Array, int, bool]]:
        """Arrays of `gname` that grow along its append dim: name -> (array, axis, allow_nan)."""
        if gname not in self._targets:
            group = self._root[gname]
            spec = GROUPS.get(gname)
            adim = spec.append_dim if spec else group.attrs["append_dim"]
            schema_vars = all_vars(spec) if spec else {}
            with quiet_listing():
                arrays = list(group.arrays())
            self._targets[gname] = {
                n: (a, _dims(a).index(adim), schema_vars[n].allow_nan if n in schema_vars else True)
                for n, a in arrays
                if adim in _dims(a)
            }
        return self._targets[gname]

    def appended_variables(self, group: str) -> list[str]:
        """Names of the variables every record of `group` must give (those with its append dim)."""
        return sorted(self._appended(group))

    def append(self, group: str, **arrays: Any) -> None:
        """Buffer one or more records of `group` until `commit()`.

        Give every variable that has the group's append dim, each with the append dim as its
        leading axis (then its other dims in schema order), all with the same leading length.
        """
        if group not in self.committed:
            raise KeyError(f"group {group!r} was not added")
        targets = self._appended(group)
        missing, unknown = set(targets) - set(arrays), set(arrays) - set(targets)
        if missing or unknown:
            raise ValueError(f"{group}: record is missing {sorted(missing)} / has unknown {sorted(unknown)}")
        record = {k: np.asarray(v) for k, v in arrays.items()}
        lengths = {k: (v.shape[0] if v.ndim else None) for k, v in record.items()}
        if len(set(lengths.values())) != 1 or None in lengths.values():
            raise ValueError(f"{group}: variables have different record counts {lengths}")
        spec = GROUPS.get(group)
        for name, data in record.items():
            arr, axis, allow_nan = targets[name]
            rest = tuple(s for i, s in enumerate(arr.shape) if i != axis)
            if data.shape[1:] != rest:
                raise ValueError(f"{group}/{name}: record shape {data.shape[1:]} != {rest}")
            if not allow_nan and spec is not None:
                _check_finite_record(group, name, all_vars(spec)[name], data)
        self._buffers.setdefault(group, []).append(record)

    def commit(self) -> None:
        """Write buffered records, then advance the commit counter (the crash-safety point)."""
        for gname, records in self._buffers.items():
            if not records:
                continue
            n = self.committed[gname]
            added = 0
            for name, (arr, axis, _) in self._appended(gname).items():
                data = np.concatenate([r[name] for r in records], axis=0)
                added = len(data)
                if arr.shape[axis] != n:  # retried after an error mid-commit
                    arr.resize(tuple(n if i == axis else s for i, s in enumerate(arr.shape)))
                if data.dtype.kind in "UOT":
                    data = data.astype(str)
                arr.append(np.moveaxis(data, 0, axis), axis=axis)
            self.committed[gname] = n + added
            records.clear()
        self._write_commit()

    def rollback(self, committed: Mapping[str, int]) -> None:
        """Forget committed records beyond `committed` (group -> length; absent groups -> 0),
        e.g. to return to the state a training checkpoint was taken in. Commits at once."""
        for gname, n in self.committed.items():
            keep = int(committed.get(gname, 0))
            if keep > n:
                raise ValueError(f"cannot roll {gname!r} forward from {n} to {keep} records")
            self._buffers[gname] = []
            for arr, axis, _ in self._appended(gname).values():
                if arr.shape[axis] != keep:
                    arr.resize(tuple(keep if i == axis else s for i, s in enumerate(arr.shape)))
            self.committed[gname] = keep
        self._write_commit()

    def replace_config(self, config: Mapping[str, Any]) -> None:
        """Store `config` as the run's full config, in one commit (a resumed run given more steps)."""
        self._write_commit(config=json.dumps(dict(config), sort_keys=True))

    def _write_commit(self, **extra: Any) -> None:
        self.commit_count += 1
        self._root.update_attributes(
            {"committed": dict(self.committed), "commit": self.commit_count, "updated": _now(), **extra}
        )

    def close(self, status: str = "complete") -> None:
        """Commit what is buffered, set the final status, consolidate, release the lock.

        A store of a kind that lacks its required groups cannot be marked complete (readers
        would refuse it): its records are committed, it stays `running`, and ValueError is raised.
        """
        if self._closed:
            return
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        try:
            if status != "failed":
                self.commit()
            kind = self._root.attrs["kind"]
            absent = [g for g in REQUIRED_GROUPS.get(kind, ()) if g not in self.committed]
            if status == "complete" and absent:
                raise ValueError(
                    f"a complete {kind} store needs group(s) {absent}; the store stays 'running'"
                )
            self._write_commit(status=status)
            if status == "complete":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # consolidated metadata is not yet in the v3 spec
                    zarr.consolidate_metadata(LocalStore(self.path))
        finally:
            self._closed = True
            release_lock(self.path, self._lock)

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is KeyboardInterrupt:
            # Interrupted by the user: keep what was committed, leave it resumable.
            self.close(status="running")
        else:
            self.close(status="failed" if exc_type else "complete")


def _check_finite_record(group: str, name: str, var: Var, data: np.ndarray) -> None:
    if not var.allow_nan and data.dtype.kind in "fc" and not np.isfinite(data).all():
        raise ValueError(
            f"{group}/{name}: NaN or infinite values, where the schema requires finite numbers"
        )


__all__ = ["LOCK_NAME", "PARTIAL_SUFFIX", "RunWriter", "engine_version", "pack"]
