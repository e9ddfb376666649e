"""Run a sweep's runs on a Dask cluster: a LocalCluster on 127.0.0.1, or any scheduler address.

Each run is one task (`engine.sweep.task.run`, which starts the training as a child process of
the worker); tasks are never retried by Dask (`retries=0`), so a failure is reported once, with
its reason, and the next invocation of the same sweep resumes it from its store. A task whose
worker dies is rescheduled by Dask itself; the rerun then fails at once (`task.run`'s marker), so
that run too is reported failed rather than trained again behind the user's back.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from engine.sweep.spec import Sweep
from engine.sweep.task import RunResult, run


@dataclass(frozen=True)
class ClusterOptions:
    """Where the runs execute."""

    scheduler: str | None = None
    """Address of a running scheduler (`tcp://host:8786`); None starts a LocalCluster."""
    workers: int = 1
    """LocalCluster worker processes."""
    threads: int = 1
    """Threads per LocalCluster worker: concurrent runs per worker (each a child process)."""
    dashboard: int | None = None
    """LocalCluster dashboard port on 127.0.0.1 (None: no dashboard)."""


@contextlib.contextmanager
def client_for(opts: ClusterOptions) -> Iterator[Any]:
    """A dask.distributed Client on `opts.scheduler`, or on a LocalCluster bound to 127.0.0.1."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError("sweeps need dask.distributed: pip install -e '.[scale]'") from None
    if opts.scheduler:
        with Client(opts.scheduler) as client:
            yield client
        return
    dashboard = f"127.0.0.1:{opts.dashboard}" if opts.dashboard is not None else None
    # memory_limit=0: the training runs in child processes the nanny does not account for anyway
    with LocalCluster(host="127.0.0.1", processes=True, n_workers=opts.workers,
                      threads_per_worker=opts.threads, dashboard_address=dashboard,
                      memory_limit=0, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def run_sweep(sweep: Sweep, client: Any, on_result: Callable[[RunResult], None] | None = None,
              ) -> list[RunResult]:
    """Submit every run, collect results as they complete (`on_result` for each), and return
    them in the sweep's order. A task that dies with its worker is a failed run."""
    from distributed import as_completed

    invocation = uuid.uuid4().hex  # a rerun of a task in this invocation means its worker died
    futures = {client.submit(run, r.name, r.store, r.config, invocation, key=f"sweep-run-{r.name}",
                             pure=False, retries=0): r for r in sweep.runs}
    results: dict[str, RunResult] = {}
    for future in as_completed(futures):
        spec = futures[future]
        try:
            result = future.result()
            future.release()  # a worker that dies later holding it would make Dask rerun the task
        except Exception as exc:  # noqa: BLE001 - a lost worker (KilledWorker) or a bug in the task
            result = RunResult(spec.name, spec.store, "failed", "?", 0.0,
                               f"task failed or its worker died ({type(exc).__name__}: {exc})")
        results[spec.name] = result
        if on_result is not None:
            on_result(result)
    return [results[r.name] for r in sweep.runs]


def summary(results: list[RunResult]) -> str:
    """A plain-text table: one row per run, then the counts."""
    rows = [("run", "status", "action", "seconds", "reason")]
    rows += [(r.name, r.status, r.action, f"{r.seconds:.0f}", r.reason) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
             for row in rows]
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(results)} runs")
    return "\n".join(line.rstrip() for line in lines)
