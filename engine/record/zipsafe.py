"""Safety checks on untrusted zips, made on the central directory before any member is read."""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from typing import IO

from engine.record.errors import StoreError


@dataclass(frozen=True)
class Limits:
    """Bounds applied before any chunk of an untrusted store is read."""

    max_zip_bytes: int = 512 * 2**20
    """Largest zip file accepted, in bytes."""
    max_members: int = 20_000
    """Most members a zip may hold."""
    max_uncompressed_bytes: int = 4 * 2**30
    """Largest total uncompressed size of a zip's members."""
    max_ratio: float = 200.0
    """Largest uncompressed/compressed ratio of a zip member (zip-bomb guard)."""
    ratio_min_bytes: int = 2**20
    """Members smaller than this (uncompressed) are not ratio-checked: tiny JSON files
    legitimately compress well and cannot hurt."""
    max_array_bytes: int = 16 * 2**30
    """Largest declared size of one array (shape x itemsize)."""
    max_chunk_bytes: int = 256 * 2**20
    """Largest declared size of one chunk (or shard), which a read decodes whole."""


DEFAULT_LIMITS = Limits()


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def check_zip_file(fileobj: IO[bytes], limits: Limits) -> None:
    """Check an open zip (size, member count, then every member) and rewind it.

    The size and the member count come from the end-of-directory record, so a zip with
    millions of members is refused before its directory is parsed.
    """
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    if size > limits.max_zip_bytes:
        raise StoreError(
            f"The zip is {_mib(size)}; the limit is {_mib(limits.max_zip_bytes)}."
        )
    try:
        end = zipfile._EndRecData(fileobj)  # type: ignore[attr-defined]  # stable since 2.x
    except (OSError, ValueError, EOFError):
        end = None
    if not end:
        fileobj.seek(0)
        if fileobj.read(2) != b"PK":
            raise StoreError(
                "The file is not a zip file; a run store is a .zarr directory or a .zarr.zip "
                "made by `python -m engine pack`."
            )
        raise StoreError(
            "The file is not a readable zip: its end-of-archive record is missing "
            "(the zip is truncated or corrupt; upload the whole file again)."
        )
    declared = end[4]  # _ECD_ENTRIES_TOTAL
    if declared > limits.max_members:
        raise StoreError(f"The zip holds {declared} members; the limit is {limits.max_members}.")
    fileobj.seek(0)
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, NotImplementedError) as exc:
        raise StoreError(f"The file is not a readable zip (truncated or corrupt): {exc}") from None
    check_zip(zf, size, limits)
    fileobj.seek(0)


def check_zip(zf: zipfile.ZipFile, size: int, limits: Limits) -> None:
    """Refuse a zip whose members could escape, lie, or explode; reads only the directory."""
    if size > limits.max_zip_bytes:
        raise StoreError(
            f"The zip is {_mib(size)}; the limit is {_mib(limits.max_zip_bytes)}."
        )
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise StoreError(f"The zip holds {len(infos)} members; the limit is {limits.max_members}.")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        parts = name.split("/")
        if (
            name.startswith(("/", "\\"))
            or "\\" in name
            or "\x00" in name
            or ".." in parts
            or (parts and ":" in parts[0])
        ):
            raise StoreError(f"The zip has an unsafe member name {name!r} (absolute or '..' path).")
        if name in seen:
            raise StoreError(f"The zip has the member {name!r} twice.")
        seen.add(name)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise StoreError(f"The zip member {name!r} is a symbolic link; links are not allowed.")
        if info.flag_bits & 0x1:
            raise StoreError(f"The zip member {name!r} is encrypted; upload an unencrypted zip.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise StoreError(f"The zip member {name!r} uses an unsupported compression method.")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise StoreError(f"The zip member {name!r} declares inconsistent sizes.")
        total += info.file_size
        if (
            info.file_size >= limits.ratio_min_bytes
            and info.file_size > limits.max_ratio * max(info.compress_size, 1)
        ):
            raise StoreError(
                f"The zip member {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}"
                f" times (limit {limits.max_ratio:.0f}): refusing a possible zip bomb."
            )
    if total > limits.max_uncompressed_bytes:
        raise StoreError(
            f"The zip expands to {_mib(total)}; the limit is "
            f"{_mib(limits.max_uncompressed_bytes)}."
        )
    if "zarr.json" not in seen:
        if ".zgroup" in seen or ".zarray" in seen or ".zattrs" in seen:
            raise StoreError("This is a Zarr v2 store; run stores are Zarr v3 (schema version 1).")
        tops = {n.split("/")[0] for n in seen}
        top = next(iter(tops)) if len(tops) == 1 else None
        if top is not None and f"{top}/zarr.json" in seen:
            raise StoreError(
                f"The zip has a top-level folder {top!r} instead of the store's contents: zip "
                "the contents, not the folder (python -m engine pack does this)."
            )
        if not seen:
            raise StoreError("The zip is empty; it is not a Zarr store.")
        raise StoreError("The zip is not a Zarr store: it has no zarr.json at its root.")
