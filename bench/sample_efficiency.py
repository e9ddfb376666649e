"""Sample efficiency: evaluation returns at equal environment steps (issue 4; not in CI).

Trains sac, mbpo, sac-svg and maac with their preset defaults on InvertedPendulum-v5 and
Hopper-v5, several seeds each, through the engine's own `train()` (real runs writing real
stores), and prints, per env and algorithm, the mean ± std over seeds of the mean return of the
deterministic policy's evaluation episodes at the budget's checkpoints (every snapshot).

Every algorithm gets the same env-step budget, the same 1,000 uniformly random steps first, its
first model fit there, and the same SAC: MBPO's (2x256, batch 256, lr 3e-4, alpha0 = 1; the sac,
sac-svg and maac presets default to SVG's 2x512, batch 512, lr 1e-4, alpha0 = 0.1, which would
cost ~4x per update here). `sac` also takes MBPO's per-task target entropy, so it is `mbpo`
without model rollouts and with 1 update per env step instead of 5. Everything else is the
preset's (docs/training.md), except MBPO's branches per fit, cut from 100k to `--mbpo-branches`
(10k: M = 40 per env step instead of 400) for the 2-core budget, and MBPO's updates per env step
G = 5 of the preset (MBPO's Hopper value, 20, with `--mbpo-updates 20`). The Study-1 model of
`sac` is switched off (it only records).

Usage:
  python bench/sample_efficiency.py                 # the budget below, 3 seeds (see docs)
  python bench/sample_efficiency.py --quick         # tiny: 2 seeds x 300 steps, for the plumbing
  python bench/sample_efficiency.py --envs InvertedPendulum-v5 --steps 5000
  python bench/sample_efficiency.py --envs Hopper-v5 --algos sac mbpo --seeds 1 --seed-start 2 --out DIR
  python bench/sample_efficiency.py --envs Hopper-v5 --algos mbpo --mbpo-updates 20 --mbpo-branches 100000 \
      --steps 12000 --checkpoints 24 --seeds 1 --seed-start 0 --out DIR   # MBPO's own G and M on Hopper
Results (every run's returns, wall and CPU seconds, load averages) are also written as JSON next
to the stores in --out, after each run; `--table-from A/results.json B/results.json C/x.zarr` prints
the table of finished or cut-short benches (several files: seeds run as separate processes; a
store: a run killed before its results were written, up to its last commit); `--paired A B
--paired-from N` adds algo A against B paired by seed (per-seed mean differences, a t over the
seed means, the sign test over seeds). `--resume` with
the same arguments continues a cut-short bench: finished runs are kept, killed ones continue
from their newest checkpoint (wall and CPU time then count this process's part, from `from_step`).
`--resume` with a larger `--steps` extends finished runs to it (the engine's resume may raise
`steps`; keep the snapshot interval: `--checkpoints` = steps / interval, e.g. 6,000 / 12 and
12,000 / 24); the earlier parts' times stay in the run's `earlier` list.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import stats

# the engine of the checkout this file is in (python puts bench/, not the cwd, on sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import open_run  # noqa: E402
from engine.record import StoreError  # noqa: E402
from engine.train.config import MBPO_SAC, MBPO_TARGET_ENTROPY, TrainConfig  # noqa: E402
from engine.train.run import train  # noqa: E402

ALGOS = ("sac", "mbpo", "sac-svg", "maac")
ENVS = ("InvertedPendulum-v5", "Hopper-v5")
#: env steps per run (see docs/sample-efficiency.md for what this costs here)
BUDGET = {"InvertedPendulum-v5": 3_000, "Hopper-v5": 2_000}
#: what results.json keeps of each earlier part of an extended run (`earlier`)
PART_KEYS = ("steps", "from_step", "wall_s", "cpu_s", "load_1min")


def run_config(algo: str, env: str, seed: int, steps: int, checkpoints: int, quick: bool, branches: int,
               mbpo_updates: int | None = None) -> TrainConfig:
    """One run's config: the preset, a shared warm-up and checkpoint grid, light recording."""
    warmup = 100 if quick else 1_000
    # MBPO's SAC (2x256, batch 256, lr 3e-4, alpha0 1) for all; sac also gets MBPO's target
    # entropy, so it is mbpo without model rollouts and with 1 update per step instead of 5
    extra: dict = {"agent": dict(MBPO_SAC)}
    if algo == "sac" and env in MBPO_TARGET_ENTROPY:
        extra["agent"]["target_entropy"] = MBPO_TARGET_ENTROPY[env]
    if algo == "mbpo":
        extra["rollout"] = {"rollout_batch_size": branches}
        if mbpo_updates is not None:  # MBPO's G; None keeps the preset's 5
            extra["updates_per_step"] = mbpo_updates
    return TrainConfig(
        algo=algo, env_id=env, steps=steps, seed=seed, start_steps=warmup, model_start_steps=warmup,
        snapshot_interval=max(steps // checkpoints, 1), eval_episodes=5, eval_max_steps=1000,
        record_model=algo != "sac", model_error_starts=8, model_error_horizon=10, critic_samples=100,
        commit_interval=max(steps // checkpoints, 1), log_interval=100, **extra,
    )


def returns(store: Path) -> tuple[np.ndarray, np.ndarray]:
    """(snapshot,) env steps and mean evaluation return of a finished store."""
    ev = open_run(store)["eval"]
    return ev["env_step"].values, ev["return"].values.mean(axis=1)


def load_runs(path: Path) -> list[dict]:
    """The runs of a results.json, or the one run of a store (its committed snapshots if killed)."""
    if path.suffix != ".zarr":
        return json.loads(path.read_text())
    attrs = open_run(path).attrs
    env_steps, ret = returns(path)
    return [{"env": attrs["env_id"], "algo": attrs["algorithm"], "seed": attrs["seed"], "status": attrs["status"],
             "env_step": env_steps.tolist(), "return": ret.tolist()}]


def table(results: dict[str, dict[str, dict[int, list[float]]]]) -> str:
    """Markdown table: one row per env and algorithm, one column per checkpoint."""
    lines = []
    for env, by_algo in results.items():
        steps = sorted({s for per_step in by_algo.values() for s in per_step})
        lines += [f"\n{env}\n", "| algo | " + " | ".join(f"{s:,}" for s in steps) + " |",
                  "|---|" + "---|" * len(steps)]
        for algo, per_step in by_algo.items():
            cells = []
            for s in steps:
                v = np.asarray(per_step.get(s, []))
                cells.append("" if not len(v) else f"{v[0]:.0f}" if len(v) == 1
                             else f"{v.mean():.0f} ± {v.std(ddof=1):.0f} (n={len(v)})")
            lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(runs: list[dict], a: str, b: str, first_step: int) -> str:
    """`a` against `b`, paired by seed over the checkpoints >= `first_step` that every run of the
    two in an env reaches: per-seed mean difference, pairs ahead, a one-sample t over the seed
    means (two-sided p) and the sign test over seeds (one-sided p, H1: `a` ahead)."""
    lines = []
    for env in sorted({r["env"] for r in runs}):
        by = {algo: {r["seed"]: dict(zip(r["env_step"], r["return"], strict=True))
                     for r in runs if r["env"] == env and r["algo"] == algo} for algo in (a, b)}
        seeds = sorted(set(by[a]) & set(by[b]))
        if len(seeds) < 2:
            lines.append(f"{env}: {a} and {b} share {len(seeds)} seed(s); pairing needs 2 or more")
            continue
        steps = sorted(set.intersection(*(set(by[x][s]) for x in (a, b) for s in seeds)))
        steps = [c for c in steps if c >= first_step]
        if not steps:
            lines.append(f"{env}: no checkpoint >= {first_step:,} that every run reaches")
            continue
        d = np.array([[by[a][s][c] - by[b][s][c] for c in steps] for s in seeds])  # (seed, checkpoint)
        means = d.mean(axis=1)
        t = stats.ttest_1samp(means, 0.0)
        ahead = int((means > 0).sum())
        sign = stats.binomtest(ahead, len(seeds), 0.5, alternative="greater").pvalue
        lines.append(f"{env}, {a} - {b}, seeds {seeds}, {len(steps)} checkpoints {steps[0]:,}-{steps[-1]:,}: "
                     f"per-seed mean difference {', '.join(f'{m:+.0f}' for m in means)}; "
                     f"{a} ahead in {int((d > 0).sum())} of {d.size} pairs and {ahead} of {len(seeds)} seeds; "
                     f"t = {t.statistic:.2f}, p = {t.pvalue:.3f} (two-sided); sign test p = {sign:.3f} (one-sided)")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=list(ENVS))
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds")
    p.add_argument("--seed-start", type=int, default=0, help="first seed (seeds run in separate processes)")
    p.add_argument("--steps", type=int, help="env steps per run for every env (default: BUDGET per env)")
    p.add_argument("--checkpoints", type=int, default=5, help="evaluations per run (evenly spaced)")
    p.add_argument("--mbpo-branches", type=int, default=10_000, help="MBPO branches per model fit")
    p.add_argument("--mbpo-updates", type=int, help="MBPO's SAC updates per env step G (default: the preset's 5; "
                                                     "MBPO's Hopper setting is 20)")
    p.add_argument("--quick", action="store_true", help="2 seeds x 300 steps, small MBPO rollouts")
    p.add_argument("--out", type=Path, default=Path("/tmp/sample_efficiency"))
    p.add_argument("--resume", action="store_true",
                   help="keep the finished runs of --out's results.json; continue the others' stores from their "
                        "newest checkpoint (a bench cut short, e.g. by a time limit)")
    p.add_argument("--progress", type=int, default=1000, help="print wall and CPU time every N env steps")
    p.add_argument("--per-seed", action="store_true", help="also print one row per run")
    p.add_argument("--table-from", type=Path, nargs="+",
                   help="print the table of results.json files and/or run stores (a killed run's too) and exit")
    p.add_argument("--paired", nargs=2, metavar=("A", "B"),
                   help="with --table-from: also compare algo A against B, paired by seed (t and sign test)")
    p.add_argument("--paired-from", type=int, default=0, help="--paired: only checkpoints at or after this env step")
    args = p.parse_args()
    if args.paired and not args.table_from:
        p.error("--paired compares finished runs: give their results.json files or stores with --table-from")
    if args.table_from:
        runs = [run for f in args.table_from for run in load_runs(f)]
        print(table(collect(runs)), table(collect(runs, per_seed=True)) if args.per_seed else "", sep="\n")
        if args.paired:
            print(paired(runs, *args.paired, args.paired_from))
        return
    torch.set_num_threads(1)
    seeds = 2 if args.quick else args.seeds
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.json"
    # (env, algo, seed) -> its newest results; written back whole after every run, so a run not
    # yet extended keeps its entry (and its times) if this bench is cut short
    done = {(r["env"], r["algo"], r["seed"]): r for r in load_runs(results)} if args.resume and results.exists() else {}
    runs: list[dict] = []
    for env in args.envs:
        steps = 300 if args.quick else (args.steps or BUDGET[env])
        for seed in range(args.seed_start, args.seed_start + seeds):  # seeds outermost: a cut-short bench still compares every algo
            for algo in args.algos:
                before = done.get((env, algo, seed))
                if before is not None and before["steps"] == steps:
                    runs.append(before)
                    continue
                cfg = run_config(algo, env, seed, steps, 3 if args.quick else args.checkpoints, args.quick,
                                 500 if args.quick else args.mbpo_branches, args.mbpo_updates)
                try:
                    run = bench_run(cfg, args.out / f"{env}-{algo}-{seed}.zarr", args.resume, args.progress)
                except StoreError as exc:  # e.g. an extension with another snapshot interval
                    sys.exit(f"error: {exc}\n(a run extended with --resume keeps its snapshot interval: "
                             "--checkpoints = --steps / interval)")
                if before is not None and before["steps"] < steps:  # extended: keep the earlier parts' times
                    run["earlier"] = before.pop("earlier", []) + [{k: before[k] for k in PART_KEYS if k in before}]
                runs.append(run)
                done[(env, algo, seed)] = run
                results.write_text(json.dumps(list(done.values()), indent=1))  # after every run
    print("\nmean ± std over seeds of the mean evaluation return (5 deterministic episodes) at env steps:")
    print(table(collect(runs)), table(collect(runs, per_seed=True)) if args.per_seed else "", sep="\n")


def bench_run(cfg: TrainConfig, store: Path, resume: bool, every: int) -> dict:
    """Train one run (continue its store from the newest checkpoint with `resume`); its results."""
    start = open_run(store).attrs["committed"].get("replay", 0) if resume and store.exists() else 0
    load0, t0, c0 = os.getloadavg()[0], time.perf_counter(), time.process_time()
    train(cfg, store, resume=resume, overwrite=not resume, progress=progress_printer(every, t0, c0))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    env_steps, ret = returns(store)
    print(f"{cfg.env_id} {cfg.algo} seed {cfg.seed}: steps {start}-{cfg.steps} in {wall:.0f} s wall, {cpu:.0f} s CPU, "
          f"returns {np.round(ret, 1).tolist()}", flush=True)
    return {"env": cfg.env_id, "algo": cfg.algo, "seed": cfg.seed, "steps": cfg.steps, "from_step": start,
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
            "env_step": env_steps.tolist(), "return": ret.tolist()}


def progress_printer(every: int, t0: float, c0: float) -> Callable[[int, dict[str, float]], None]:
    """A `train` progress callback printing env step, wall and CPU seconds every `every` steps."""
    def progress(step: int, _last: dict[str, float]) -> None:
        if every and step % every == 0:
            print(f"  step {step}: {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    return progress


def collect(runs: list[dict], per_seed: bool = False) -> dict[str, dict[str, dict[int, list[float]]]]:
    """env -> algo (or "algo seed S") -> env step -> returns over seeds."""
    out: dict[str, dict[str, dict[int, list[float]]]] = {}
    for run in sorted(runs, key=lambda r: (r["algo"], r["seed"])) if per_seed else runs:
        row = f"{run['algo']} seed {run['seed']}" if per_seed else run["algo"]
        for s, r in zip(run["env_step"], run["return"], strict=True):
            out.setdefault(run["env"], {}).setdefault(row, {}).setdefault(s, []).append(r)
    return out


if __name__ == "__main__":
    main()
