"""The replay buffer of a training run: episodes, per-dimension histograms by data age, and
pages of transitions. Pure functions on a lazily opened tree.

Memory stays bounded by the block, not the buffer: every reduction reads the `replay` group in
blocks of `BLOCK_ROWS` steps (one block of `obs` of a 17-dim env is ~1 MB), and a transition
page reads only its own rows (`isel` on the lazy variables, so only the chunks holding them).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import xarray as xr

GROUP = "replay"
BLOCK_ROWS = 16_384
"""Steps read at once by the reductions."""
VARIABLES = {"obs": "obs_dim", "action": "act_dim", "next_obs": "obs_dim"}
"""Per-dimension variables a histogram can show, with their dim."""
END_TYPES = ("terminated", "time limit", "open")
"""How an episode ends: a true terminal, a time-limit cut, or not yet (the buffer's last)."""
_EPISODE_COLUMNS = ["episode", "reward", "terminated", "truncated", "policy_version"]


def available(tree: xr.DataTree) -> bool:
    """Whether the run has a replay group with at least one committed step."""
    return GROUP in tree.children and tree[GROUP].sizes.get("step", 0) > 0


def replay(tree: xr.DataTree) -> xr.Dataset:
    """The replay group as a lazy Dataset (nothing is read)."""
    return tree[GROUP].to_dataset()


def n_steps(tree: xr.DataTree) -> int:
    """Committed transitions."""
    return int(tree[GROUP].sizes["step"])


def blocks(n: int, rows: int = BLOCK_ROWS) -> Iterator[slice]:
    """Consecutive slices of at most `rows` covering range(n)."""
    for lo in range(0, n, rows):
        yield slice(lo, min(lo + rows, n))


def episodes(tree: xr.DataTree, rows: int = BLOCK_ROWS) -> pd.DataFrame:
    """One row per episode: return, length, first and last step, how it ended, and the range
    of policy versions that collected it. Read in blocks of `rows` steps."""
    ds = replay(tree)[_EPISODE_COLUMNS]
    parts = []
    for sl in blocks(ds.sizes["step"], rows):
        block = ds.isel(step=sl).load().to_dataframe().reset_index()
        parts.append(block.groupby("episode").agg(
            ret=("reward", "sum"), length=("reward", "size"), first_step=("step", "min"),
            last_step=("step", "max"), terminated=("terminated", "any"), truncated=("truncated", "any"),
            version_min=("policy_version", "min"), version_max=("policy_version", "max"),
        ))
    # an episode spanning two blocks has a partial row in each: combine them
    out = pd.concat(parts).groupby(level=0).agg({
        "ret": "sum", "length": "sum", "first_step": "min", "last_step": "max", "terminated": "any",
        "truncated": "any", "version_min": "min", "version_max": "max",
    })
    out["end"] = np.where(out["terminated"], END_TYPES[0], np.where(out["truncated"], END_TYPES[1], END_TYPES[2]))
    out = out.rename(columns={"ret": "return"}).reset_index()
    return out[["episode", "return", "length", "end", "first_step", "last_step", "version_min", "version_max"]]


def _age_groups(v_min: int, v_max: int, groups: int) -> np.ndarray:
    """First policy version of each age group: equal-width runs of consecutive versions."""
    span = v_max - v_min + 1
    k = max(1, min(groups, span))
    return v_min + (np.arange(k) * span) // k


def histograms(tree: xr.DataTree, var: str, *, bins: int = 30, age_groups: int = 4,
               rows: int = BLOCK_ROWS) -> xr.Dataset:
    """Counts of `var` per dimension, bin and data age, exact, in two passes over blocks.

    Pass 1: per-dimension range and the range of `policy_version`. Pass 2: counts with `bins`
    equal bins per dimension over its range (as `numpy.histogram`: left-closed, the last bin
    closed), split into up to `age_groups` groups of consecutive policy versions (oldest first).
    Memory: one block plus the counts (dim x age x bin).
    """
    dim = VARIABLES[var]
    ds = replay(tree)
    n, d = ds.sizes["step"], ds.sizes[dim]
    lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
    v_lo, v_hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for sl in blocks(n, rows):
        x = ds[var].isel(step=sl).values  # (rows, d)
        lo, hi = np.minimum(lo, x.min(axis=0)), np.maximum(hi, x.max(axis=0))
        pv = ds["policy_version"].isel(step=sl).values
        v_lo, v_hi = min(v_lo, int(pv.min())), max(v_hi, int(pv.max()))
    hi = np.where(hi > lo, hi, lo + 1.0)  # a constant dimension gets a unit-wide range
    edges = np.linspace(lo, hi, bins + 1, axis=1)  # (d, bins + 1)
    starts = _age_groups(v_lo, v_hi, age_groups)
    k = len(starts)
    counts = np.zeros((d, k, bins), dtype=np.int64)
    for sl in blocks(n, rows):
        x = ds[var].isel(step=sl).values
        age = np.searchsorted(starts, ds["policy_version"].isel(step=sl).values, side="right") - 1
        for j in range(d):
            idx = np.searchsorted(edges[j], x[:, j], side="right") - 1
            idx[x[:, j] == edges[j, -1]] = bins - 1  # the last bin is closed
            counts[j] += np.bincount(age * bins + idx, minlength=k * bins).reshape(k, bins)
    ends = np.append(starts[1:] - 1, v_hi)
    return xr.Dataset(
        {
            "count": ((dim, "age", "bin"), counts, {"long_name": f"transitions per bin of {var}", "units": "1"}),
            "bin_left": ((dim, "bin"), edges[:, :-1], {"long_name": "left bin edge", "units": ds[var].attrs.get("units", "")}),
            "bin_right": ((dim, "bin"), edges[:, 1:], {"long_name": "right bin edge", "units": ds[var].attrs.get("units", "")}),
            "version_first": ("age", starts, {"long_name": "first policy version of the age group", "units": "1"}),
            "version_last": ("age", ends, {"long_name": "last policy version of the age group", "units": "1"}),
        },
        coords={dim: ds[dim].values, "age": np.arange(k), "bin": np.arange(bins)},
        attrs={"variable": var, "long_name": ds[var].attrs.get("long_name", var), "n_steps": n},
    )


def age_label(hist: xr.Dataset, age: int) -> str:
    """`versions a–b` (or `version a`) of an age group."""
    a, b = int(hist["version_first"][age]), int(hist["version_last"][age])
    return f"version {a}" if a == b else f"versions {a}–{b}"


def page_count(tree: xr.DataTree, size: int) -> int:
    """Pages of `size` transitions (at least 1)."""
    return max(1, -(-n_steps(tree) // size))


def transition_page(tree: xr.DataTree, page: int, size: int) -> pd.DataFrame:
    """Transitions `page * size` to `(page + 1) * size` (0-based page), one column per scalar
    and per dimension (`obs[3]`). Reads only those rows: `isel` on the lazy variables."""
    ds = replay(tree)
    n = ds.sizes["step"]
    if not 0 <= page < page_count(tree, size):
        raise ValueError(f"page {page} is outside 0..{page_count(tree, size) - 1}")
    part = ds.isel(step=slice(page * size, min((page + 1) * size, n)))
    cols: dict[str, np.ndarray] = {"step": part["step"].values}
    for name in ("episode", "policy_version", "reward", "terminated", "truncated"):
        cols[name] = part[name].values
    for name, dim in VARIABLES.items():
        values = part[name].values  # (size, d)
        for j, label in enumerate(part[dim].values):
            cols[f"{name}[{label}]"] = values[:, j]
    for name in sorted(set(part.data_vars) - set(cols) - set(VARIABLES)):
        if part[name].dims == ("step",):  # extra per-step variables (e.g. holdout)
            cols[name] = part[name].values
    return pd.DataFrame(cols)
