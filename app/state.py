"""The app's shared state: opened stores (cached), the user's folder, and uploaded runs.

Opened stores are cached per process with `st.cache_resource`: files by path and mtime (a new
commit changes the mtime, so a growing store is reopened), uploads by the SHA-256 of their
bytes. Uploads are kept in the session (bytes in memory, never written to disk).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from app.library import GALLERY, Opened, RunEntry, datasets_dir, find_stores, open_store, store_mtime

FOLDER_KEY = "runs_folder"
UPLOADS_KEY = "uploaded_runs"
UPLOADER_GENERATION = "uploader_generation"


@st.cache_resource(show_spinner=False, max_entries=64)
def _open_path(path: str, mtime: float) -> Opened:  # noqa: ARG001 - mtime is the cache key
    return open_store(path)


@st.cache_resource(show_spinner=False, max_entries=16)
def _open_upload(digest: str, _data: bytes) -> Opened:  # noqa: ARG001 - digest is the cache key
    return open_store(_data)


def folder_entries(folder: Path, origin: str, sub: str = "") -> list[RunEntry]:
    """Every store candidate in `folder`, opened (or with its error). `sub`: the sub-folder of
    the bundled folder it is (part of the bundled key)."""
    entries: list[RunEntry] = []
    for path in find_stores(folder):
        resolved = path.resolve()
        try:
            opened = _open_path(str(resolved), store_mtime(resolved))
        except OSError as exc:
            opened = Opened(None, f"Could not read {path.name}: {exc}")
        key = f"bundled:{sub}{path.name}" if origin == "bundled" else f"{origin}:{resolved}"
        entries.append(RunEntry(key, path.name, origin, opened, resolved))
    return entries


def user_folder() -> Path | None:
    """The folder the user named on the Home page, if any."""
    text = str(st.session_state.get(FOLDER_KEY, "")).strip()
    return Path(text).expanduser() if text else None


def set_user_folder(text: str) -> None:
    """Remember the folder across pages (widget state is dropped when its page is left)."""
    st.session_state[FOLDER_KEY] = text


def _uploads() -> dict[str, tuple[str, bytes]]:
    return st.session_state.setdefault(UPLOADS_KEY, {})


def add_upload(name: str, data: bytes) -> RunEntry:
    """Validate an uploaded zip in memory; keep it in the session if it opens."""
    digest = hashlib.sha256(data).hexdigest()
    opened = _open_upload(digest, data)
    if opened.ok:
        _uploads()[digest] = (name, data)
    return RunEntry(f"upload:{digest}", name, "upload", opened)


def uploader_key() -> str:
    """Widget key of the file uploader; it changes when uploads are forgotten, which empties
    the widget (otherwise the file still in it would be added again on the next rerun)."""
    return f"upload_{st.session_state.get(UPLOADER_GENERATION, 0)}"


def forget_uploads() -> None:
    """Drop every uploaded run from the session, and empty the uploader."""
    _uploads().clear()
    st.session_state[UPLOADER_GENERATION] = st.session_state.get(UPLOADER_GENERATION, 0) + 1


def upload_entries() -> list[RunEntry]:
    """The session's uploaded runs."""
    return [
        RunEntry(f"upload:{digest}", name, "upload", _open_upload(digest, data))
        for digest, (name, data) in _uploads().items()
    ]


def all_runs() -> list[RunEntry]:
    """Bundled stores (the headline stores, then the algorithm gallery), then the user's folder
    (unless it is the bundled one), then uploads."""
    bundled = datasets_dir()
    entries = folder_entries(bundled, "bundled") + folder_entries(bundled / GALLERY, "bundled", f"{GALLERY}/")
    folder = user_folder()
    if folder is not None and folder.is_dir() and folder.resolve() != bundled.resolve():
        entries += folder_entries(folder, "folder")
    return entries + upload_entries()
