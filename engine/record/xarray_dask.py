"""Keep xarray from importing dask to ask questions whose answer is certain without it.

xarray (2026.9) imports dask the first time it wraps any numpy array in a Variable while dask is
installed, only to ask whether the array is a dask array. `engine.record.reader` calls
`spare_import` once; nothing else of xarray or dask changes (docs/sweeps.md, "xarray and dask").
"""

from __future__ import annotations

import sys
from typing import Any


class _DaskArrayOnceImported(type):
    """isinstance(x, dask.array.Array) without importing dask: False while dask.array is not
    imported, since nothing can be a dask array before then."""

    def __instancecheck__(cls, obj: object) -> bool:
        dask_array = sys.modules.get("dask.array")
        return hasattr(dask_array, "Array") and isinstance(obj, dask_array.Array)


class _DaskArray(metaclass=_DaskArrayOnceImported):
    pass


def spare_import() -> None:
    """xarray imports dask the first time it wraps any numpy array in a Variable, only to ask
    whether the array is a dask array: `isinstance(data, array_type("dask"))` imports
    dask.array (`xarray.namedarray.pycompat`), `is_dask_collection(data)` imports dask.base
    (`xarray.namedarray.utils`). Together 0.5-1 s of CPU of an app page's cold start on 2 cores
    (dask.array imports scipy.fft and scipy.sparse and copies numpy's docstrings), for stores
    that hold no dask array. Both questions have exact answers without importing dask: nothing
    is an instance of dask.array.Array before dask.array is imported, and an object without a
    callable `__dask_graph__` is no dask collection (dask's own first test). So: pre-fill
    xarray's cache of the dask module with an entry whose array type answers that way (anything
    else asked of it, e.g. the version, imports dask for real and replaces the entry), and
    answer the second question's negative case before xarray imports dask to ask it. Does
    nothing where xarray's internals are not what this was written for (then dask is imported
    as before: slower, not wrong); tests/store/test_fsspec_lazy.py checks both sides."""
    try:
        from xarray.namedarray import pycompat
        from xarray.namedarray import utils as xr_utils
    except ImportError:  # pragma: no cover - another xarray layout
        return
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    if isinstance(cache, dict) and "dask" not in cache and "dask.array" not in sys.modules:

        class Deferred:
            type = (_DaskArray,)

            def __getattr__(self, name: str) -> Any:
                cache["dask"] = real = pycompat.DuckArrayModule("dask")
                return getattr(real, name)

        cache["dask"] = Deferred()
    asks_dask = getattr(xr_utils, "is_dask_collection", None)
    if callable(asks_dask) and not getattr(asks_dask, "_no_dask_import", False):

        def is_dask_collection(x: object) -> bool:
            if isinstance(x, type) or not callable(getattr(x, "__dask_graph__", None)):
                return False
            return asks_dask(x)

        is_dask_collection._no_dask_import = True  # type: ignore[attr-defined]
        xr_utils.is_dask_collection = is_dask_collection
