"""Command line: `python -m engine {validate,pack,study,train,sweep,datasets} ...`.

Each subcommand lives in its own module and registers itself with `add_parser`; heavy
imports (torch) happen inside the command, so `--help` and `validate` stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from engine.cli import datasets_cmds, store_cmds, study_cmds, sweep_cmds, train_cmds


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="mbrl-workbench engine: run studies and training, inspect run stores.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_cmds.add_parsers(sub)
    study_cmds.add_parsers(sub)
    train_cmds.add_parsers(sub)
    sweep_cmds.add_parsers(sub)
    datasets_cmds.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep the interpreter's flush quiet
        return 0
    except KeyboardInterrupt:
        print("interrupted: everything committed so far is in the store", file=sys.stderr)
        return 130
