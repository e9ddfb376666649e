"""A sweep file: fixed config fields, a grid of lists, and the runs (one store each) it expands to.

```yaml
out: runs/pendulum-sweep      # folder of the stores (relative to the sweep file)
config:                       # TrainConfig fields shared by every run
  env_id: InvertedPendulum-v5
  steps: 20000
grid:                         # every list is one axis of the cross product
  seed: [0, 1, 2]
  algo: [sac, mve-sac]
  agent.hidden: [64, 256]     # a dotted key sets one field of a nested config
```

Every key of `config` and `grid` is a TrainConfig field (`python -m engine train --print-config`);
`seeds`, `envs` and `algos` are accepted as the names of the `seed`, `env_id` and `algo` axes.
A run's store name is derived from its config alone (readable parts and a hash of the whole
config), so the same sweep file always maps a run to the same store: that is what makes a
re-run resume, and two runs can never share a store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.train.config import TrainConfig

ALIASES = {"seeds": "seed", "envs": "env_id", "env": "env_id", "algos": "algo"}
SPEC_KEYS = ("out", "config", "grid")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its config fields and the store it writes."""

    name: str
    """Store file name (`NAME.zarr`), derived from the config."""
    config: dict[str, Any]
    """TrainConfig fields as given (JSON-able); the store keeps the full expansion."""
    store: str
    """Path of the run's store."""


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file."""

    out: Path
    """Folder of the stores."""
    runs: tuple[RunSpec, ...]
    """The cross product, in grid order (last axis fastest)."""


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    """`data[a][b] = value` for the dotted key `a.b` (nested configs such as `agent`)."""
    head, *rest = key.split(".")
    head = ALIASES.get(head, head) if not rest else head
    if not rest:
        data[head] = value
        return
    inner = dict(data.get(head) or {})
    _set(inner, ".".join(rest), value)
    data[head] = inner


def _label(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return re.sub(r"[^A-Za-z0-9.+-]+", "", f"{key.split('.')[-1]}{text}")[:24]


def store_name(config: Mapping[str, Any], axes: list[str]) -> str:
    """`ALGO_ENV_[axis values]_sSEED_HASH.zarr`: readable parts and 8 hex digits of the hash of
    the resolved config (the preset's defaults filled in), so equal configs share a name and
    different ones never do."""
    resolved = dataclasses.asdict(TrainConfig.from_dict(dict(config)))
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:8]
    shown = [k for k in axes if k not in ("seed", "algo", "env_id")]
    parts = [resolved["algo"], resolved["env_id"]] + [_label(k, _get(config, k)) for k in shown]
    return "_".join([*parts, f"s{resolved['seed']}", digest]) + ".zarr"


def _get(data: Mapping[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def parse(data: Mapping[str, Any], base: Path) -> Sweep:
    """The sweep described by a loaded sweep file; `base` is where relative `out` starts."""
    if not isinstance(data, Mapping):
        raise ValueError("a sweep file must hold a mapping with keys out, config, grid")
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"unknown sweep key(s) {unknown}; a sweep file has {list(SPEC_KEYS)}")
    if "out" not in data:
        raise ValueError("the sweep file needs `out`: the folder its stores go to")
    fixed, grid = data.get("config") or {}, data.get("grid") or {}
    if not isinstance(fixed, Mapping) or not isinstance(grid, Mapping):
        raise ValueError("`config` and `grid` must be mappings of config fields")
    bad = [k for k, v in grid.items() if not isinstance(v, list) or not v]
    if bad:
        raise ValueError(f"grid axes must be non-empty lists: {bad}")
    axes = [ALIASES.get(k, k) for k in grid]
    if len(set(axes)) != len(axes):
        raise ValueError(f"a grid axis is given twice (aliases count): {list(grid)}")
    out = Path(str(data["out"])).expanduser()
    out = out if out.is_absolute() else base / out
    runs: list[RunSpec] = []
    for values in itertools.product(*grid.values()):
        config: dict[str, Any] = {}
        for key, value in fixed.items():
            _set(config, key, value)
        for key, value in zip(axes, values, strict=True):
            _set(config, key, value)
        name = store_name(config, axes)  # also validates the config (clear ValueError)
        runs.append(RunSpec(name, json.loads(json.dumps(config)), str(out / name)))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError("two grid points give the same config (a repeated value in an axis?)")
    return Sweep(out, tuple(runs))


def load(path: str | Path) -> Sweep:
    """Parse the sweep file at `path` (YAML or JSON)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from None
    return parse(data or {}, path.parent)
