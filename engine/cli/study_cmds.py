"""`study ...`: the diagnostic studies that are not training runs."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `study` and its subcommands."""
    study = sub.add_parser("study", help="run a diagnostic study and write its store")
    study.add_subparsers(dest="study", required=True, metavar="STUDY")
