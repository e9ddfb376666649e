"""Generate the tables of `docs/store-schema.md` from `engine.record.schema`.

`python -m engine.record.schema_doc` rewrites the section between the marker comments of the
doc; `--check` exits 1 if that section is stale (a test does the same).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.record.schema import (
    GROUPS, REQUIRED_GROUPS, ROOT_ATTRS, SCHEMA, SCHEMA_VERSION, Group, Var,
)

BEGIN = "<!-- BEGIN GENERATED: python -m engine.record.schema_doc (do not edit by hand) -->"
END = "<!-- END GENERATED -->"
REGENERATE = "python -m engine.record.schema_doc"


def default_doc_path() -> Path:
    """`docs/store-schema.md` of the source tree this module lives in."""
    return Path(__file__).resolve().parents[2] / "docs" / "store-schema.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _var_row(name: str, var: Var, append_dim: str, role: str) -> str:
    dims = ", ".join(f"**{d}**" if d == append_dim else d for d in var.dims)
    nan = ("yes" if var.allow_nan else "no") if var.dtype.startswith(("float", "complex")) else "n/a"
    return (
        f"| `{name}` | {role} | ({dims}) | {var.dtype} | `{_cell(var.units)}` | "
        f"{_cell(var.long_name)} | {nan} |"
    )


def _group_section(name: str, group: Group) -> list[str]:
    lines = [f"### `{name}`", ""]
    if group.doc:
        lines += [group.doc, ""]
    dims = ", ".join(f"`{d}`" for d in group.dims)
    lines += [
        f"- dims: {dims}",
        f"- records append along **`{group.append_dim}`** (chunks of {group.chunk} along it)",
        "",
        "| variable | role | dims | dtype | units | long_name | NaN allowed |",
        "|---|---|---|---|---|---|---|",
    ]
    for vname, var in group.coords.items():
        lines.append(_var_row(vname, var, group.append_dim, "coordinate"))
    for vname, var in group.variables.items():
        lines.append(_var_row(vname, var, group.append_dim, "data (optional)" if var.optional else "data"))
    return [*lines, ""]


def schema_markdown() -> str:
    """The generated part of the schema doc: root attributes, required groups, every group."""
    lines = [
        f"Schema `{SCHEMA}`, version {SCHEMA_VERSION}.",
        "",
        "### Root attributes",
        "",
        "| attribute | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in ROOT_ATTRS.items()]
    lines += [
        "",
        "### Groups required by kind",
        "",
        "A store with `status` = `complete` must hold these groups; a running or failed store may",
        "hold fewer. Any kind may hold other groups too.",
        "",
        "| kind | required groups |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | {', '.join(f'`{g}`' for g in gs)} |" for k, gs in REQUIRED_GROUPS.items()]
    lines += [
        "",
        "In the tables below the append dim is in **bold**; records given to",
        "`RunWriter.append` carry it as their leading axis, followed by the variable's other",
        "dims in the order shown.",
        "",
    ]
    for name, group in GROUPS.items():
        lines += _group_section(name, group)
    return "\n".join(lines).rstrip("\n") + "\n"


def generated_section(doc_text: str) -> str:
    """The text between the markers of `doc_text` (raises ValueError if they are missing)."""
    try:
        start = doc_text.index(BEGIN) + len(BEGIN)
        stop = doc_text.index(END, start)
    except ValueError:
        raise ValueError(f"the doc lacks the markers {BEGIN!r} ... {END!r}") from None
    return doc_text[start:stop].strip("\n") + "\n"


def render(doc_text: str) -> str:
    """`doc_text` with its generated section replaced by the current schema tables."""
    generated_section(doc_text)  # check the markers
    head, rest = doc_text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{schema_markdown()}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the doc's generated section."""
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name if __spec__ else __name__}")
    parser.add_argument("--doc", type=Path, default=default_doc_path(), help="the schema doc")
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is stale")
    args = parser.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print(f"{args.doc} is stale: run `{REGENERATE}`", file=sys.stderr)
            return 1
        print(f"{args.doc} is current")
        return 0
    if new != text:
        args.doc.write_text(new, encoding="utf-8")
        print(f"rewrote the generated section of {args.doc}")
    else:
        print(f"{args.doc} is already current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
