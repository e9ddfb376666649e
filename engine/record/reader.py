"""`open_run`: validate a run store against the schema and return its committed prefix.

Everything is checked on metadata first (root attributes, groups, dims, dtypes, declared
shapes); only then are coordinates and, for variables where NaN is forbidden, values read.
Data variables stay lazy: a page that plots one slice reads only the chunks it needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from engine.record import zarrio
from engine.record.errors import StoreError
from engine.record.schema import GROUPS, KINDS, REQUIRED_GROUPS, SCHEMA, SCHEMA_VERSION, STATUSES, all_vars
from engine.record.zarrio import ArrayInfo
from engine.record.zipsafe import DEFAULT_LIMITS, Limits

Source = str | os.PathLike[str] | bytes | IO[bytes]


class _PrefixArray(BackendArray):
    """Lazy view of the first `shape[0]` rows of a zarr array (the committed prefix)."""

    def __init__(self, array: Any, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.array = array
        self.shape = shape
        self.dtype = dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        return zarrio.plain_strings(np.asarray(self.array[key]))


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


def open_run(source: Source, *, limits: Limits = DEFAULT_LIMITS, check_values: bool = True) -> xr.DataTree:
    """Open a run store (`.zarr` directory, `.zarr.zip` file, or zip bytes) as a DataTree.

    Only committed records are visible. Raises `StoreError` with a plain message for any
    malformed, unsafe or unknown store. With `check_values`, variables where the schema
    forbids NaN/inf are read and checked.
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
            raise StoreError(
                f"This complete {attrs['kind']} store lacks required group(s) {absent}."
            )
    nodes: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs=attrs)}
    for gname, n in committed.items():
        group = root[gname]
        nodes[f"/{gname}"] = _read_group(gname, group, int(n), limits, check_values)
    return xr.DataTree.from_dict(nodes)


def _check_root(attrs: dict[str, Any]) -> dict[str, Any]:
    if attrs.get("schema") != SCHEMA:
        raise StoreError(
            "This Zarr store is not an mbrl-workbench run store "
            f"(its 'schema' attribute is {attrs.get('schema')!r}, expected {SCHEMA!r})."
        )
    version = attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"The store declares schema version {version!r}; this engine reads version "
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
    return attrs


def _read_group(gname: str, group: Any, n: int, limits: Limits, check_values: bool) -> xr.Dataset:
    spec = GROUPS.get(gname)
    arrays = zarrio.list_arrays(group)
    append_dim = spec.append_dim if spec else group.attrs.get("append_dim")
    if append_dim is None:
        raise StoreError(f"Group {gname!r} is not in the schema and does not declare its append dim.")
    if spec is not None:
        absent = [v for v in all_vars(spec) if v not in arrays]
        if absent:
            raise StoreError(f"Group {gname!r} is missing variable(s) {absent}.")
    sizes: dict[str, tuple[int, str]] = {append_dim: (n, "the commit record")}
    for name, info in arrays.items():
        _check_array(gname, name, info, spec, append_dim, n, sizes, limits)
    variables: dict[str, xr.Variable] = {}
    for name, info in arrays.items():
        shape = (n, *info.shape[1:]) if info.dims[:1] == (append_dim,) else info.shape
        attrs = dict(info.attrs)
        handle = zarrio.array_handle(group, name)
        if name in sizes and info.dims == (name,):  # coordinates are small: load them now
            data: Any = zarrio.read_array(group, name, slice(0, shape[0]))
        else:
            data = indexing.LazilyIndexedArray(_PrefixArray(handle, shape, info.dtype))
        forbid_nan = spec is not None and name in all_vars(spec) and not all_vars(spec)[name].allow_nan
        if check_values and forbid_nan and info.dtype.kind == "f":
            _check_finite(f"{gname}/{name}", handle, shape)
        variables[name] = xr.Variable(info.dims, data, attrs=attrs)
    coords = {k: v for k, v in variables.items() if k in sizes and v.dims == (k,)}
    data_vars = {k: v for k, v in variables.items() if k not in coords}
    missing_coords = [d for d in sizes if d not in coords]
    if missing_coords:
        raise StoreError(f"Group {gname!r} has dims without a coordinate: {missing_coords}.")
    try:
        return xr.Dataset(data_vars, coords=coords, attrs=dict(group.attrs))
    except ValueError as exc:
        raise StoreError(f"Group {gname!r} is inconsistent: {exc}") from None


