"""The run store: schema (names, dims, units), Zarr I/O, writer and reader."""

from engine.record.errors import StoreError, StoreLockedError
from engine.record.reader import RunSummary, open_run, summarize
from engine.record.files import pack, writer_alive
from engine.record.writer import RunWriter
from engine.record.zipsafe import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS", "Limits", "RunSummary", "RunWriter", "StoreError", "StoreLockedError",
    "open_run", "pack", "summarize", "writer_alive",
]
