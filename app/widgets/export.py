"""The export widgets: under each panel (a bundle zip or one format), and one per page that
bundles every panel of the page.

Each `export_controls` call also registers its panel for the page bundle; `app/main.py` clears
the register before every full run of a page, so it holds exactly the panels drawn last.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import plotly.graph_objects as go
import streamlit as st
import xarray as xr

from app import state
from app.bundle import COLUMN_WIDTH_IN, PaperStyle, export_bundle, provenance, run_record, styled
from app.export import FORMATS, ExportError, export_bytes
from app.widgets.runs import SELECTION
from engine.record.writer import engine_version

BUNDLE = "zip"
CHOICES = [BUNDLE, *FORMATS]
LABELS = {BUNDLE: "Bundle (zip: SVG, PDF, PNG, HTML, CSV, NetCDF, provenance)",
          **{k: f.label for k, f in FORMATS.items()}}
SIZES = {"single": "Paper, single column", "double": "Paper, double column", "screen": "Screen (1000 px)"}
PANELS_KEY = "_export_panels"
PAGE_KEY = "_export_page"
_WIDGET_SUFFIXES = ("_format", "_prepare", "_download", "_size", "_font", "_width")


def safe_stem(text: str) -> str:
    """A file-name-safe version of `text`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return stem or "export"


def reset_page(title: str) -> None:
    """Forget the panels of the previous run; called by `app/main.py` before a page runs."""
    st.session_state[PANELS_KEY] = {}
    st.session_state[PAGE_KEY] = title


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def page_settings() -> dict[str, Any]:
    """The page's widget values (selection and settings) that JSON can hold; widget state of
    other pages is dropped by Streamlit when they are left, so this is mostly the current page."""
    skip = {state.UPLOADS_KEY, state.UPLOADER_GENERATION}
    return {k: v for k, v in sorted(st.session_state.to_dict().items())
            if isinstance(k, str) and not k.startswith("_") and k not in skip
            and not k.endswith(_WIDGET_SUFFIXES) and not k.startswith("upload_") and _jsonable(v)}


def selected_runs(datas: list[xr.Dataset]) -> list[dict[str, Any]]:
    """Provenance of the runs the page shows: runs whose key is a widget value of the page (run
    choosers hold run keys; the library's selection is not one), else runs whose `run_id` the
    plotted data names."""
    entries = [e for e in state.all_runs() if e.opened.tree is not None]
    values: set[str] = set()
    library = {SELECTION, "lib_selection"}  # the library's selection, not what this page shows
    for k, v in st.session_state.to_dict().items():
        if k in library:
            continue
        if isinstance(v, str):
            values.add(v)
        elif isinstance(v, (list, tuple)):
            values.update(x for x in v if isinstance(x, str))
    chosen = [e for e in entries if e.key in values]
    if not chosen:
        ids = {str(d.attrs.get("run_id")) for d in datas if "run_id" in d.attrs}
        chosen = [e for e in entries if str(e.opened.tree.attrs.get("run_id")) in ids]
    return [run_record(e.name, e.key, e.origin, e.opened.tree.attrs) for e in chosen]


def _style_controls(key: str) -> PaperStyle | None:
    c_size, c_font, c_width = st.columns(3)
    size = c_size.selectbox("Size", list(SIZES), format_func=SIZES.get, key=f"{key}_size")
    font = c_font.number_input("Font (pt)", 4.0, 40.0, 8.0, 0.5, key=f"{key}_font",
                               disabled=size == "screen")
    width = c_width.number_input("Width (in; 0 = column)", 0.0, 30.0, 0.0, 0.25, key=f"{key}_width",
                                 disabled=size == "screen",
                                 help=f"Column widths: {COLUMN_WIDTH_IN} inches.")
    if size == "screen":
        return None
    return PaperStyle(column=size, width_in=width if width >= 0.5 else None, font_pt=font,
                      title_pt=font + 1)


def _unique(stems: list[str]) -> list[str]:
    """`stems` with repeats numbered (`a`, `a_2`): two runs of a page may share a file stem."""
    seen: dict[str, int] = {}
    out = []
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
        out.append(s if seen[s] == 1 else f"{s}_{seen[s]}")
    return out


