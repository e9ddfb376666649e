"""The shared run chooser: the runs library's selection drives every study page, lives in the
URL (`?run=KEY&run=KEY`), and a chosen run still being written refreshes the page (live view).

Run keys are stable: `bundled:NAME`, `folder:PATH`, `upload:SHA256`. Uploads cannot come back
from a URL (their bytes live in one session); a link naming them says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import streamlit as st
import xarray as xr

from app import state
from app.library import RunEntry, run_names, store_mtime
from app.widgets import urlstate

SELECTION = "selected_runs"
"""Session key: the keys of the selected runs, in the order chosen."""
RUN_PARAM = "run"
FOLDER_PARAM = "folder"
FOLDER_INPUT = "folder_input"
"""Widget key of the folder text box on the Home page."""
LIVE, LIVE_EVERY = "live", "live_every"
DEFAULT_EVERY = 5


def restore_folder() -> None:
    """Take the user's folder from the URL when a link brings one."""
    folder = urlstate.incoming(FOLDER_PARAM)
    if folder:
        state.set_user_folder(folder[-1])
        st.session_state[FOLDER_INPUT] = folder[-1]
        urlstate.publish(FOLDER_PARAM, folder[-1])  # taken: a second call leaves the box alone


def library(kind: str | None = None) -> dict[str, RunEntry]:
    """Every run by key (bundled, the user's folder, uploads), or those of `kind`. The folder
    comes from the URL when a link brings one, and is written back to it."""
    restore_folder()
    path = state.user_folder()
    urlstate.publish(FOLDER_PARAM, str(path) if path is not None else None)
    runs = state.all_runs()
    return {r.key: r for r in runs if kind is None or r.kind == kind}


def library_or_stop(kind: str, what: str, how: str) -> dict[str, RunEntry]:
    """`library(kind)`; with no such run, a hint naming `what` is missing and `how` to make one,
    and the page stops there."""
    runs = library(kind)
    if not runs:
        st.info(f"No {what} found. Add one on the **Runs library** page (bundled, a folder, or an "
                f"upload); {how}.")
        st.stop()
    return runs


def selection() -> list[str]:
    """The selected run keys (restored from the URL when a link brings `run` parameters)."""
    from_url = urlstate.incoming(RUN_PARAM)
    if from_url is not None:
        st.session_state[SELECTION] = list(dict.fromkeys(from_url))
    return list(st.session_state.get(SELECTION, []))


def set_selection(keys: Iterable[str]) -> None:
    """Make `keys` the selection, in the session and in the URL."""
    keys = list(dict.fromkeys(keys))
    st.session_state[SELECTION] = keys
    urlstate.publish(RUN_PARAM, keys)


def missing_note(runs: dict[str, RunEntry]) -> None:
    """Say which selected runs are not available (an upload from another session, a folder
    that is gone) instead of dropping them silently."""
    gone = [k for k in selection() if k not in runs]
    if gone:
        uploads = [k for k in gone if k.startswith("upload:")]
        text = f"{len(gone)} selected run(s) not found here: " + ", ".join(f"`{k}`" for k in gone[:5])
        if uploads:
            text += ". Uploaded runs live in the session that uploaded them; a link cannot bring them back."
        st.caption(text)


def choose_runs(runs: dict[str, RunEntry], *, key: str, label: str = "Runs", max_default: int = 6,
                options: Sequence[str] | None = None) -> list[str]:
    """Several runs: the selected ones among `runs` (else the first `max_default`). Changing
    the choice changes the selection (for runs of these kinds), and with it the URL."""
    offered = list(options if options is not None else runs)
    from_url = urlstate.incoming(RUN_PARAM) is not None
    chosen = [k for k in selection() if k in offered]
    if from_url or key not in st.session_state:
        st.session_state[key] = chosen or offered[:max_default]
    else:
        st.session_state[key] = [k for k in st.session_state[key] if k in offered]
    keys = st.multiselect(label, offered, key=key, format_func=lambda k: runs[k].label)
    set_selection([k for k in selection() if k not in offered] + keys)
    missing_note(library())
    live_view([runs[k] for k in keys])
    return keys


