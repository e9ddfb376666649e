"""Metadata checks of one store group against the schema, made before any chunk is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.record import zarrio
from engine.record.errors import StoreError
from engine.record.schema import GROUPS, Group, all_vars
from engine.record.zarrio import ArrayInfo
from engine.record.zipsafe import Limits


@dataclass(frozen=True)
class GroupPlan:
    """A checked group: each array with the shape of its committed prefix, and dim sizes."""

    name: str
    group: Any
    append_dim: str
    arrays: dict[str, tuple[ArrayInfo, tuple[int, ...]]]
    sizes: dict[str, tuple[int, str]]
    """dim -> (length, the variable or record that set it)."""


def plan_group(gname: str, group: Any, n: int, limits: Limits) -> GroupPlan:
    """Check group `gname` (committed length `n` along its append dim) on metadata only."""
    spec = GROUPS.get(gname)
    arrays = zarrio.list_arrays(group)
    append_dim = spec.append_dim if spec else group.attrs.get("append_dim")
    if not isinstance(append_dim, str) or not append_dim:
        raise StoreError(f"Group {gname!r} is not in the schema and does not declare its append dim.")
    if spec is not None:
        absent = [v for v, var in all_vars(spec).items() if v not in arrays and not var.optional]
        if absent:
            raise StoreError(f"Group {gname!r} is missing variable(s) {absent}.")
    sizes: dict[str, tuple[int, str]] = {append_dim: (n, "the commit record")}
    planned: dict[str, tuple[ArrayInfo, tuple[int, ...]]] = {}
    for name, info in arrays.items():
        _check_array(gname, name, info, spec, append_dim, n, sizes, limits)
        shape = tuple(n if d == append_dim else s for d, s in zip(info.dims or (), info.shape))
        planned[name] = (info, shape)
    return GroupPlan(gname, group, append_dim, planned, sizes)


def _check_array(
    gname: str, name: str, info: ArrayInfo, spec: Group | None, append_dim: str, n: int,
    sizes: dict[str, tuple[int, str]], limits: Limits,
) -> None:
    where = f"{gname}/{name}"
    if info.dims is None or any(not isinstance(d, str) for d in info.dims) or len(info.dims) != len(info.shape):
        raise StoreError(f"{where} has no dimension names; every array must name its dims.")
    if len(set(info.dims)) != len(info.dims):
        raise StoreError(f"{where} repeats a dim in {info.dims}.")
    itemsize = max(info.dtype.itemsize, 1)
    nbytes = float(np.prod(info.shape, dtype=np.float64)) * itemsize
    if nbytes > limits.max_array_bytes:
        raise StoreError(
            f"{where} declares shape {info.shape} ({nbytes / 2**30:.3g} GiB), beyond the "
            f"{limits.max_array_bytes / 2**30:.3g} GiB limit per array."
        )
    chunk_bytes = float(np.prod(info.chunk_shape, dtype=np.float64)) * itemsize
    if chunk_bytes > limits.max_chunk_bytes:
        raise StoreError(
            f"{where} declares chunks of shape {info.chunk_shape} ({chunk_bytes / 2**20:.3g} MiB), "
            f"beyond the {limits.max_chunk_bytes / 2**20:.3g} MiB limit per chunk."
        )
    for key in ("units", "long_name"):
        if not isinstance(info.attrs.get(key), str):
            raise StoreError(f"{where} lacks the {key!r} attribute (every variable needs one).")
    if spec is not None and name in all_vars(spec):
        expected = all_vars(spec)[name]
        if info.dims != expected.dims:
            raise StoreError(f"{where} has dims {info.dims}; the schema says {expected.dims}.")
        want_kind = "U" if expected.dtype == "str" else np.dtype(expected.dtype).kind
        if info.dtype.kind != want_kind and not (want_kind == "U" and info.dtype.kind in "UOT"):
            raise StoreError(f"{where} has dtype {info.dtype}; the schema says {expected.dtype}.")
    for dim, length in zip(info.dims, info.shape):
        if dim == append_dim:
            if length < n:
                raise StoreError(
                    f"{where} holds {length} record(s) along {dim!r} but {n} were committed: "
                    "the store is truncated or its arrays have ragged lengths."
                )
            continue
        if dim in sizes and sizes[dim][0] != length:
            raise StoreError(
                f"Ragged lengths in group {gname!r}: dim {dim!r} is {length} long in {name!r} "
                f"but {sizes[dim][0]} in {sizes[dim][1]!r}."
            )
        sizes.setdefault(dim, (length, name))
