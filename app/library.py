"""The runs library: where stores are found, and how an opened (or failed) store is described.

Pure functions (filesystem and xarray only). Caching and session state live in `app.state`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import hashlib
import json

import numpy as np
import pandas as pd
import xarray as xr

from app.figures.style import key_colours
from app.studies import training
from engine.record import StoreError, open_run, summarize, writer_alive
from engine.record.schema import GROUPS

DATASETS_ENV = "MBRL_WORKBENCH_DATASETS"
REPO_DATASETS = Path(__file__).resolve().parent.parent / "datasets"
GALLERY = "gallery"
"""Sub-folder of the bundled folder with the algorithm gallery (engine.bundles.GALLERY_FOLDER)."""


def datasets_dir() -> Path:
    """Folder of the bundled stores: `$MBRL_WORKBENCH_DATASETS`, else `datasets/` in the repo."""
    override = os.environ.get(DATASETS_ENV, "").strip()
    return Path(override).expanduser() if override else REPO_DATASETS


def is_store_name(path: Path) -> bool:
    """Whether `path` looks like a run store: a `.zarr` directory or a `.zarr.zip` file."""
    name = path.name.lower()
    if path.is_dir():
        return name.endswith(".zarr")
    return path.is_file() and name.endswith(".zarr.zip")


def find_stores(folder: Path) -> list[Path]:
    """Store candidates directly inside `folder`, sorted by name (empty if it is no folder)."""
    try:
        return sorted((p for p in folder.iterdir() if is_store_name(p)), key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def store_mtime(path: Path) -> float:
    """Modification time that changes on every commit (a directory's own mtime does not)."""
    stamps = [path.stat().st_mtime]
    if path.is_dir() and (path / "zarr.json").exists():
        stamps.append((path / "zarr.json").stat().st_mtime)
    return max(stamps)


@dataclass(frozen=True)
class Opened:
    """The outcome of opening one store: a tree, or the reason it could not be opened."""

    tree: xr.DataTree | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the store opened."""
        return self.tree is not None


def open_store(source: str | Path | bytes) -> Opened:
    """`open_run`, with every failure turned into a message (stores are untrusted input)."""
    try:
        return Opened(open_run(source))
    except StoreError as exc:
        return Opened(None, str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not take the app down; say what it was
        return Opened(None, f"Unexpected error while reading the store ({type(exc).__name__}): {exc}")


@dataclass(frozen=True)
class RunEntry:
    """One run in the library: where it came from and what opening it gave."""

    key: str
    """Unique, stable id: `bundled:NAME`, `folder:PATH` (resolved) or `upload:SHA256`."""
    name: str
    origin: str
    """`bundled`, `folder` or `upload`."""
    opened: Opened = field(compare=False)
    path: Path | None = None
    """Where the store is on disk (None for an upload)."""

    @property
    def label(self) -> str:
        """What a run chooser shows."""
        return f"{self.name}  ({self.origin})"

    @property
    def stem(self) -> str:
        """The name without `.zarr.zip` / `.zarr` / `.zip`, for export file names."""
        for suffix in (".zarr.zip", ".zarr", ".zip"):
            if self.name.lower().endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name

    @property
    def status(self) -> str:
        """`running`, `complete` or `failed` as the store records it; `invalid` if it did not
        open; `interrupted` for a store that says `running` but whose writer is gone (killed
        before it could close: `train --resume` continues it) or that can no longer be written
        (a zip)."""
        if self.opened.tree is None:
            return "invalid"
        status = str(self.opened.tree.attrs.get("status", ""))
        if status == "running" and not (self.path is not None and self.path.is_dir()
                                        and writer_alive(self.path)):
            return "interrupted"
        return status

    @property
    def kind(self) -> str | None:
        """The run's kind, or None if it did not open."""
        return self.opened.tree.attrs.get("kind") if self.opened.tree is not None else None


def groups_text(sizes: dict[str, dict[str, int]]) -> str:
    """`group(dim=n, ...)` for each group on one line, the schema's dims first."""
    parts = []
    for g, dims in sizes.items():
        main = GROUPS[g].dims if g in GROUPS else ()
        order = [d for d in main if d in dims] + sorted(d for d in dims if d not in main)
        parts.append(f"{g}({', '.join(f'{d}={dims[d]}' for d in order)})")
    return "; ".join(parts)


def last_env_step(tree: xr.DataTree) -> int | None:
    """The newest `env_step` any group recorded (a training run's progress), or None."""
    steps = [int(np.nanmax(node["env_step"].values)) for node in tree.children.values()
             if "env_step" in node.data_vars and node["env_step"].size]
    return max(steps) if steps else None


def flat_config(tree: xr.DataTree) -> dict[str, object]:
    """The stored config flattened to dotted keys (`agent.hidden`); lists become JSON text."""
    flat = training.flatten(training.config(tree))
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in flat.items()}


