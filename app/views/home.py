"""Home: the runs library (bundled stores, a folder of stores, uploaded zips)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import state
from app.library import DATASETS_ENV, datasets_dir, library_row

st.title("Runs library")
st.caption(
    f"Bundled stores come from `{datasets_dir()}` (set `{DATASETS_ENV}` to use another folder). "
    "Add a folder of `.zarr` / `.zarr.zip` stores, or upload a zipped store: it is validated "
    "in memory and kept for this session only."
)

left, right = st.columns(2)
with left:
    if "folder_input" not in st.session_state:
        st.session_state["folder_input"] = st.session_state.get(state.FOLDER_KEY, "")
    folder = st.text_input("Folder with run stores", key="folder_input", placeholder="/path/to/runs")
    state.set_user_folder(folder)
    path = state.user_folder()
    if path is not None and not path.is_dir():
        st.warning(f"`{path}` is not a folder.")
with right:
    upload = st.file_uploader(
        "Upload a zipped run store (.zarr.zip)", type=["zip"], key=state.uploader_key()
    )
    if upload is not None:
        entry = state.add_upload(upload.name, upload.getvalue())
        if entry.opened.ok:
            st.success(f"Added **{entry.name}** ({entry.kind} run) to this session's runs.")
        else:
            st.error(f"**{upload.name}** is not a usable run store: {entry.opened.error}")
    if state.upload_entries() and st.button("Forget uploaded runs", key="forget_uploads"):
        state.forget_uploads()
        st.rerun()

runs = state.all_runs()
if not runs:
    st.info("No runs yet: no stores in the bundled folder, and none added.")
else:
    table = pd.DataFrame([library_row(r) for r in runs])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "seed": st.column_config.NumberColumn(format="%d"),
        "groups": st.column_config.TextColumn(width="large"),
        "error": st.column_config.TextColumn(width="large"),
    })
    bad = table[table["status"] == "invalid"]
    if len(bad):
        st.warning(f"{len(bad)} store(s) could not be opened:\n\n" + "\n".join(
            f"- **{row.name}** ({row.source}): {row.error}" for row in bad.itertuples()))
