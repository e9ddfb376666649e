"""Home: the runs library (bundled stores, a folder of stores, uploaded zips); select runs here."""

from __future__ import annotations

import streamlit as st

from app import state
from app.figures.style import rgba
from app.library import DATASETS_ENV, datasets_dir, filter_table, library_table, varying_config_columns
from app.widgets import runs as chooser
from app.widgets import urlstate

FIRST = ["name", "source", "status", "kind", "env", "algorithm", "seed", "horizon", "steps", "commits",
         "config group", "group size", "updated"]
LAST = ["groups", "error", "key"]
FACETS = ["kind", "status", "env", "algorithm"]

st.title("Runs library")
st.caption(
    f"Bundled stores come from `{datasets_dir()}` (set `{DATASETS_ENV}` to use another folder). "
    "Add a folder of `.zarr` / `.zarr.zip` stores (stores still being written included), or upload "
    "a zipped store: it is validated in memory and kept for this session only. The runs you select "
    "below are the runs every study page shows; the page's address keeps them (bookmark or share it)."
)

chooser.restore_folder()
left, right = st.columns(2)
with left:
    if chooser.FOLDER_INPUT not in st.session_state:
        st.session_state[chooser.FOLDER_INPUT] = st.session_state.get(state.FOLDER_KEY, "")
    folder = st.text_input("Folder with run stores", key=chooser.FOLDER_INPUT, placeholder="/path/to/runs")
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

runs = chooser.library()
if not runs:
    st.info("No runs yet: no stores in the bundled folder, and none added.")
    st.stop()
table = library_table(list(runs.values()))

urlstate.bind("lib_filter", "")
urlstate.bind("lib_all_config", False)
c_text, *c_facets, c_all = st.columns([3, 2, 2, 2, 2, 2], vertical_alignment="bottom")
text = c_text.text_input("Filter (every word, any column)", key="lib_filter", placeholder="sac halfcheetah")
facets = {f: c.multiselect(f, sorted(table[f].dropna().astype(str).unique()), key=f"lib_{f}")
          for f, c in zip(FACETS, c_facets, strict=True)}
all_config = c_all.toggle("All config keys", key="lib_all_config",
                          help="Off: only the config keys whose values differ between the runs listed.")
urlstate.remember("lib_filter", "lib_all_config")
shown = filter_table(table, text, facets)
config_cols = [c for c in table.columns if c.startswith("config.")] if all_config else varying_config_columns(table)
columns = [*FIRST, *config_cols, *LAST]
styled = shown[[*columns, "colour"]].style.apply(  # the config group in its learning-curve colour
    lambda col: [f"background-color: {rgba(c, 0.3)}" if c else "" for c in shown["colour"]], subset=["config group"])
st.dataframe(styled, hide_index=True, width="stretch", column_order=columns, column_config={
    "horizon": st.column_config.NumberColumn(format="%g"),
    "groups": st.column_config.TextColumn(width="large"),
    "error": st.column_config.TextColumn(width="large"),
}, key="lib_table")
st.caption(f"{len(shown)} of {len(table)} runs shown. `config group`: runs whose configs are equal except "
           "for their seeds (`algorithm · env · id of the config`); study pages aggregate their seeds.")

valid = [k for k in runs if runs[k].opened.ok]
shown_keys = [k for k in shown["key"] if k in valid]


def _select(keys: list[str]) -> None:
    st.session_state["lib_selection"] = keys


b_shown, b_clear, _ = st.columns([2, 2, 6])
b_shown.button(f"Select the {len(shown_keys)} shown", key="lib_select_shown", on_click=_select, args=(shown_keys,),
               disabled=not shown_keys)
b_clear.button("Clear selection", key="lib_clear", on_click=_select, args=([],))
chooser.choose_runs(runs, key="lib_selection", label="Selected runs (shown on every study page)", max_default=0,
                    options=valid)

bad = table[table["status"] == "invalid"]
if len(bad):
    st.warning(f"{len(bad)} store(s) could not be opened:\n\n" + "\n".join(
        f"- **{row.name}** ({row.source}): {row.error}" for row in bad.itertuples()))
