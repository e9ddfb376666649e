"""Entry point: `streamlit run app/main.py` (from the repository root).

Page scripts live in `views/`, not `pages/`: Streamlit auto-discovers a `pages/` folder next to
the entry point, and a deep link to a fresh server would then run that page without this file
(no navigation, no page config).
"""

from __future__ import annotations

import streamlit as st

from app.widgets.export import reset_page
from engine.record import StoreError

st.set_page_config(page_title="mbrl-workbench", page_icon=":material/insights:", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Runs library", icon=":material/folder_open:", default=True),
    st.Page("views/learning_curves.py", title="Learning curves", icon=":material/trending_up:"),
    st.Page("views/model_error.py", title="Open-loop model error", icon=":material/timeline:"),
    st.Page("views/rollout.py", title="Rollout viewer", icon=":material/route:"),
    st.Page("views/q_accuracy.py", title="Q accuracy", icon=":material/scatter_plot:"),
    st.Page("views/model_comparison.py", title="Model classes", icon=":material/compare_arrows:"),
    st.Page("views/generalization.py", title="Model generalization", icon=":material/ssid_chart:"),
    st.Page("views/gradient_error.py", title="Gradient error", icon=":material/show_chart:"),
    st.Page("views/buffer.py", title="Replay buffer", icon=":material/table_rows:"),
]

page = st.navigation(PAGES)
reset_page(page.title)  # the page bundle holds the panels of this run only
try:
    page.run()
except StoreError as exc:  # data are read lazily: a corrupt chunk shows up only when a page reads it
    st.error(f"A run store could not be read, so this page stopped: {exc}")
