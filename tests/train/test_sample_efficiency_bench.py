"""bench/sample_efficiency.py's plumbing: equal footing of its configs, resuming, tables from results and stores."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

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


def test_paired_compares_by_seed_on_the_checkpoints_every_run_reaches(bench) -> None:
    """`a` leads `b` by 10..50 per seed (by lead + 5, then lead - 5). Left out: the checkpoint
    before --paired-from, 400 (seed 0 of `a` stops at 300) and seed 5 (only `a` has it)."""
    leads = [10, 20, 30, 40, 50]
    runs = [{"env": "E", "algo": "b", "seed": s, "env_step": [100, 200, 300, 400], "return": [0.0, 1.0, 2.0, 3.0]}
            for s in range(5)]
    runs += [{"env": "E", "algo": "a", "seed": s, "env_step": [100, 200, 300, 400][: 3 if s == 0 else 4],
              "return": [-1e3, 1.0 + lead + 5, 2.0 + lead - 5, -1e3][: 3 if s == 0 else 4]}
             for s, lead in enumerate(leads)]
    runs.append({"env": "E", "algo": "a", "seed": 5, "env_step": [200, 300], "return": [1e3, 1e3]})
    line = bench.paired(runs, "a", "b", 200)
    t = np.mean(leads) / (np.std(leads, ddof=1) / np.sqrt(5))  # 4.24, 4 degrees of freedom
    assert "seeds [0, 1, 2, 3, 4], 2 checkpoints 200-300" in line
    assert "per-seed mean difference +10, +20, +30, +40, +50" in line
    assert "ahead in 10 of 10 pairs and 5 of 5 seeds" in line
    assert f"t = {t:.2f}, p = {2 * stats.t.sf(t, 4):.3f} (two-sided)" in line
    assert f"sign test p = {1 / 32:.3f} (one-sided)" in line
    assert "share 1 seed(s)" in bench.paired([r for r in runs if r["seed"] in (0, 5)], "a", "b", 0)
