"""Safety checks on untrusted zips, made on the central directory before any member is read."""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass

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
    max_array_bytes: int = 16 * 2**30
    """Largest declared size of one array (shape x itemsize)."""


DEFAULT_LIMITS = Limits()



def check_zip(zf: zipfile.ZipFile, size: int, limits: Limits) -> None:
    """Refuse a zip whose members could escape, lie, or explode; reads only the directory."""
    if size > limits.max_zip_bytes:
        raise StoreError(
            f"The zip is {size / 2**20:.1f} MiB; the limit is {limits.max_zip_bytes / 2**20:.0f} MiB."
        )
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise StoreError(f"The zip holds {len(infos)} members; the limit is {limits.max_members}.")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
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
        total += info.file_size
        if info.file_size > 1 << 20 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise StoreError(
                f"The zip member {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}"
                f" times (limit {limits.max_ratio:.0f}): refusing a possible zip bomb."
            )
    if total > limits.max_uncompressed_bytes:
        raise StoreError(
            f"The zip expands to {total / 2**30:.2f} GiB; the limit is "
            f"{limits.max_uncompressed_bytes / 2**30:.1f} GiB."
        )
    if "zarr.json" not in seen:
        if ".zgroup" in seen or ".zarray" in seen:
            raise StoreError("This is a Zarr v2 store; run stores are Zarr v3 (schema version 1).")
        tops = {n.split("/")[0] for n in seen}
        hint = (
            f" It has a top-level folder {next(iter(tops))!r}: zip the store's contents, "
            "not the folder (python -m engine pack does this)."
            if len(tops) == 1 and any(f"{next(iter(tops))}/zarr.json" == n for n in seen)
            else ""
        )
        raise StoreError("The zip is not a Zarr store: it has no zarr.json at its root." + hint)
