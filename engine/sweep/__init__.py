"""Sweeps: the cross product of a sweep file's grid, one store per run, on a Dask cluster
(docs/sweeps.md). `engine.sweep.task` is what a worker runs; it imports no Dask."""

from engine.sweep.runner import ClusterOptions, client_for, run_sweep, summary
from engine.sweep.spec import RunSpec, Sweep, load, parse
from engine.sweep.task import RunResult

__all__ = ["ClusterOptions", "RunResult", "RunSpec", "Sweep", "client_for", "load", "parse", "run_sweep",
           "summary"]
