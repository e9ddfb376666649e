"""`datasets`: list and (re)build the stores bundled in `datasets/` from their recipes."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "datasets"
MANIFEST = "manifest.json"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `datasets list` and `datasets build`."""
    p = sub.add_parser("datasets", help="list or rebuild the bundled stores (datasets/)")
    cmds = p.add_subparsers(dest="datasets_cmd", required=True, metavar="ACTION")
    ls = cmds.add_parser("list", help="the recipes, and which stores are present")
    ls.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the packed stores")
    ls.set_defaults(func=list_cmd)
    b = cmds.add_parser(
        "build",
        help="run recipes and pack their stores into --out",
        description="Run each named recipe's engine commands (all recipes if none is named), "
        "pack the result to OUT/NAME.zarr.zip and record the commands, engine version and wall "
        "time in OUT/manifest.json. Recipes a named one needs are built first when missing. "
        "--quick runs tiny versions (seconds each) that test the pipeline, not the science.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    b.add_argument("names", nargs="*", metavar="NAME", help="recipes to build (default: all)")
    b.add_argument("--quick", action="store_true", help="tiny versions, for tests")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the packed stores")
    b.add_argument("--work", type=Path,
                   help="folder for the unpacked stores (kept; default: a temporary folder, removed)")
    b.add_argument("--resume", action="store_true",
                   help="continue killed commands whose stores are in --work")
    b.set_defaults(func=build_cmd)


def list_cmd(args: argparse.Namespace) -> int:
    from engine.bundles import RECIPES

    built = _manifest(args.out)
    for name, recipe in RECIPES.items():
        path = recipe.packed(args.out)
        state = "present" if path.is_file() else "missing"
        info = built.get(name, {})
        when = f", built {info['built']} in {info['wall_seconds']:.0f} s" if info else ""
        print(f"{name:24s} {state}{when}\n    study {recipe.study}\n    {recipe.shows}")
    return 0


def build_cmd(args: argparse.Namespace) -> int:
    from engine.bundles import RECIPES, order

    named = args.names or list(RECIPES)
    try:
        recipes = order(named)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="mbrl-datasets-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for recipe in recipes:
            if recipe.name not in named and recipe.packed(args.out).is_file():
                continue  # a dependency that is already there
            code = _build(recipe, args.out, work, quick=args.quick, resume=args.resume)
            if code:
                return code
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _build(recipe, out: Path, work: Path, *, quick: bool, resume: bool) -> int:  # noqa: ANN001
    from engine.bundles import fill
    from engine.cli import main
    from engine.record import pack
    from engine.record.writer import engine_version

    configs = recipe.quick_configs if quick else recipe.configs
    for key, cfg in configs.items():
        (work / f"{key}.json").write_text(json.dumps(cfg, indent=2))
    commands = recipe.quick if quick else recipe.commands
    print(f"== {recipe.name}{' (quick)' if quick else ''}: {len(commands)} command(s)", flush=True)
    start = time.monotonic()
    for command in commands:
        argv = fill(command, str(work), str(out))
        if resume and (work / Path(argv[argv.index("--out") + 1]).name).exists():
            argv.append("--resume")
        print("+ python -m engine " + " ".join(argv), flush=True)
        code = main(argv)
        if code:
            print(f"error: {recipe.name}: the command above exited with {code}", file=sys.stderr)
            return code
    recipe.packed(out).parent.mkdir(parents=True, exist_ok=True)
    target = pack(work / recipe.store, recipe.packed(out))
    wall = time.monotonic() - start
    manifest = _manifest(out)
    manifest[recipe.name] = {
        "study": recipe.study, "shows": recipe.shows, "quick": quick,
        "commands": [" ".join(["python -m engine", *c]) for c in commands], "configs": configs,
        "engine_version": engine_version(), "wall_seconds": round(wall, 1),
        "built": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ"), "bytes": target.stat().st_size,
        "path": recipe.packed(out).relative_to(out).as_posix(),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) in {wall:.0f} s", flush=True)
    return 0


def _manifest(out: Path) -> dict:
    path = out / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}
