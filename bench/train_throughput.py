"""Benchmark of training throughput: our SAC and DDPG against Stable-Baselines3, the recorder's
overhead, and the SAC update against the FLOP limit of this CPU.

Setting (both sides alike): HalfCheetah-v5 (the engine's env, x coordinate kept: 18-dim
observations), actor and critics 2 x 256 ReLU, batch 256, `--start-steps` uniformly random
steps, then 1 gradient update per env step, `--threads` torch threads. Throughput is env steps/s
over a window of `--steps` learning steps, timed from inside the loops (our `progress`
callback, an SB3 callback), so set-up, the random phase and the final evaluation are excluded.

Ours runs through `engine.train.run.train` with recording as normal: commits (replay append +
checkpoint) every 1000 steps and `train` rows every 100 updates fall inside the window at their
default intervals; snapshots (evaluation, Study 2 critic samples, Study 1 model errors) and the
Study 1 model fits come every 5000 steps, beyond the default window, so their cost is measured
as pieces and amortised over their default interval instead (section 3 of the output).

Each training run (sections 2 and 3a) runs in a fresh Python process of its own, both sides
alike (`--in-process`: all in this one), so that no run inherits another's process state.
Prints, all from one run, every figure a median of `--repeats` interleaved measurements, each
also per CPU second of the measuring process (robust to the other workers' load, unlike wall
time):
  1. the matmul rate of this CPU (256x256 @ 256x256 loop) and, for one isolated SAC and DDPG
     update, its time against its FLOP count at that rate ("x of FLOP limit");
  2. env steps/s of ours and SB3 for SAC and DDPG, measured in turn (ours, SB3, ours, SB3, ...;
     the order flips every repeat), the median of the paired ratios ours/SB3, and the share of
     our step's CPU time spent in `Trainer._update`;
  3. the recorder's overhead: (a) ours SAC with recording on vs off inside the window (off =
     the loop's commit, snapshot, model-fit and train-row methods patched to no-ops in the
     measuring process only, `record_model=False`), as a paired A/B and, less noisy, from the
     update's share of step time on and off (the update costs the same); (b) the pieces
     (snapshot with the store write of its records, model refit, commit, train row) timed on a
     Trainer fed random steps, amortised at the default intervals as a percentage of the
     training time they interrupt, also for each Study 1 refit cap in `--refit-caps`
     (`record_model_updates` candidates).

Goals (issue 3): ours >= 1.5x SB3, SAC update within 2x of the FLOP limit, recorder <= 3 %.

Usage: python bench/train_throughput.py [--steps N] [--repeats R] [--threads T] [--quick]
       python bench/train_throughput.py --only ours-sac --repeats 1   (e.g. under py-spy)
       python bench/train_throughput.py --py-spy-report FILE          (bucket a py-spy raw profile)
Needs the `bench` extra (pip install -e .[bench]) for the SB3 side. Reaches into the Trainer's
private methods (_update, _commit, _snapshot, _fit_model, _collect_one): update this file if
engine/train/loop.py renames them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

# bench/ is on sys.path when run as a script; update_cost puts the checkout's engine first
from py_spy_report import py_spy_report
from recorder_pieces import recorder_pieces
from update_cost import BATCH, ENV_ID, HIDDEN, LAYERS, Stamp, isolated_updates, matmul_rate, rates, stamp, update_flops

from engine.envs.factory import make_env
from engine.train import loop as train_loop
from engine.train.config import TrainConfig
from engine.train.recorder import TrainRecorder
from engine.train.run import train
WARM = 10  # learning steps skipped before the window opens (lazy optimiser state, first batches)
KINDS = ("ours-sac", "sb3-sac", "ours-sac-off", "ours-ddpg", "sb3-ddpg")


# -- 2. throughput ------------------------------------------------------------------------------

def _window(args: argparse.Namespace) -> tuple[int, int]:
    """(first, last) env step of the timed window: steps first+1 .. last are measured."""
    first = args.start_steps + WARM
    return first, first + args.steps


@contextlib.contextmanager
def recording_off() -> Iterator[None]:
    """Patch the loop's recording methods to no-ops (in this process, for the `with` only)."""
    patched = [(train_loop.Trainer, "_commit"), (train_loop.Trainer, "_snapshot"),
               (train_loop.Trainer, "_fit_model"), (TrainRecorder, "train")]
    saved = [getattr(cls, name) for cls, name in patched]
    for cls, name in patched:
        setattr(cls, name, lambda *a, **k: None)
    try:
        yield
    finally:
        for (cls, name), fn in zip(patched, saved, strict=True):
            setattr(cls, name, fn)


