"""bench/sample_efficiency.py's plumbing: equal footing of its configs, resuming, tables from results and stores."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from engine import open_run

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sample_efficiency.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("sample_efficiency", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("env", ["Hopper-v5", "InvertedPendulum-v5"])
def test_sac_is_mbpo_without_the_model(bench, env: str) -> None:
    sac, mbpo = (bench.run_config(a, env, 1, 6000, 12, False, 10_000).full() for a in ("sac", "mbpo"))
    assert sac["agent"] == mbpo["agent"]  # the same SAC, target entropy included
    assert sac["agent"]["actor_lr"] == 3e-4 and sac["agent"]["hidden"] == 256
    assert (sac["updates_per_step"], mbpo["updates_per_step"]) == (1, 5)
    assert sac["start_steps"] == mbpo["start_steps"] == mbpo["model_start_steps"] == 1000
    assert mbpo["rollout"]["rollout_batch_size"] == 10_000 and sac["rollout"] == {}
    assert sac["snapshot_interval"] == mbpo["commit_interval"] == 500


def test_mbpo_updates_sets_only_mbpos_g(bench) -> None:
    args = ("Hopper-v5", 1, 6000, 12, False, 100_000)
    g5, g20 = (bench.run_config("mbpo", *args, mbpo_updates=g).full() for g in (None, 20))
    assert (g5["updates_per_step"], g20["updates_per_step"]) == (5, 20)
    assert {k: v for k, v in g20.items() if k != "updates_per_step"} == {k: v for k, v in g5.items() if k != "updates_per_step"}
    assert bench.run_config("sac", *args, mbpo_updates=20).full()["updates_per_step"] == 1  # the SAC row stays G = 1


def test_table_pools_results_files_and_a_store(bench, tmp_path: Path) -> None:
    cfg = dataclasses.replace(bench.run_config("sac", "InvertedPendulum-v5", 3, 60, 3, True, 500),
                              start_steps=20, model_start_steps=20)
    store = tmp_path / "run.zarr"
    fresh = bench.bench_run(cfg, store, resume=False, every=20)
    steps, ret = bench.returns(store)
    assert fresh["from_step"] == 0 and fresh["return"] == ret.tolist() and fresh["cpu_s"] > 0
    again = bench.bench_run(cfg, store, resume=True, every=0)  # a finished store: nothing left to train
    assert again["from_step"] == 60 and again["return"] == fresh["return"]
    assert open_run(store).attrs["committed"]["replay"] == 60
    ev = open_run(store)["eval"]
    assert steps.tolist() == [20, 40, 60]
    np.testing.assert_allclose(ret, ev["return"].values.mean(axis=1))
    other = [{"env": "InvertedPendulum-v5", "algo": "sac", "seed": 4, "env_step": [20, 40, 60], "return": [1.0, 2.0, 3.0]}]
    (tmp_path / "results.json").write_text(json.dumps(other))
    runs = [r for p in (tmp_path / "results.json", store) for r in bench.load_runs(p)]
    assert [(r["seed"], r.get("status")) for r in runs] == [(4, None), (3, "complete")]
    pooled = bench.collect(runs)["InvertedPendulum-v5"]["sac"]
    assert pooled == {s: [o, float(r)] for s, o, r in zip([20, 40, 60], [1.0, 2.0, 3.0], ret, strict=True)}
    row = bench.table(bench.collect(runs)).splitlines()[-1]
    both = np.array([3.0, ret[-1]])
    assert row.endswith(f"{both.mean():.0f} ± {both.std(ddof=1):.0f} (n=2) |")