def _bundle(panels: list[tuple[str, go.Figure, xr.Dataset]], style: PaperStyle | None) -> bytes:
    panels = [(stem, fig, data) for stem, (_, fig, data) in zip(_unique([p[0] for p in panels]), panels, strict=True)]
    datas = [d if isinstance(d, xr.Dataset) else d.to_dataset(name=str(d.name or "value"))
             for _, _, d in panels]
    record = provenance(selected_runs(datas), page_settings(), [p[0] for p in panels], style,
                        page=str(st.session_state.get(PAGE_KEY, "")), app_version=engine_version())
    return export_bundle(panels, record, style)


def _prepared(slot: str, fingerprint: str, make: Any, what: str) -> None:
    with st.spinner(f"Preparing {what}..."):
        try:
            st.session_state[slot] = (fingerprint, make())
        except ExportError as exc:
            st.session_state.pop(slot, None)
            st.error(str(exc))
        except Exception as exc:  # noqa: BLE001 - report, keep the app running
            st.session_state.pop(slot, None)
            st.error(f"The export failed ({type(exc).__name__}): {exc}")


def _download(slot: str, fingerprint: str, name: str, mime: str, key: str) -> None:
    ready = st.session_state.get(slot)
    if ready is not None and ready[0] == fingerprint:
        st.download_button(
            f"Download {name} ({len(ready[1]) / 1024:.0f} KiB)", data=ready[1], file_name=name,
            mime=mime, key=f"{key}_download", on_click="ignore", icon=":material/download:",
        )
    else:
        st.caption("Images take a few seconds (a headless Chromium renders them).")


def export_controls(fig: go.Figure, data: xr.Dataset, basename: str, *, key: str) -> None:
    """The export widget under a panel; also registers the panel for the page bundle."""
    st.session_state.setdefault(PANELS_KEY, {})[key] = (safe_stem(basename), fig, data)
    _panel_controls(fig, data, basename, key=key)


@st.fragment
def _panel_controls(fig: go.Figure, data: xr.Dataset, basename: str, *, key: str) -> None:
    """Format (default: the bundle) and size, a Prepare button (exports can take seconds), then
    a download button. A fragment: preparing reruns only this widget. A prepared file stays
    available until the figure, the format or the style changes."""
    slot = f"_export_{key}"
    with st.expander("Export figure or data", expanded=False):
        left, mid = st.columns([3, 1], vertical_alignment="bottom")
        fmt = left.selectbox("Format", CHOICES, format_func=LABELS.get, key=f"{key}_format")
        style = _style_controls(key)
        fingerprint = hashlib.sha256((fmt + repr(style) + fig.to_json()).encode()).hexdigest()
        stem = safe_stem(basename)
        if mid.button("Prepare", key=f"{key}_prepare", width="stretch"):
            if fmt == BUNDLE:
                _prepared(slot, fingerprint, lambda: _bundle([(stem, fig, data)], style), LABELS[fmt])
            else:
                shown = styled(fig, style) if style is not None and fmt in ("png", "svg", "pdf", "html") else fig
                scale = style.png_scale if style is not None and fmt == "png" else 1.0
                _prepared(slot, fingerprint, lambda: export_bytes(fmt, shown, data, scale=scale),
                          FORMATS[fmt].label)
        if fmt == BUNDLE:
            _download(slot, fingerprint, f"{stem}.zip", "application/zip", key)
        else:
            spec = FORMATS[fmt]
            _download(slot, fingerprint, f"{stem}.{spec.ext}", spec.mime, key)


def page_export_controls(basename: str, *, key: str) -> None:
    """One bundle of every panel drawn on the page (shown when the page has two or more)."""
    panels = list(st.session_state.get(PANELS_KEY, {}).values())
    if len(panels) >= 2:
        _page_controls(panels, basename, key=key)


@st.fragment
def _page_controls(panels: list[tuple[str, go.Figure, xr.Dataset]], basename: str, *, key: str) -> None:
    slot = f"_export_{key}"
    with st.expander(f"Export all {len(panels)} panels of this page (zip)", expanded=False):
        style = _style_controls(key)
        fingerprint = hashlib.sha256(
            (repr(style) + "".join(s + f.to_json() for s, f, _ in panels)).encode()
        ).hexdigest()
        if st.button("Prepare", key=f"{key}_prepare"):
            _prepared(slot, fingerprint, lambda: _bundle(panels, style), "the page bundle")
        _download(slot, fingerprint, f"{safe_stem(basename)}.zip", "application/zip", key)
