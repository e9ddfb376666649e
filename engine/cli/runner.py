"""Run a long command under a progress bar, turning store and config errors into messages."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ProgressFn = Callable[..., None]


def run_with_bar(total: int, unit: str, desc: str, work: Callable[[Any], Path],
                 update: Callable[[Any, tuple], None]) -> int:
    """`work(progress)` with a tqdm bar; `update(bar, args)` moves the bar for each progress call.

    Returns the exit code: 0 done, 1 on a StoreError/ValueError (message on stderr, no traceback).
    """
    from tqdm import tqdm

    from engine.record import StoreError

    bar = tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True)
    try:
        out = work(lambda *args: update(bar, args))
    except (StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    print(f"wrote {out}  (inspect: python -m engine validate {out}; zip: python -m engine pack {out})")
    return 0


def count_update(bar: Any, call: tuple) -> None:
    """`update` for work whose progress calls are (done, total): the bar shows `done`."""
    bar.n = call[0]
    bar.refresh()