def names(runs: dict[str, RunEntry], keys: Sequence[str]) -> dict[str, str]:
    """Run key -> the short name legends and headers use (`run_names` of the chosen runs)."""
    return run_names([runs[k] for k in keys])


def export_stem(runs: dict[str, RunEntry], keys: Sequence[str]) -> str:
    """The start of export file names: the run's stem, or the first run's plus how many more."""
    if not keys:
        return "no_run"
    first = runs[keys[0]].stem
    return first if len(keys) == 1 else f"{first}_and_{len(keys) - 1}_more"


def choose_ready(runs: dict[str, RunEntry], *, key: str, ready: Callable[[xr.DataTree], bool], not_ready: str,
                 label: str = "Runs", max_default: int = 1) -> tuple[dict[str, xr.DataTree], str]:
    """`choose_runs`, then the chosen runs that have something to show (`ready`), by their
    `names`, and the export stem of those. The others are named in an info box ("NAME:
    `not_ready`"); with none left the page stops (asking for a run if none is chosen)."""
    keys = choose_runs(runs, key=key, label=label, max_default=max_default)
    shown = names(runs, keys)
    waiting = [k for k in keys if runs[k].opened.tree is None or not ready(runs[k].opened.tree)]
    if waiting:
        st.info(f"**{', '.join(shown[k] for k in waiting)}**: {not_ready}. Come back later.")
    keys = [k for k in keys if k not in waiting]
    if not keys:
        if not waiting:
            st.info("Choose at least one run.")
        st.stop()
    return {shown[k]: runs[k].opened.tree for k in keys}, export_stem(runs, keys)


def choose_run(runs: dict[str, RunEntry], *, key: str, label: str = "Run") -> RunEntry:
    """One run: by default the first selected among `runs` (selected runs are listed first,
    starred). The choice is a page setting in the URL (`?KEY=RUN`); it leaves the selection
    as it is."""
    chosen = selection()
    options = [k for k in chosen if k in runs] + [k for k in runs if k not in chosen]
    urlstate.bind(key, options[0], options=options, parse=str)
    value = st.selectbox(label, options, key=key,
                         format_func=lambda k: ("★ " if k in chosen else "") + runs[k].label)
    urlstate.remember(key)
    live_view([runs[value]])
    return runs[value]


def _stamp(entries: Sequence[RunEntry]) -> tuple[float, ...]:
    out = []
    for e in entries:
        try:
            out.append(store_mtime(e.path) if e.path is not None else 0.0)
        except OSError:
            out.append(0.0)
    return tuple(out)


def live_view(entries: Sequence[RunEntry]) -> None:
    """When a shown run is still running: a toggle and an interval; while on, the page reruns
    as soon as one of those stores has a new commit (checked every interval), so it shows the
    newest snapshot. Off, or with no running run, nothing is drawn."""
    running = [e for e in entries if e.status == "running" and e.path is not None]
    if not running:
        return
    urlstate.bind(LIVE, True)
    urlstate.bind(LIVE_EVERY, DEFAULT_EVERY, valid=lambda v: 1 <= v <= 3600)
    c_on, c_every, c_note = st.columns([2, 2, 4], vertical_alignment="bottom")
    on = c_on.toggle(f"Live ({len(running)} run{'s' if len(running) > 1 else ''} still running)", key=LIVE,
                     help="Reload the page when a running store commits new records.")
    every = c_every.number_input("Check every (s)", min_value=1, max_value=3600, step=1, key=LIVE_EVERY)
    urlstate.remember(LIVE, LIVE_EVERY)
    if not on:
        return
    seen = _stamp(running)

    @st.fragment(run_every=float(every))
    def watch() -> None:
        if _stamp(running) != seen:
            st.rerun()  # the whole page: the store reader reopens stores whose commit changed
        st.caption(f"Checked {datetime.now(UTC):%H:%M:%S} UTC; last commit "
                       f"{time.strftime('%H:%M:%S', time.gmtime(max(seen)))} UTC.")

    with c_note:
        watch()
