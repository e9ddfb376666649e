"""`sweep`: run the cross product of a sweep file on a Dask cluster, one store per run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXAMPLE = """\
sweep file (YAML; every key of config and grid is a `train` config field):
  out: runs/pendulum          # folder of the stores, relative to the sweep file
  config: {env_id: InvertedPendulum-v5, steps: 20000}
  grid: {seed: [0, 1, 2], algo: [sac, mve-sac], agent.hidden: [64, 256]}

Rerun the same command after a failure or a kill: complete stores are skipped, partial ones
resumed. Details: docs/sweeps.md.
"""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `sweep`."""
    p = sub.add_parser(
        "sweep", help="train the cross product of seeds x envs x algos x config keys on Dask",
        description="Run every grid point of SWEEP: one `engine train` per run, each in a child\n"
        "process of a Dask worker and writing its own store under `out`, on a LocalCluster bound\n"
        "to 127.0.0.1 or on the scheduler given by --scheduler. Failed runs are listed with\n"
        "their reason; rerunning the same command resumes them.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", type=Path, help="sweep file (YAML)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                   "(dask-jobqueue on SLURM: docs/sweeps.md); default: a LocalCluster on 127.0.0.1")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: min(runs, CPUs))")
    p.add_argument("--threads", type=int, default=1, help="concurrent runs per LocalCluster worker (default 1)")
    p.add_argument("--dashboard", type=int, metavar="PORT",
                   help="serve the LocalCluster's dashboard on 127.0.0.1:PORT (default: none)")
    p.add_argument("--list", action="store_true", help="print the runs and their stores, run nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """0 when every run is complete, 1 when any failed, 2 on a bad sweep file or option."""
    from engine.sweep import ClusterOptions, client_for, load, run_sweep, summary

    try:
        sweep = load(args.sweep)
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for r in sweep.runs:
            print(f"{r.store}  {r.config}")
        return 0
    if (args.workers is not None and args.workers < 1) or args.threads < 1:
        print("error: --workers and --threads must be >= 1", file=sys.stderr)
        return 2
    workers = args.workers or max(1, min(len(sweep.runs), os.cpu_count() or 1))
    opts = ClusterOptions(args.scheduler, workers, args.threads, args.dashboard)
    from tqdm import tqdm

    print(f"{len(sweep.runs)} runs -> {sweep.out}", file=sys.stderr)
    sweep.out.mkdir(parents=True, exist_ok=True)
    try:
        with client_for(opts) as client, tqdm(total=len(sweep.runs), unit="run", desc="sweep") as bar:
            def done(result) -> None:  # noqa: ANN001 - a RunResult
                bar.update(1)
                if result.status == "failed":
                    bar.write(f"failed: {result.name}: {result.reason}")

            results = run_sweep(sweep, client, done)
    except (RuntimeError, OSError) as exc:  # no distributed, unreachable scheduler
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(results))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        print(f"rerun `python -m engine sweep {args.sweep}` to resume the failed runs "
              f"(logs in {sweep.out / '.sweep'})", file=sys.stderr)
    return 1 if failed else 0
