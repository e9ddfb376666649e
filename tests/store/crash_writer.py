"""A writer process for the crash tests: `python crash_writer.py STORE MODE [COMMITS]`.

Creates (or resumes) a training store and loops: buffer BATCH replay steps and one train
update, print `A <i>`, commit, print `C <commit counter> <replay steps> <train updates>`. Values depend only
on the record index (storekit), so the test can check exactly what survived a SIGKILL.

MODE:
  free           run until COMMITS loop commits are done (then close), or forever if 0
  pause-append   in the 2nd loop commit, after the first array's append, print PAUSED and
                 wait to be killed (arrays now have ragged lengths beyond `committed`)
  pause-resize   in the 2nd loop commit, after an array was resized but before its data is
                 written, print PAUSED and wait to be killed
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import zarr
import zarr.core.array as zarray

import storekit
from engine.record import RunWriter

BATCH = 2500
OBS_DIM = 48  # about 1 MB of float32 per commit: most of the loop's time is in appends


def _pause() -> None:
    print("PAUSED", flush=True)
    time.sleep(120)
    raise SystemExit("not killed")


def arm(mode: str) -> None:
    """Install the pause hook (active from the call on)."""
    if mode == "pause-append":
        original = zarr.Array.append
        calls = {"n": 0}

        def append(self: zarr.Array, data, axis: int = 0):  # type: ignore[no-untyped-def]
            out = original(self, data, axis=axis)
            calls["n"] += 1
            if calls["n"] == 3:  # a few arrays in: replay partly appended, train not yet
                _pause()
            return out

        zarr.Array.append = append  # type: ignore[method-assign]
    elif mode == "pause-resize":
        original_setitem = zarray._setitem

        async def _setitem(*args, **kwargs):  # type: ignore[no-untyped-def]
            _pause()
            return await original_setitem(*args, **kwargs)

        zarray._setitem = _setitem


def main() -> None:
    path, mode = Path(sys.argv[1]), sys.argv[2]
    commits = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if (path / "zarr.json").exists():
        w = RunWriter.resume(path)
    else:
        w = RunWriter.create(path, kind="training", env_id="Hopper-v5", algorithm="sac", seed=3,
                             config={"batch": BATCH})
        w.add_group("replay", coords={"obs_dim": range(OBS_DIM), "act_dim": range(storekit.ACT)})
        w.add_group("eval", coords={"episode": range(storekit.EVAL_EPISODES)})
        w.add_group("train", coords={}, extra={"loss": storekit.LOSS})
    step, update = w.committed["replay"], w.committed["train"]
    print(f"START {w.commit_count} {step} {update}", flush=True)
    done = 0
    while commits == 0 or done < commits:
        if done == 1 and mode != "free":
            arm(mode)
        w.append("replay", **storekit.replay_rows(step, BATCH, obs_dim=OBS_DIM))
        w.append("train", **storekit.train_rows(update, 1))
        print(f"A {done}", flush=True)  # about to commit: a kill now lands in the appends
        w.commit()
        step, update, done = step + BATCH, update + 1, done + 1
        print(f"C {w.commit_count} {step} {update}", flush=True)
    w.append("eval", **storekit.eval_rows(0, 1))
    w.close()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    main()
