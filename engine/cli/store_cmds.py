"""`validate` and `pack`: inspect and zip run stores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.record import StoreError, open_run, pack, summarize


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `validate` and `pack`."""
    p = sub.add_parser(
        "validate",
        help="check a run store against the schema and print what it holds",
        description="Open a run store (.zarr directory or .zarr.zip) as the app would, check it "
        "against schema version 1, and print its kind, env, algorithm, groups, sizes and status. "
        "Exits 1 with a plain message if the store is malformed.",
    )
    p.add_argument("path", help="a .zarr directory or .zarr.zip file")
    p.set_defaults(func=validate)
    p = sub.add_parser(
        "pack",
        help="zip a finished store into NAME.zarr.zip (readable without extracting)",
        description="Zip a store's contents so open_run, the app and zarr's ZipStore read it "
        "in place. The store must not be being written.",
    )
    p.add_argument("store", help="a .zarr directory")
    p.add_argument("out", nargs="?", help="output zip (default: STORE.zip next to the store)")
    p.set_defaults(func=pack_cmd)


def validate(args: argparse.Namespace) -> int:
    """Print a summary of the store at `args.path`; 1 on a bad store."""
    try:
        tree = open_run(args.path)
    except StoreError as exc:
        print(f"invalid store: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # unreadable path, permissions, I/O error
        print(f"invalid store: {args.path!r} could not be read ({exc}).", file=sys.stderr)
        return 1
    s = summarize(tree)
    print(f"store:      {args.path}")
    print(f"kind:       {s.kind}")
    print(f"env:        {s.env_id}")
    print(f"algorithm:  {s.algorithm}")
    print(f"seed:       {s.seed}")
    print(f"status:     {s.status}  (commit {s.commit})")
    print(f"run id:     {s.run_id}")
    print(f"engine:     {s.engine_version}")
    print("groups:")
    for name, sizes in s.groups.items():
        dims = ", ".join(f"{d}={n}" for d, n in sizes.items())
        nvars = len(tree[name].data_vars)
        print(f"  {name:<18} {nvars:>3} variables   {dims}")
    return 0


def pack_cmd(args: argparse.Namespace) -> int:
    """Zip `args.store`; 1 if it is not a valid store."""
    src = Path(args.store)
    out = Path(args.out) if args.out else src.with_name(src.name + ".zip")
    try:
        open_run(src)
        pack(src, out)
    except (StoreError, OSError) as exc:
        print(f"cannot pack: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB)")
    return 0
