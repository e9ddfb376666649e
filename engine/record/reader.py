"""`open_run`: validate a run store against the schema and return its committed prefix.

Everything is checked on metadata first (root attributes, then every group's dims, dtypes
and declared shapes); only then are coordinates and, for variables where NaN is forbidden,
values read (those of big variables when they are read, chunk by chunk). Data variables stay
lazy (xarray's own lazily indexed arrays over zarr): a page that plots one slice reads only the
chunks it needs, and never anything past the committed prefix. No dask is imported (its import
alone costs ~0.8 s of an app page's cold start); `chunked=True` makes numeric variables larger
than BIG_BYTES dask arrays whose chunks are whole multiples of the on-disk chunks along the
append dim (`read_chunks`), so reductions over them stream chunk by chunk in bounded memory.
Sources may be fsspec URLs (`memory://`, `s3://`...), opened read-only (`zarrio.open_root`).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from engine.record import xarray_dask, zarrio
from engine.record.errors import StoreError
from engine.record.schema import GROUPS, KINDS, REQUIRED_GROUPS, SCHEMA, SCHEMA_VERSION, STATUSES, all_vars
from engine.record.validate import GroupPlan, plan_group
from engine.record.zipsafe import DEFAULT_LIMITS, Limits

Source = str | os.PathLike[str] | bytes | IO[bytes]

xarray_dask.spare_import()  # before any store is opened: xarray would import dask on the first one

_BLOCK_BYTES = 64 * 2**20
"""Most bytes the finiteness check holds at once."""

BIG_BYTES = 2**20
"""Variables with more committed bytes than this are not read at opening: where NaN is
forbidden, each read checks what it read; with `open_run(chunked=True)` they are dask-backed."""

DASK_CHUNK_BYTES = 32 * 2**20
"""Target size of one dask chunk: as many on-disk chunks along the append dim as fit in it
(on-disk chunks are small, ~0.1-1 MiB; one dask task per disk chunk would cost more in
scheduling than in reading)."""


class _PrefixArray(BackendArray):
    """Lazy view of the committed prefix of a zarr array (`shape` <= the stored shape)."""

    def __init__(self, array: Any, shape: tuple[int, ...], dtype: np.dtype, where: str,
                 check_finite: bool = False) -> None:
        self.array = array
        self.shape = shape
        self.dtype = dtype
        self.where = where
        self.check_finite = check_finite
        """Refuse NaN/inf in whatever is read (the schema forbids them; checked as chunks are
        read rather than at opening, for variables too big to read whole at opening)."""

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, indexing.ExplicitIndexer):  # dask asks with a plain tuple of slices
            return self._getitem(key if isinstance(key, tuple) else (key,))
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        raw, post = prefix_key(key, self.shape)
        try:
            data = np.asarray(self.array[raw])
        except Exception as exc:  # corrupt chunk, bad codec, unreadable zip member...
            raise StoreError(f"{self.where}: its data could not be read ({exc}).") from None
        for axis, p in enumerate(post):
            if isinstance(p, slice):
                if p != slice(None):
                    data = data[(slice(None),) * axis + (p,)]
            else:
                data = np.take(data, p, axis=axis)
        if self.check_finite and not np.isfinite(data).all():
            raise StoreError(f"{self.where} holds {int((~np.isfinite(data)).sum())} NaN or infinite value(s) "
                             "in the part read, where the schema requires finite numbers.")
        return zarrio.plain_strings(data)


def prefix_key(key: tuple[Any, ...], shape: tuple[int, ...]) -> tuple[tuple[Any, ...], list[Any]]:
    """Turn a basic key relative to `shape` into one for the stored array that never reaches
    past `shape` (open or negative bounds would reach the uncommitted tail), plus what to
    apply to the result (flips for negative steps, picks for integer arrays)."""
    key = tuple(key) + (slice(None),) * (len(shape) - len(tuple(key)))
    raw: list[Any] = []
    post: list[Any] = []
    for k, size in zip(key, shape, strict=True):
        if isinstance(k, (int, np.integer)):
            i = int(k) + (size if k < 0 else 0)
            if not 0 <= i < size:
                raise IndexError(f"index {int(k)} is out of bounds for a dim of length {size}")
            raw.append(i)  # the dim is dropped: nothing to apply afterwards
        elif isinstance(k, slice):
            idx = range(*k.indices(size))
            if len(idx) == 0:
                raw.append(slice(0, 0))
                post.append(slice(None))
            elif idx.step > 0:
                raw.append(slice(idx[0], idx[-1] + 1, idx.step))
                post.append(slice(None))
            else:
                raw.append(slice(idx[-1], idx[0] + 1, -idx.step))
                post.append(slice(None, None, -1))
        else:
            arr = np.asarray(k, dtype=np.int64)
            arr = np.where(arr < 0, arr + size, arr)
            if arr.size and (arr.min() < 0 or arr.max() >= size):
                raise IndexError(f"index out of bounds for a dim of length {size}")
            lo, hi = (int(arr.min()), int(arr.max()) + 1) if arr.size else (0, 0)
            raw.append(slice(lo, hi))
            post.append(arr - lo)
    return tuple(raw), post


@dataclass(frozen=True)
class RunSummary:
    """What `validate` prints: the identity of a run and the size of each group."""

    kind: str
    env_id: str
    algorithm: str
    seed: int
    status: str
    run_id: str
    engine_version: str
    commit: int
    groups: dict[str, dict[str, int]]


def open_run(source: Source, *, limits: Limits = DEFAULT_LIMITS, check_values: bool = True,
             chunked: bool = False) -> xr.DataTree:
    """Open a run store (`.zarr` directory, `.zarr.zip` file, zip bytes, or an fsspec URL of
    a store folder or zip, e.g. `s3://bucket/run.zarr`) read-only as a DataTree.

    Only committed records are visible. Raises `StoreError` with a plain message for any
    malformed, unsafe or unknown store. With `check_values`, variables where the schema
    forbids NaN/inf are checked: read whole at opening up to BIG_BYTES, bigger ones as they
    are read, each read of a bad part raising `StoreError`. Variables are lazy either way;
    `chunked` makes those over BIG_BYTES dask arrays in whole on-disk chunks (`read_chunks`),
    for reductions that stream them (`tree["replay"]["obs"].mean("step")` in bounded memory).
    """
    root = zarrio.open_root(source, limits)
    attrs = _check_root(dict(root.attrs))
    committed: dict[str, int] = attrs["committed"]
    on_disk = set(zarrio.list_groups(root))
    missing = [g for g in committed if g not in on_disk]
    if missing:
        raise StoreError(f"The store's commit record names group(s) {missing} that are not in it.")
    if attrs["status"] == "complete":
        absent = [g for g in REQUIRED_GROUPS[attrs["kind"]] if g not in committed]
        if absent:
            raise StoreError(f"This complete {attrs['kind']} store lacks required group(s) {absent}.")
    # Every group's metadata is checked before any chunk of any group is read.
    plans = {g: plan_group(g, root[g], int(n), limits) for g, n in committed.items()}
    nodes: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs=attrs)}
    for gname, plan in plans.items():
        nodes[f"/{gname}"] = _read_group(plan, check_values, chunked)
    return xr.DataTree.from_dict(nodes)


def _check_root(attrs: dict[str, Any]) -> dict[str, Any]:
    if "schema" not in attrs:
        raise StoreError(
            "This Zarr store is not an mbrl-workbench run store: its root has no 'schema' "
            f"attribute (expected {SCHEMA!r})."
        )
    if attrs["schema"] != SCHEMA:
        raise StoreError(
            "This Zarr store is not an mbrl-workbench run store "
            f"(its 'schema' attribute is {attrs['schema']!r}, expected {SCHEMA!r})."
        )
    version = attrs.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        what = "no schema version" if version is None else f"schema version {version!r}"
        raise StoreError(
            f"The store declares {what}; this engine reads version "
            f"{SCHEMA_VERSION}. Open it with the engine version that wrote it "
            f"({attrs.get('engine_version', 'unknown')})."
        )
    for key in ("kind", "status", "committed", "commit", "run_id", "config"):
        if key not in attrs:
            raise StoreError(f"The store's root attributes lack {key!r}.")
    if attrs["kind"] not in KINDS:
        raise StoreError(f"Unknown store kind {attrs['kind']!r}; expected one of {KINDS}.")
    if attrs["status"] not in STATUSES:
        raise StoreError(f"Unknown status {attrs['status']!r}; expected one of {STATUSES}.")
    committed = attrs["committed"]
    if not isinstance(committed, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in committed.values()
    ):
        raise StoreError("The store's commit record ('committed') is malformed.")
    if type(attrs["commit"]) is not int or attrs["commit"] < 0:
        raise StoreError("The store's commit counter ('commit') is not a non-negative integer.")
    return attrs


def _read_group(plan: GroupPlan, check_values: bool, chunked: bool) -> xr.Dataset:
    spec = GROUPS.get(plan.name)
    schema_vars = all_vars(spec) if spec else {}
    variables: dict[str, xr.Variable] = {}
    for name, (info, shape) in plan.arrays.items():
        where = f"{plan.name}/{name}"
        handle = info.handle if info.handle is not None else zarrio.array_handle(plan.group, name)
        forbid_nan = check_values and name in schema_vars and not schema_vars[name].allow_nan
        forbid_nan = forbid_nan and info.dtype.kind in "fc"
        lazy = _PrefixArray(handle, shape, info.dtype, where)
        if name in plan.sizes and info.dims == (name,):  # coordinates are small: load them now
            data: Any = lazy._getitem((slice(None),))
        elif info.dtype.kind in "biuf" and np.prod(shape, dtype=np.float64) * info.dtype.itemsize > BIG_BYTES:
            # big (the replay of a long run): checked as it is read, so opening never reads it
            # whole (the engine's writer refuses NaN there before anything is written)
            lazy.check_finite = forbid_nan
            forbid_nan = False
            data = (_dask_array(lazy, read_chunks(info, shape, plan.append_dim)) if chunked
                    else indexing.LazilyIndexedArray(lazy))
        else:  # small: read on first use (numpy then, where `.item()` works)
            data = indexing.LazilyIndexedArray(lazy)
        if forbid_nan:
            _check_finite(where, lazy, shape)
        variables[name] = xr.Variable(info.dims, data, attrs=dict(info.attrs))
    coords = {k: v for k, v in variables.items() if k in plan.sizes and v.dims == (k,)}
    data_vars = {k: v for k, v in variables.items() if k not in coords}
    missing_coords = [d for d in plan.sizes if d not in coords]
    if missing_coords:
        raise StoreError(f"Group {plan.name!r} has dims without a coordinate: {missing_coords}.")
    try:
        return xr.Dataset(data_vars, coords=coords, attrs=dict(plan.group.attrs))
    except ValueError as exc:
        raise StoreError(f"Group {plan.name!r} is inconsistent: {exc}") from None


def read_chunks(info: zarrio.ArrayInfo, shape: tuple[int, ...], append_dim: str) -> tuple[int, ...]:
    """Dask chunk shape for an array of committed `shape`: whole along every dim but the append
    dim, and along it the largest multiple of the on-disk chunk (shard) within DASK_CHUNK_BYTES."""
    dims = info.dims or ()
    if append_dim not in dims:
        return shape
    axis = dims.index(append_dim)
    disk = info.chunk_shape[axis] if len(info.chunk_shape) == len(shape) else shape[axis]
    row_bytes = int(np.prod(shape, dtype=np.int64)) // max(shape[axis], 1) * info.dtype.itemsize
    per_chunk = max(disk * row_bytes, 1)
    rows = max(1, DASK_CHUNK_BYTES // per_chunk) * max(disk, 1)
    return tuple(max(1, min(rows, n)) if i == axis else max(n, 1) for i, n in enumerate(shape))


def _dask_array(lazy: _PrefixArray, chunks: tuple[int, ...]) -> Any:
    import dask.array as da

    # a fresh name per opening: two stores (or two openings of a growing one) never share chunks
    return da.from_array(lazy, chunks=chunks, name=f"{lazy.where}-{uuid.uuid4().hex}", lock=False,
                         asarray=False, meta=np.empty((0,) * len(chunks), dtype=lazy.dtype))


def _check_finite(where: str, lazy: _PrefixArray, shape: tuple[int, ...]) -> None:
    """Reject NaN/inf in the committed prefix, reading it in blocks so memory stays bounded."""
    if shape == ():
        if not np.isfinite(lazy._getitem(())).all():
            raise StoreError(f"{where} is NaN or infinite, where the schema requires a finite number.")
        return
    if 0 in shape:
        return
    row_bytes = max(int(np.prod(shape[1:], dtype=np.int64)) * lazy.dtype.itemsize, 1)
    rows = max(1, _BLOCK_BYTES // row_bytes)
    for lo in range(0, shape[0], rows):
        block = lazy._getitem((slice(lo, min(lo + rows, shape[0])),))
        bad = int((~np.isfinite(block)).sum())
        if bad:
            raise StoreError(
                f"{where} holds {bad} NaN or infinite value(s) (from index {lo} along "
                "its first dim), where the schema requires finite numbers."
            )


def summarize(tree: xr.DataTree) -> RunSummary:
    """Identity and group sizes of an opened run, for `validate` and the runs library."""
    a = tree.attrs
    groups = {name: dict(node.dataset.sizes) for name, node in tree.children.items()}
    return RunSummary(
        kind=a["kind"], env_id=a.get("env_id", ""), algorithm=a.get("algorithm", ""),
        seed=int(a.get("seed", 0)), status=a["status"], run_id=a["run_id"],
        engine_version=a.get("engine_version", ""), commit=int(a["commit"]), groups=groups,
    )
