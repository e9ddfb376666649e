"""The schema module is complete and the human-readable doc is generated from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import storekit
from engine.record import open_run
from engine.record.schema import GROUPS, KINDS, REQUIRED_GROUPS, ROOT_ATTRS, all_vars
from engine.record.schema_doc import (
    BEGIN, END, REGENERATE, default_doc_path, generated_section, main, render, schema_markdown,
)

DOC = storekit.REPO / "docs" / "store-schema.md"


def test_doc_generated_section_is_current() -> None:
    assert default_doc_path() == DOC
    text = DOC.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert generated_section(text) == schema_markdown(), (
        f"{DOC} is stale: its generated tables differ from engine/record/schema.py. "
        f"Regenerate them with `{REGENERATE}`."
    )


def test_generator_rewrites_only_the_marked_section(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nprose\n\n{BEGIN}\nold tables\n{END}\n\nafter\n")
    assert main(["--doc", str(doc), "--check"]) == 1
    assert main(["--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Title\n\nprose\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert generated_section(text) == schema_markdown() and "old tables" not in text
    assert render(text) == text
    assert main(["--doc", str(doc), "--check"]) == 0


def test_markdown_lists_every_group_variable_and_root_attribute() -> None:
    md = schema_markdown()
    for attr in ROOT_ATTRS:
        assert f"| `{attr}` |" in md
    for gname, group in GROUPS.items():
        assert f"### `{gname}`" in md
        assert f"records append along **`{group.append_dim}`**" in md
        for vname, var in all_vars(group).items():
            long_name = var.long_name.replace("|", "\\|")
            assert f"| `{vname}` |" in md and f"| `{var.units}` | {long_name} |" in md


def test_every_variable_has_units_and_long_name() -> None:
    for gname, group in GROUPS.items():
        for vname, var in all_vars(group).items():
            assert var.units.strip(), f"{gname}/{vname} has empty units"
            assert var.long_name.strip(), f"{gname}/{vname} has an empty long_name"
            assert var.dtype in ("str", "bool") or np.dtype(var.dtype).kind in "iuf", (gname, vname)


def test_every_dim_has_a_coordinate_and_every_variable_uses_group_dims() -> None:
    for gname, group in GROUPS.items():
        assert group.append_dim in group.dims, gname
        assert set(group.coords) == set(group.dims), f"{gname}: dims without coordinate"
        for dim, coord in group.coords.items():
            assert coord.dims == (dim,), f"{gname}/{dim} is not a 1-d coordinate of its dim"
        for vname, var in group.variables.items():
            assert set(var.dims) <= set(group.dims), f"{gname}/{vname} uses unknown dims"
            assert len(set(var.dims)) == len(var.dims), f"{gname}/{vname} repeats a dim"
            assert vname not in group.dims, f"{gname}/{vname} shadows a dim"


def test_required_groups_and_root_attrs_match_what_the_writer_writes(tmp_path: Path) -> None:
    assert set(REQUIRED_GROUPS) == set(KINDS)
    assert all(g in GROUPS for gs in REQUIRED_GROUPS.values() for g in gs)
    storekit.write_gradient(tmp_path / "g.zarr", seeds=1)
    assert set(open_run(tmp_path / "g.zarr").attrs) == set(ROOT_ATTRS)
