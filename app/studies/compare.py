"""Several runs on one study page: their configs (seeds of one config are grouped and share a
colour), matching snapshots by training step, and the runs' identity in exported data.

Pure functions on opened runs (`xarray.DataTree`) keyed by a display name (`run_names`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from app.studies import training

IDENTITY = ("run_id", "kind", "env_id", "algorithm", "seed", "engine_version")
"""Root attributes that say which run a value came from (exports carry them)."""


def config_keys(trees: Mapping[str, xr.DataTree]) -> dict[str, str]:
    """Run name -> its config key (`training.config_key`: the config JSON without seeds)."""
    return {name: training.config_key(tree) for name, tree in trees.items()}


def _label_key(tree: xr.DataTree, key: str) -> str:
    """The config key with the run's `algorithm` and `env_id` attributes added as `algo` and
    `env_id` where the config has none (a study's config), so its label starts with them."""
    cfg = json.loads(key)
    extra = {k: tree.attrs[a] for k, a in (("algo", "algorithm"), ("env_id", "env_id"))
             if k not in cfg and a in tree.attrs}
    return json.dumps({**extra, **cfg}, sort_keys=True, default=str)


def config_groups(trees: Mapping[str, xr.DataTree]) -> dict[str, list[str]]:
    """Config label (`training.config_labels`: `algo · env`, plus keys telling configs apart)
    -> the names of its runs (seeds of one config); labels sorted, runs in the order given."""
    keys = {name: _label_key(trees[name], key) for name, key in config_keys(trees).items()}
    labels = training.config_labels(list(keys.values()))
    groups: dict[str, list[str]] = {}
    for name, key in keys.items():
        groups.setdefault(labels[key], []).append(name)
    return dict(sorted(groups.items()))


def group_keys(trees: Mapping[str, xr.DataTree]) -> dict[str, str]:
    """Config label -> config key, for every config of `config_groups`."""
    keys = config_keys(trees)
    return {label: keys[names[0]] for label, names in config_groups(trees).items()}


def at_or_before(steps: Sequence[int] | np.ndarray, step: int | None) -> int:
    """Position of the last of `steps` (increasing) at or before `step`: the first if all are
    later, the last if `step` is None. `ValueError` for no steps."""
    steps = np.asarray(steps)
    if len(steps) == 0:
        raise ValueError("no snapshot yet")
    if step is None:
        return len(steps) - 1
    before = np.flatnonzero(steps <= step)
    return int(before[-1]) if len(before) else 0


def runs_attrs(trees: Mapping[str, xr.DataTree], **extra: Any) -> dict[str, Any]:
    """Provenance attributes for exported data: one run's identity (`run_id`, `env_id`, ...) as
    scalars; for several runs, each attribute as a list in the order of `runs` (their names)."""
    if len(trees) == 1:
        return training.run_attrs(next(iter(trees.values())), **extra)
    out: dict[str, Any] = {"runs": list(trees)}
    for k in IDENTITY:
        out[k] = [str(t.attrs.get(k, "")) for t in trees.values()]
    return {**out, **extra}


def stack_runs(parts: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """One dataset of several runs' plotted data along a new `run` dim (outer join: a run
    without a value at some coordinate has NaN there; per-run coordinates such as `env_step`
    gain the `run` dim). Attributes: `runs_attrs`-style lists are the caller's."""
    if len(parts) == 1:
        return next(iter(parts.values()))
    out = xr.concat(list(parts.values()), dim=xr.Variable("run", list(parts)), join="outer",
                    coords="different", compat="equals", combine_attrs="drop_conflicts")
    out["run"].attrs = {"long_name": "run", "units": "1"}
    return out