def run_ours(algo: str, args: argparse.Namespace, record: bool = True) -> tuple[float, float, float]:
    """Env steps per wall second and per CPU second of our trainer over the window, and the share
    of the CPU time spent in `Trainer._update` (replay sample + agent update + metrics)."""
    first, last = _window(args)
    cfg = TrainConfig(algo=algo, env_id=ENV_ID, steps=last + 1, seed=0, start_steps=args.start_steps,
                      torch_threads=args.threads, record_model=record,
                      agent={"hidden": HIDDEN, "layers": LAYERS, "batch_size": BATCH})
    marks: dict[int, Stamp] = {}
    in_update = [0.0]
    update = train_loop.Trainer._update

    def timed_update(self: train_loop.Trainer) -> None:
        t0 = time.process_time()
        update(self)
        in_update[0] += time.process_time() - t0

    def progress(step: int, _last: dict[str, float]) -> None:
        if step == first:
            in_update[0] = 0.0
        if step in (first, last):
            marks[step] = stamp()

    train_loop.Trainer._update = timed_update
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if record:
                train(cfg, Path(tmp) / "run.zarr", progress=progress)
            else:
                with recording_off(), contextlib.suppress(ValueError):
                    # nothing committed: closing refuses to mark the store complete, fine here
                    train(cfg, Path(tmp) / "run.zarr", progress=progress)
    finally:
        train_loop.Trainer._update = update
    wall, cpu = rates(last - first, marks[first], marks[last])
    return wall, cpu, in_update[0] / (marks[last][1] - marks[first][1])


def run_sb3(algo: str, args: argparse.Namespace) -> tuple[float, float, float]:
    """Env steps per wall and CPU second of Stable-Baselines3 over the same window, with the same
    env, networks, batch, learning start and thread count."""
    from stable_baselines3 import DDPG, SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    first, last = _window(args)

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.marks: dict[int, Stamp] = {}

        def _on_step(self) -> bool:
            if self.num_timesteps in (first, last):
                self.marks[self.num_timesteps] = stamp()
            return True

    torch.set_num_threads(args.threads)
    env = make_env(ENV_ID)
    common = {"buffer_size": last + 1, "batch_size": BATCH, "learning_starts": args.start_steps, "train_freq": 1,
              "gradient_steps": 1, "policy_kwargs": {"net_arch": [HIDDEN] * LAYERS}, "seed": 0, "device": "cpu",
              "verbose": 0}
    if algo == "sac":
        model = SAC("MlpPolicy", env, **common)
    else:  # our DDPG's exploration: Gaussian noise of std 0.2 in unit-box units (HalfCheetah's box)
        act_dim = env.action_space.shape[0]
        noise = NormalActionNoise(np.zeros(act_dim), 0.2 * np.ones(act_dim))
        model = DDPG("MlpPolicy", env, action_noise=noise, **common)
    clock = Clock()
    model.learn(total_timesteps=last + 1, callback=clock)
    env.close()
    return (*rates(last - first, clock.marks[first], clock.marks[last]), float("nan"))


def measure_here(kind: str, args: argparse.Namespace) -> tuple[float, float, float]:
    """(env steps per wall second, per CPU second, share of CPU in updates (ours only)), measured
    in this process."""
    side, algo, *off = kind.split("-")
    if side == "ours":
        return run_ours(algo, args, record=not off)
    return run_sb3(algo, args)