def library_row(entry: RunEntry) -> dict[str, object]:
    """One table row describing a run, or its error: identity, status, progress (`steps`: the
    newest env step recorded; `commits`: the store's commit counter) and `horizon` (config)."""
    row: dict[str, object] = {"key": entry.key, "name": entry.name, "source": entry.origin}
    invalid = {"status": "invalid", "kind": "", "env": "", "algorithm": "", "seed": None,
               "horizon": None, "steps": None, "commits": None, "updated": "", "groups": ""}
    tree = entry.opened.tree
    if tree is None:
        return {**row, **invalid, "error": entry.opened.error or ""}
    try:
        s = summarize(tree)
        steps = last_env_step(tree)
    except Exception as exc:  # noqa: BLE001 - root attrs of an odd store; show, don't crash
        return {**row, **invalid, "error": f"Could not summarise the store: {exc}"}
    horizon = flat_config(tree).get("horizon")
    return {**row, "status": entry.status, "kind": s.kind, "env": s.env_id, "algorithm": s.algorithm,
            "seed": s.seed, "horizon": horizon if isinstance(horizon, (int, float)) else None,
            "steps": steps, "commits": s.commit, "updated": str(tree.attrs.get("updated", "")),
            "groups": groups_text(s.groups), "error": ""}


def group_label(row: Mapping[str, object], config_key: str) -> str:
    """`algorithm · env · ID`: ID is the first 6 hex digits of the SHA-256 of the config key,
    so a config group has the same name in every session and for every selection."""
    digest = hashlib.sha256(config_key.encode()).hexdigest()[:6]
    return " · ".join(str(p) for p in (row.get("algorithm"), row.get("env"), digest) if p)


CONFIG_PREFIX = "config."
"""Config columns of the library table are named `config.<dotted key>`."""


def library_table(entries: Sequence[RunEntry]) -> pd.DataFrame:
    """The runs library: `library_row` per run, then `config group` (runs whose configs are
    equal except for their seeds share it: `training.config_key`; `group_label`), `group size`
    (runs of that group listed), `colour` (the group's `key_colours` colour, as the learning
    curves draw it), and one
    `config.KEY` column per config key of any run (seed keys included)."""
    rows = [library_row(e) for e in entries]
    ok = [e.opened.tree is not None for e in entries]
    keys = [training.config_key(e.opened.tree) if good else "" for e, good in zip(entries, ok, strict=True)]
    configs = [flat_config(e.opened.tree) if good else {} for e, good in zip(entries, ok, strict=True)]
    colours = key_colours(k for k in keys if k)
    for row, key, cfg in zip(rows, keys, configs, strict=True):
        row["config group"] = group_label(row, key) if key else ""
        row["colour"] = colours.get(key, "")
        row["group size"] = keys.count(key) if key else None
        row.update({f"{CONFIG_PREFIX}{k}": v for k, v in cfg.items()})
    table = pd.DataFrame(rows)
    if not len(table):
        return table
    for col in ("seed", "horizon", "steps", "commits", "group size"):
        table[col] = table[col].astype("Int64") if col != "horizon" else table[col]
    return table


def varying_config_columns(table: pd.DataFrame) -> list[str]:
    """The `config.*` columns whose values differ between the table's runs."""
    cols = [c for c in table.columns if c.startswith(CONFIG_PREFIX)]
    return [c for c in cols if table[c].map(str).nunique() > 1]


def filter_table(table: pd.DataFrame, text: str = "", columns: Mapping[str, Sequence[object]] | None = None
                 ) -> pd.DataFrame:
    """Rows matching every word of `text` (case-insensitive, in any cell) and, for each column
    in `columns`, one of its listed values (an empty list keeps every row)."""
    keep = pd.Series(True, index=table.index)
    if len(table):
        cells = table.apply(lambda r: " ".join(map(str, r.values)), axis=1).str.lower()
        for word in text.lower().split():
            keep &= cells.str.contains(word, regex=False)
    for col, values in (columns or {}).items():
        if values:
            keep &= table[col].isin(list(values))
    return table[keep]


def run_names(entries: list[RunEntry]) -> dict[str, str]:
    """Run key -> a short unique name for legends and headers: the stem (`sac_s0` for
    `sac_s0.zarr.zip`), or the full label where two chosen runs share a stem."""
    stems = [e.stem for e in entries]
    return {e.key: e.stem if stems.count(e.stem) == 1 else e.label for e in entries}
