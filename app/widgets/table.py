"""A table with one row per run or config, its name painted in that run's colour."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from app.figures.style import rgba


def coloured_table(table: pd.DataFrame, colours: Mapping[str, str], *, column: str, key: str) -> None:
    """`table` with the cells of `column` painted in `colours[cell]` (the run's or config's
    colour on the page's figures), so a row reads as its curve or panel."""
    styled = table.style.apply(
        lambda col: [f"background-color: {rgba(colours[c], 0.3)}" if c in colours else "" for c in col],
        subset=[column])
    st.dataframe(styled, hide_index=True, key=key)
