"""Training runs (kind `training`): their config, grouping runs into configs, provenance.

Pure functions on opened runs (`xarray.DataTree`). Two runs belong to the same *config* when
their stored configs (root attribute `config`, JSON) are equal after every key called `seed`
is dropped, at any depth: seeds of one config are aggregated on the learning-curves page and
share its colour.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import xarray as xr

KIND = "training"
"""The `kind` root attribute of the runs these studies read."""
SEED_KEY = "seed"
MAX_LABEL_KEYS = 3
"""At most this many differing config keys are added to a config's label."""


def config(tree: xr.DataTree) -> dict[str, Any]:
    """The run's full config (root attribute `config`, JSON text); {} if absent or unreadable."""
    raw = tree.attrs.get("config", "")
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        out = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _drop_seeds(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_seeds(v) for k, v in value.items() if k != SEED_KEY}
    if isinstance(value, list):
        return [_drop_seeds(v) for v in value]
    return value


def config_key(tree: xr.DataTree) -> str:
    """Canonical JSON of the config without its `seed` keys: equal for seeds of one config.

    A run without a readable config is its own config (keyed by its run id).
    """
    cfg = config(tree)
    if not cfg:
        return json.dumps({"run_id": str(tree.attrs.get("run_id", id(tree)))})
    return json.dumps(_drop_seeds(cfg), sort_keys=True, default=str)


def gamma(tree: xr.DataTree) -> float | None:
    """The agent's discount `agent.gamma` from the config, if recorded."""
    value = config(tree).get("agent", {}).get("gamma")
    return float(value) if isinstance(value, (int, float)) else None


def seed(tree: xr.DataTree) -> int | None:
    """The run's seed (root attribute, else the config's)."""
    value = tree.attrs.get("seed", config(tree).get(SEED_KEY))
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as one level of dotted keys (`agent.hidden`)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def config_labels(keys: Sequence[str]) -> dict[str, str]:
    """A short, distinct label per config key: `algo · env`, plus the keys that tell apart
    configs sharing that (e.g. `mve-ddpg · InvertedPendulum-v5 · horizon=3`)."""
    flat = {k: flatten(json.loads(k)) for k in dict.fromkeys(keys)}
    base = {k: " · ".join(str(f[n]) for n in ("algo", "env_id") if n in f) or "run" for k, f in flat.items()}
    labels = {}
    for k, f in flat.items():
        peers = [p for p in flat if base[p] == base[k]]
        label = base[k]
        if len(peers) > 1:
            names = sorted({n for p in peers for n in flat[p]})
            differ = [n for n in names if len({json.dumps(flat[p].get(n), default=str) for p in peers}) > 1]
            shown = [f"{n}={f.get(n)}" for n in differ[:MAX_LABEL_KEYS]]
            if len(differ) > MAX_LABEL_KEYS:
                shown.append("…")
            label = " · ".join([label, *shown])
        labels[k] = label
    seen: dict[str, int] = {}
    for k in labels:  # still equal (differences beyond the shown keys): number them
        seen[labels[k]] = seen.get(labels[k], 0) + 1
        if seen[labels[k]] > 1:
            labels[k] = f"{labels[k]} ({seen[labels[k]]})"
    return labels


def run_attrs(tree: xr.DataTree, **extra: Any) -> dict[str, Any]:
    """Provenance attributes for exported data: which run, which choices."""
    keys = ("run_id", "kind", "env_id", "algorithm", "seed", "engine_version")
    return {**{k: tree.attrs[k] for k in keys if k in tree.attrs}, **extra}


def group_dataset(tree: xr.DataTree, group: str) -> xr.Dataset:
    """The run's `group` as a Dataset; `ValueError` if it has none."""
    if group not in tree.children:
        raise ValueError(f"this run has no {group!r} group (kind {tree.attrs.get('kind')!r})")
    return tree[group].to_dataset()


def has_group(tree: xr.DataTree, group: str) -> bool:
    """Whether the run holds `group` with at least one committed record."""
    if group not in tree.children:
        return False
    sizes = tree[group].sizes
    return all(n > 0 for n in sizes.values()) and len(sizes) > 0
