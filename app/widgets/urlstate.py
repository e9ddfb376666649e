"""Page settings and the run selection in the URL query (`st.query_params`), so a view can be
shared or bookmarked.

A parameter found in the URL is applied when this session did not write it itself: a link
opened in a new tab, a bookmark, or an edited address. Each page then writes its current
settings back after drawing its widgets. Streamlit drops the query when the user moves to
another page; the session keeps what was chosen, and the new page writes its own settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

WRITTEN = "_url_written"
"""Session key: parameter -> the values this session last wrote to the URL."""


def _written() -> dict[str, list[str]]:
    return st.session_state.setdefault(WRITTEN, {})


def incoming(param: str) -> list[str] | None:
    """The URL's values of `param` if it carries some this session did not write, else None."""
    if param not in st.query_params:
        return None
    values = st.query_params.get_all(param)
    return None if _written().get(param) == values else values


def publish(param: str, values: str | Sequence[str] | None) -> None:
    """Put `values` in the URL as `param` (repeated for several; removed when empty)."""
    vals = [] if values is None else [values] if isinstance(values, str) else [str(v) for v in values]
    current = st.query_params.get_all(param) if param in st.query_params else []
    if vals != current:
        if vals:
            st.query_params[param] = vals
        else:
            del st.query_params[param]
    _written()[param] = vals


def parse_bool(text: str) -> bool:
    """`true`/`false` (as `publish` writes booleans) -> bool."""
    if text.lower() not in ("true", "false"):
        raise ValueError(f"not a boolean: {text!r}")
    return text.lower() == "true"


def bind(key: str, default: Any, *, options: Sequence[Any] | None = None,
         parse: Callable[[str], Any] | None = None, valid: Callable[[Any], bool] | None = None) -> None:
    """Seed the widget `key` before it is drawn (the widget then gets no default of its own):
    the URL parameter `key` when it brings a valid value, else the value the session has,
    else `default`. A value is valid if it is in `options` (when given) and passes `valid`."""
    parse = parse or (parse_bool if isinstance(default, bool) else type(default))
    values = incoming(key)
    if values:
        try:
            value = parse(values[-1])
        except (TypeError, ValueError):
            value = None
        if value is not None and (options is None or value in options) and (valid is None or valid(value)):
            st.session_state[key] = value
    current = st.session_state.get(key, None)
    if current is None or (options is not None and current not in options):
        st.session_state[key] = default


def remember(*keys: str) -> None:
    """Write the current values of the widgets `keys` to the URL."""
    for key in keys:
        value = st.session_state.get(key)
        text = None if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        publish(key, text or None)  # an empty text box leaves no `key=` behind
