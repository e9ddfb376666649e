"""The runs library: where stores are found, and how an opened (or failed) store is described.

Pure functions (filesystem and xarray only). Caching and session state live in `app.state`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from engine.record import StoreError, open_run, summarize
from engine.record.schema import GROUPS

DATASETS_ENV = "MBRL_WORKBENCH_DATASETS"
REPO_DATASETS = Path(__file__).resolve().parent.parent / "datasets"


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
    """Unique id: `bundled:PATH`, `folder:PATH` or `upload:SHA256`."""
    name: str
    origin: str
    """`bundled`, `folder` or `upload`."""
    opened: Opened = field(compare=False)

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


def library_row(entry: RunEntry) -> dict[str, object]:
    """One table row describing a run, or its error."""
    row: dict[str, object] = {"name": entry.name, "source": entry.origin}
    invalid = {"status": "invalid", "kind": "", "env": "", "algorithm": "", "seed": None,
               "groups": ""}
    tree = entry.opened.tree
    if tree is None:
        return {**row, **invalid, "error": entry.opened.error or ""}
    try:
        s = summarize(tree)
    except Exception as exc:  # noqa: BLE001 - root attrs of an odd store; show, don't crash
        return {**row, **invalid, "error": f"Could not summarise the store: {exc}"}
    return {**row, "status": s.status, "kind": s.kind, "env": s.env_id, "algorithm": s.algorithm,
            "seed": s.seed, "groups": groups_text(s.groups), "error": ""}


def run_names(entries: list[RunEntry]) -> dict[str, str]:
    """Run key -> a short unique name for legends and headers: the stem (`sac_s0` for
    `sac_s0.zarr.zip`), or the full label where two chosen runs share a stem."""
    stems = [e.stem for e in entries]
    return {e.key: e.stem if stems.count(e.stem) == 1 else e.label for e in entries}
