"""App page latency on a big store: each page rendered cold (a fresh process: app modules
imported, the store opened, the page drawn) and warm (the same page rerun: stores cached by
`st.cache_resource`), with Streamlit's AppTest, against the goals of issue 8 (cold <= 3 s,
warm <= 1 s; ratios > 1 miss the goal), and against the same page on the bundled 15k-step
training store measured in the same run (what the 1M-step store adds). Times are wall and CPU
seconds of the app's process: on a machine shared with other jobs the CPU time is the better
estimate of the wall time on an idle one.

    python bench/make_big_store.py                      # once: /tmp/mbrl-bench/big.zarr, 1M transitions
    python bench/app_latency.py [--store /tmp/mbrl-bench/big.zarr] [--warm 3] [--profile PAGE]

The app lists every store in the store's folder (MBRL_WORKBENCH_DATASETS), so keep the big store
alone in its folder. `--profile PAGE` runs that page's cold render under cProfile and prints
where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's app and engine first

GOAL_COLD, GOAL_WARM = 3.0, 1.0
BASELINE = REPO / "datasets" / "mve_ddpg_halfcheetah.zarr.zip"
"""The same pages on the bundled 15k-step training store, measured in the same run."""
PAGES = ["views/home.py", "views/learning_curves.py", "views/model_error.py", "views/q_accuracy.py",
         "views/model_comparison.py", "views/generalization.py", "views/gradient_error.py"]


def child(page: str, warm: int) -> None:
    """In a fresh process: render `page` once cold, then `warm` times; print one JSON line."""
    from streamlit.testing.v1 import AppTest

    # Streamlit's own start (runtime, component registry, its imports) happens once per server,
    # not per page: done first, on a one-line script, and reported apart
    runtime = _timed(AppTest.from_string("import streamlit as st\nst.write('x')", default_timeout=300).run)
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=300)
    at.switch_page(page)  # before the first run: the page is found by its file name
    cold = _timed(at.run)
    warms = [_timed(at.run) for _ in range(warm)]
    print(json.dumps({"page": page, "runtime": runtime, "cold": cold, "warm": warms, "charts": len(at.get("plotly_chart")),
                      "exception": [str(e.value)[:200] for e in at.exception]}))


def _timed(fn) -> tuple[float, float]:  # noqa: ANN001
    """(wall s, CPU s of this process) of fn(): on a machine shared with other jobs the CPU time
    is the closer estimate of the wall time on an idle one (the app runs on one core)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(store: Path, page: str, warm: int, profile: Path | None = None) -> dict:
    """Run the child for `page` (under `py-spy record` into `profile` if given)."""
    env = {**os.environ, "MBRL_WORKBENCH_DATASETS": str(store.parent)}
    cmd = [sys.executable, __file__, "--child", page, "--warm", str(warm)]
    if profile is not None:
        cmd = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "--rate", "250", "--threads", "-o", str(profile), "--", *cmd]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if res.returncode:
        raise RuntimeError(f"{page}: {res.stderr[-2000:]}")
    return json.loads([ln for ln in res.stdout.splitlines() if ln.startswith("{")][-1])


def profile_report(raw: Path, top: int = 30) -> None:
    """Inclusive samples of the script thread's frames in app/, engine/ and the libraries they
    call (one count per frame per stack), from a py-spy raw profile."""
    from collections import Counter

    total, frames = 0, Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "ScriptRunner" not in stack and "script_runner" not in stack:
            continue  # the main thread only waits for the script thread
        total += int(n)
        for frame in set(stack.split(";")):
            if "(app/" in frame or "(engine/" in frame or "exec_func_with_error_handling" in frame or any(
                    f"({lib}/" in frame for lib in ("xarray", "zarr", "dask", "plotly", "numpy", "pandas")):
                frames[frame] += int(n)
    print(f"{total} samples in the script thread; top frames by inclusive share:")
    for frame, n in frames.most_common(top):
        print(f"{n / max(total, 1):6.1%}  {frame[:150]}")


def _median(times: list[list[float]]) -> list[float]:
    return sorted(times, key=lambda t: t[1])[len(times) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, help="the big store (default: make_big_store.py's)")
    p.add_argument("--warm", type=int, default=3, help="warm reruns per page (the median is reported)")
    p.add_argument("--pages", nargs="*", default=PAGES)
    p.add_argument("--profile", metavar="PAGE", help="profile PAGE's cold render instead")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:  # nothing heavy imported before this: the child must be what a fresh app is
        child(args.child, args.warm)
        return
    if args.store is None:
        sys.path.insert(0, str(REPO / "bench"))
        from make_big_store import DEFAULT_OUT  # imports the engine's training side: parent only

        args.store = DEFAULT_OUT
    if not (args.store / "zarr.json").exists():
        sys.exit(f"no store at {args.store}: run python bench/make_big_store.py first")
    if args.profile:
        raw = Path(f"/tmp/app_latency_{Path(args.profile).stem}.txt")
        r = measure(args.store, args.profile, 0, profile=raw)
        print(f"{args.profile}: cold {r['cold'][0]:.2f} s wall (under py-spy); profile {raw}")
        profile_report(raw)
        return
    base_dir = Path(tempfile.mkdtemp(prefix="app_latency_base_"))
    shutil.copy(BASELINE, base_dir / BASELINE.name)  # alone in its folder, like the big store
    print(f"store {args.store}; baseline {BASELINE.name} (15k steps); load average {os.getloadavg()[0]:.1f}")
    print("| page | Streamlit start CPU s | cold wall s | cold CPU s | cold CPU / goal | warm wall s | warm CPU s "
          "| warm CPU / goal | charts | cold CPU / baseline's | warm CPU / baseline's |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for page in args.pages:
        r, b = measure(args.store, page, args.warm), measure(base_dir / BASELINE.name, page, args.warm)
        (cw, cc), (ww, wc) = r["cold"], _median(r["warm"])
        bc, bw = b["cold"][1], _median(b["warm"])[1]
        error = f" (exception: {'; '.join(r['exception'])})" if r["exception"] else ""
        print(f"| {page.removeprefix('views/')} | {r['runtime'][1]:.2f} | {cw:.2f} | {cc:.2f} | {cc / GOAL_COLD:.2f} "
              f"| {ww:.2f} | {wc:.2f} | {wc / GOAL_WARM:.2f} | {r['charts']}{error} | {cc / bc:.2f} "
              f"| {wc / max(bw, 1e-3):.2f} |", flush=True)
    shutil.rmtree(base_dir)
    print(f"goals: cold <= {GOAL_COLD} s, warm <= {GOAL_WARM} s (ratio <= 1 meets it); warm = median of "
          f"{args.warm}; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