def _check_finite(where: str, handle: Any, shape: tuple[int, ...], rows: int = 65536) -> None:
    """Reject NaN/inf, reading the committed prefix in blocks so memory stays bounded."""
    if not shape or 0 in shape:
        if shape == ():
            if not np.isfinite(np.asarray(handle[()])).all():
                raise StoreError(f"{where} is NaN or infinite, where the schema requires a finite number.")
        return
    for lo in range(0, shape[0], rows):
        block = np.asarray(handle[lo : min(lo + rows, shape[0])])
        bad = int((~np.isfinite(block)).sum())
        if bad:
            raise StoreError(
                f"{where} holds {bad} NaN or infinite value(s) (from row {lo}), "
                "where the schema requires finite numbers."
            )


def _check_array(
    gname: str, name: str, info: ArrayInfo, spec: Any, append_dim: str, n: int,
    sizes: dict[str, tuple[int, str]], limits: Limits,
) -> None:
    where = f"{gname}/{name}"
    if info.dims is None or any(d is None for d in info.dims) or len(info.dims) != len(info.shape):
        raise StoreError(f"{where} has no dimension names; every array must name its dims.")
    nbytes = int(np.prod(info.shape, dtype=np.float64)) * max(info.dtype.itemsize, 1)
    if nbytes > limits.max_array_bytes:
        raise StoreError(
            f"{where} declares shape {info.shape} ({nbytes / 2**30:.3g} GiB), beyond the "
            f"{limits.max_array_bytes / 2**30:.0f} GiB limit per array."
        )
    for key in ("units", "long_name"):
        if key not in info.attrs:
            raise StoreError(f"{where} lacks the {key!r} attribute.")
    if spec is not None and name in all_vars(spec):
        expected = all_vars(spec)[name]
        if info.dims != expected.dims:
            raise StoreError(f"{where} has dims {info.dims}; the schema says {expected.dims}.")
        want_kind = "U" if expected.dtype == "str" else np.dtype(expected.dtype).kind
        if info.dtype.kind != want_kind and not (want_kind == "U" and info.dtype.kind in "UOT"):
            raise StoreError(f"{where} has dtype {info.dtype}; the schema says {expected.dtype}.")
    for i, dim in enumerate(info.dims):
        length = info.shape[i]
        if dim == append_dim and i == 0:
            if length < n:
                raise StoreError(
                    f"{where} holds {length} record(s) along {dim!r} but {n} were committed: "
                    "the store is truncated or its arrays have ragged lengths."
                )
            continue
        if dim == append_dim:
            raise StoreError(f"{where} has the append dim {dim!r} in a position other than first.")
        if dim in sizes and sizes[dim][0] != length:
            raise StoreError(
                f"Ragged lengths in group {gname!r}: dim {dim!r} is {length} long in {name!r} "
                f"but {sizes[dim][0]} in {sizes[dim][1]!r}."
            )
        sizes.setdefault(dim, (length, name))


def summarize(tree: xr.DataTree) -> RunSummary:
    """Identity and group sizes of an opened run, for `validate` and the runs library."""
    a = tree.attrs
    groups = {name: dict(node.dataset.sizes) for name, node in tree.children.items()}
    return RunSummary(
        kind=a["kind"], env_id=a.get("env_id", ""), algorithm=a.get("algorithm", ""),
        seed=int(a.get("seed", 0)), status=a["status"], run_id=a["run_id"],
        engine_version=a.get("engine_version", ""), commit=int(a["commit"]), groups=groups,
    )
