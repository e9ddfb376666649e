"""The non-Zarr files of a store directory: the writer lock, zarr's temp files, and `pack`.

One store has one writer: `acquire_lock` takes an exclusive `flock` on `.writer.lock` inside
the store (the OS drops it when the process dies, so a killed writer never blocks a resume).
zarr's LocalStore writes every file as `NAME.<uuid>.partial` and renames it; a kill can leave
such a file behind, which readers ignore and a resuming writer deletes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from engine.record.errors import StoreError, StoreLockedError

LOCK_NAME = ".writer.lock"
PARTIAL_SUFFIX = ".partial"


def acquire_lock(path: Path) -> IO[str]:
    """Take the store's writer lock (an flock the OS drops when the process dies)."""
    lock_path = path / LOCK_NAME
    while True:
        fh = open(lock_path, "a+")  # noqa: SIM115 - held for the writer's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            pid, host = _parse_holder(holder)
            where = f" on {host}" if host else ""
            who = "this process" if holder == _holder_id() else f"process {pid}{where}"
            raise StoreLockedError(
                f"Another writer ({who}) is writing {str(path)!r}; one store has one writer. "
                "Wait for it to finish or stop it first."
            ) from None
        try:  # the holder may have released and removed the file as we locked it
            same = os.fstat(fh.fileno()).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()
    fh.seek(0)
    fh.truncate()
    fh.write(_holder_id())
    fh.flush()
    return fh


def _holder_id() -> str:
    """`PID@HOST`: what the lock file says about its holder (the host, because stores live on
    shared file systems, where a PID alone names no process)."""
    return f"{os.getpid()}@{socket.gethostname()}"


def _parse_holder(holder: str) -> tuple[str, str]:
    """(pid, host) from a lock file's `PID@HOST` (or a bare PID, from older writers); host is ""
    when it is this host or unknown."""
    pid, _, host = holder.partition("@")
    return pid, "" if host == socket.gethostname() else host


def writer_alive(path: str | os.PathLike[str]) -> bool:
    """Whether a process may still be writing the store directory `path`: False only when the
    lock file is gone, or names a process of this host that no longer exists (a killed writer
    leaves its lock file; a closed one removes it). Reads the file, never takes the lock: a
    reader that held it even briefly could make a resuming writer's non-blocking lock fail."""
    try:
        holder = (Path(path) / LOCK_NAME).read_text().strip()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: say alive, the cautious answer for a live view
    pid, host = _parse_holder(holder)
    if not pid.isdigit() or host:  # another host's process: cannot tell
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def release_lock(path: Path, fh: IO[str]) -> None:
    """Remove the lock file, then drop the lock (in this order: see `acquire_lock`)."""
    with contextlib.suppress(OSError):
        (path / LOCK_NAME).unlink()
    fh.close()


@contextlib.contextmanager
def quiet_listing() -> Iterator[None]:
    """Silence zarr's warning about non-Zarr files in a store (the lock file, a `*.partial`
    temp file left by a kill): they are expected and harmless."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr")
        yield


def remove_partials(path: Path) -> None:
    for tmp in path.rglob(f"*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def pack(store_dir: str | os.PathLike[str], zip_path: str | os.PathLike[str]) -> Path:
    """Zip a store's contents (not its folder) so `open_run` and zarr read it unextracted.

    Holds the store's lock while zipping, so no writer can change it underneath.
    """
    src, dst = Path(store_dir), Path(zip_path)
    if not (src / "zarr.json").is_file():
        raise StoreError(f"{str(src)!r} is not a store directory (it has no zarr.json).")
    try:
        lock: IO[str] | None = acquire_lock(src)
    except StoreLockedError:
        raise StoreLockedError(f"{str(src)!r} is being written; pack it when it is done.") from None
    except OSError:  # a read-only store: nobody can be writing it
        lock = None
    try:
        tmp = dst.with_name(dst.name + ".tmp")
        # Chunks are already compressed by zarr; storing them keeps reads seekable and cheap.
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for file in sorted(src.rglob("*")):
                if file.is_file() and file.name != LOCK_NAME and not file.name.endswith(PARTIAL_SUFFIX):
                    zf.write(file, file.relative_to(src).as_posix())
        os.replace(tmp, dst)
    finally:
        if lock is not None:
            release_lock(src, lock)
    return dst
