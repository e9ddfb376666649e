"""The export widget under each panel: pick a format, prepare it on demand, download it."""

from __future__ import annotations

import hashlib
import re

import plotly.graph_objects as go
import streamlit as st
import xarray as xr

from app.export import FORMATS, ExportError, export_bytes


def safe_stem(text: str) -> str:
    """A file-name-safe version of `text`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return stem or "export"


def _fingerprint(fmt: str, fig: go.Figure) -> str:
    return hashlib.sha256((fmt + fig.to_json()).encode()).hexdigest()


@st.fragment
def export_controls(fig: go.Figure, data: xr.Dataset, basename: str, *, key: str) -> None:
    """Format chooser, a Prepare button (exports can take seconds), then a download button.

    Runs as a fragment: preparing an export reruns only this widget. A prepared file stays
    available until the figure or the format changes.
    """
    slot = f"_export_{key}"
    with st.expander("Export figure or data", expanded=False):
        left, mid = st.columns([3, 1], vertical_alignment="bottom")
        fmt = left.selectbox(
            "Format", list(FORMATS), format_func=lambda f: FORMATS[f].label, key=f"{key}_format"
        )
        fingerprint = _fingerprint(fmt, fig)
        if mid.button("Prepare", key=f"{key}_prepare", width="stretch"):
            with st.spinner(f"Preparing {FORMATS[fmt].label}..."):
                try:
                    st.session_state[slot] = (fingerprint, export_bytes(fmt, fig, data))
                except ExportError as exc:
                    st.session_state.pop(slot, None)
                    st.error(str(exc))
                except Exception as exc:  # noqa: BLE001 - report, keep the app running
                    st.session_state.pop(slot, None)
                    st.error(f"The export failed ({type(exc).__name__}): {exc}")
        ready = st.session_state.get(slot)
        if ready is not None and ready[0] == fingerprint:
            spec = FORMATS[fmt]
            name = f"{safe_stem(basename)}.{spec.ext}"
            st.download_button(
                f"Download {name} ({len(ready[1]) / 1024:.0f} KiB)", data=ready[1], file_name=name,
                mime=spec.mime, key=f"{key}_download", on_click="ignore", icon=":material/download:",
            )
        else:
            st.caption("Images take a few seconds (a headless Chromium renders them).")