def measure(kind: str, args: argparse.Namespace) -> tuple[float, float, float]:
    """`measure_here` in a fresh process of its own (unless `--in-process`), so that no run
    inherits another's process state (allocator, caches, threads, imports), both sides alike."""
    if args.in_process:
        return measure_here(kind, args)
    cmd = [sys.executable, __file__, "--one", kind, "--steps", str(args.steps), "--start-steps",
           str(args.start_steps), "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))  # type: ignore[return-value]


# -- main ---------------------------------------------------------------------------------------

def _med(v: list[float]) -> float:
    return statistics.median(v)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000, help="learning steps in the timed window (default 1000)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every measurement (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default 1, the engine's)")
    p.add_argument("--start-steps", type=int, default=500, help="random steps before learning (default 500)")
    p.add_argument("--pieces", type=int, default=5000,
                   help="replay rows at the first Study 1 model fit in the recorder-pieces measurement (default "
                        "5000, the default model_start_steps); the refit comes at twice as many")
    p.add_argument("--refit-caps", type=lambda v: [int(x) for x in v.split(",")], default=[150, 200],
                   help="record_model_updates values whose Study 1 refit is timed (on copies of the same fitted "
                        "model) besides the default (default 150,200)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (about 1 minute): --steps 150 --repeats 1 --start-steps 200 --pieces 1000")
    p.add_argument("--only", choices=KINDS,
                   help="measure only this run, --repeats times, in this process (e.g. under a profiler)")
    p.add_argument("--in-process", action="store_true",
                   help="measure every run in this process, one after the other (default: each in a fresh "
                        "process of its own)")
    p.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)  # a child of `measure`: one run, as JSON
    p.add_argument("--py-spy-report", metavar="FILE", help="print the cost buckets of a py-spy raw profile and exit")
    args = p.parse_args()
    if args.py_spy_report:
        py_spy_report(args.py_spy_report)
        return
    if args.quick:
        args.steps, args.repeats, args.start_steps, args.pieces = 150, 1, 200, 1000
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure_here(args.one, args)))
        return
    first, last = _window(args)
    print(f"{ENV_ID}, nets {LAYERS}x{HIDDEN}, batch {BATCH}, 1 update per env step, {args.start_steps} random "
          f"steps, window = steps {first + 1}..{last} ({args.steps} learning steps), torch threads {args.threads}, "
          f"{args.repeats} repeat(s); medians; 'CPU' figures count this process's CPU time, robust to other load")
    if args.only:
        for _ in range(args.repeats):
            wall, cpu, _ = measure_here(args.only, args)
            print(f"  {args.only}: {wall:.1f} env steps/s ({cpu:.1f} per CPU second)", flush=True)
        return

    env = make_env(ENV_ID)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    flops = {algo: update_flops(algo, obs_dim, act_dim) for algo in ("sac", "ddpg")}
    mm: list[tuple[float, float]] = []
    upd: dict[str, list[tuple[float, float]]] = {"sac": [], "ddpg": []}
    res: dict[str, list[tuple[float, float, float]]] = {k: [] for k in KINDS}
    for r in range(args.repeats):  # everything interleaved; the run order flips every repeat
        mm.append(matmul_rate())
        for algo in upd:
            upd[algo].append(isolated_updates(algo, 30 if args.quick else 100))
        for kind in KINDS if r % 2 == 0 else KINDS[::-1]:
            res[kind].append(measure(kind, args))
            print(f"   [repeat {r + 1}] {kind:13s} {res[kind][-1][0]:6.1f} env steps/s "
                  f"({res[kind][-1][1]:.1f} per CPU s)", flush=True)

    # 1. FLOP limit: each update against the matmul rate of its own repeat, CPU time on both sides
    print(f"1. matmul 256x256 @ 256x256: {_med([w for w, _ in mm]):.0f} GFLOP/s "
          f"({_med([c for _, c in mm]):.0f} per CPU second; wall min {min(w for w, _ in mm):.0f}, "
          f"max {max(w for w, _ in mm):.0f})")
    for algo, pairs in upd.items():
        x = _med([c / (flops[algo] / (rc * 1e9)) for (_, c), (_, rc) in zip(pairs, mm, strict=True)])
        print(f"   one {algo.upper():4s} update: {1e3 * _med([w for w, _ in pairs]):5.1f} ms "
              f"({1e3 * _med([c for _, c in pairs]):.1f} ms CPU); {flops[algo] / 1e6:.0f} MFLOP of matmuls -> "
              f"FLOP limit {flops[algo] / _med([c for _, c in mm]) / 1e6:4.1f} ms CPU; x{x:.1f} of the limit "
              f"{'(goal <= x2)' if algo == 'sac' else ''}")

    # 2. throughput
    print("2. env steps/s         ours     SB3   ours/SB3 wall   ours/SB3 CPU   (median of paired ratios; "
          "goal >= 1.5)")
    for algo in ("sac", "ddpg"):
        o, s = res[f"ours-{algo}"], res[f"sb3-{algo}"]
        rw = _med([a[0] / b[0] for a, b in zip(o, s, strict=True)])
        rc = _med([a[1] / b[1] for a, b in zip(o, s, strict=True)])
        print(f"   {algo.upper():18s} {_med([x[0] for x in o]):7.1f} {_med([x[0] for x in s]):7.1f}   x{rw:.2f}"
              f"            x{rc:.2f}")
    for algo in ("sac", "ddpg"):
        o = res[f"ours-{algo}"]
        step = _med([1 / c for _, c, _ in o])
        share = _med([u for _, _, u in o])
        print(f"   ours {algo.upper()} per env step: {1e3 * step:.1f} ms CPU = Trainer._update (replay sample + "
              f"agent.update + metrics) {100 * share:.0f} % + the rest {100 * (1 - share):.0f} % (act, env step, "
              "sim state, replay add, commit, loop)")

    # 3. recorder
    on, off = res["ours-sac"], res["ours-sac-off"]
    aw = _med([b[0] / a[0] - 1 for a, b in zip(on, off, strict=True)])  # how much faster "off" runs
    ac = _med([b[1] / a[1] - 1 for a, b in zip(on, off, strict=True)])
    print("3. recorder overhead (goal <= 3 %)")
    # the update costs the same on and off, so its share of a step's CPU time gives the ratio of
    # step times free of the CPU-speed drift between runs: t_on / t_off = share_off / share_on
    by_share = _med([x[2] for x in off]) / _med([x[2] for x in on]) - 1
    print(f"   a. in the window, ours SAC on vs off: {_med([x[0] for x in on]):.1f} vs {_med([x[0] for x in off]):.1f} "
          f"env steps/s -> {100 * aw:+.1f} % wall, {100 * ac:+.1f} % CPU (median of paired ratios; noisy); from "
          f"the update's share of step CPU time ({100 * _med([x[2] for x in on]):.1f} % on, "
          f"{100 * _med([x[2] for x in off]):.1f} % off): {100 * by_share:+.1f} %")
    pc = recorder_pieces(args)
    d = TrainConfig()
    every = d.snapshot_interval  # = model_fit_interval by default
    for i, label in ((0, "wall"), (1, "CPU")):
        step = _med([1 / x[i] for x in on])
        win = pc["commit"][i] / d.commit_interval + pc["train_row"][i] / d.log_interval
        out = (pc["snapshot_model_err"][i] + pc["refit"][i]) / every
        print(f"   b. pieces, {label:4s}: commit {1e3 * pc['commit'][i]:.0f} ms, train row {1e3 * pc['train_row'][i]:.2f} ms "
              f"-> in-window {100 * win / step:.2f} %; snapshot and its store write {pc['snapshot'][i]:.2f} s "
              f"({pc['snapshot_model_err'][i]:.2f} s with Study 1 errors), Study 1 model fit at {args.pieces} rows "
              f"{pc['fit'][i]:.2f} s ({pc['fit_epochs'][0]:.0f} epochs, {pc['fit_updates'][0]:.0f} updates), refit "
              f"at {2 * args.pieces} rows {pc['refit'][i]:.2f} s ({pc['refit_epochs'][0]:.0f} epochs, "
              f"{pc['refit_updates'][0]:.0f} updates; cap record_model_updates = {d.record_model_updates})")
        print(f"      amortised at the defaults (snapshot + refit every {every} steps, commit every "
              f"{d.commit_interval}, row every {d.log_interval}): {100 * (win + out) / step:.1f} % of training "
              f"{label} time (snapshot + refit {100 * out / step:.1f} %); a model update costs "
              f"{1e3 * pc['refit'][i] / pc['refit_updates'][0]:.1f} ms (refit)")
        for cap in sorted({d.record_model_updates, *args.refit_caps}):
            out = (pc["snapshot_model_err"][i] + pc[f"refit_{cap}"][i]) / every
            print(f"      with record_model_updates = {cap}: refit {pc[f'refit_{cap}'][i]:.2f} s "
                  f"({pc[f'refit_updates_{cap}'][0]:.0f} updates) -> {100 * (win + out) / step:.1f} % of training "
                  f"{label} time")


if __name__ == "__main__":
    sys.exit(main())
