"""The one exception type for bad stores, with plain-language messages."""

from __future__ import annotations


class StoreError(ValueError):
    """A run store is missing, malformed, unsafe or of an unknown schema.

    The message is meant for the person who gave the store: it says what is wrong and,
    where it helps, what to do about it.
    """


class StoreLockedError(StoreError):
    """Another writer holds the store."""
