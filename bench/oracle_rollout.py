"""Benchmark of oracle dynamics: batch x H chained oracle steps against raw `mj_step`.

What MVE-DDPG with the oracle does per update: from a batch of B stored sim states, H steps in
a row, each with new actions (here uniform random), through `OracleDynamics.step_numpy`.
Measured, interleaved `--repeats` times, as sample-steps per CPU second of this process (robust
to the other workers' load) and per wall second:

  raw       `mj_step(model, data, frame_skip)` in a Python loop on one MjData, no restore,
            no observation: the physics alone (the ceiling)
  batched   `step_numpy` (engine/models/oracle_batch.py: restore, step, read back, task
            functions over the batch)
  per-sample  `step_numpy(per_sample=True)`: restore + the env's own `step`, one sample at a
            time (the path before issue 8)
  rollout   `mujoco.rollout` of the same states for one env step (qpos/qvel only: it cannot
            return the solver warm start, see oracle_batch.py), pool of 0 and 2 threads

Prints medians and the ratios batched/raw (issue 8's goal: >= 50 %) and batched/per-sample.

Usage: python bench/oracle_rollout.py [--env HalfCheetah-v5] [--batch 32] [--horizon 30] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import mujoco
import mujoco.rollout
import numpy as np

# the engine of the checkout this file is in (python puts bench/, not the cwd, on sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.envs.mujoco_state import get_sim_state, quiet_mujoco_warnings  # noqa: E402
from engine.models.oracle import OracleConfig, OracleDynamics  # noqa: E402
from engine.models.oracle_batch import SIM_SPEC  # noqa: E402

FULL = int(mujoco.mjtState.mjSTATE_FULLPHYSICS)


def start_states(env_id: str, kwargs: dict, n: int, seed: int = 0) -> np.ndarray:
    """n sim states visited by random actions (one episode's worth, then resets)."""
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    out = []
    while len(out) < n:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        out.append(get_sim_state(env))
        if term or trunc:
            env.reset()
    env.close()
    return np.asarray(out)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call."""
    c, w = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c, time.perf_counter() - w


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--batch", type=int, default=32, help="B (MVE's oracle mini-batch: 32)")
    p.add_argument("--horizon", type=int, default=30, help="H")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    quiet_mujoco_warnings()
    kwargs = {"exclude_current_positions_from_observation": False} if args.env != "InvertedPendulum-v5" else {}
    oracle = OracleDynamics(args.env, config=OracleConfig(env_kwargs=kwargs))
    u = oracle._env
    m, B, H = u.model, args.batch, args.horizon
    sims = start_states(args.env, kwargs, B)
    rng = np.random.default_rng(0)
    actions = rng.uniform(u.action_space.low, u.action_space.high, (H, B, m.nu)).astype(np.float32)
    data = mujoco.MjData(m)

    def raw() -> None:
        for _ in range(H * B):
            mujoco.mj_step(m, data, u.frame_skip)

    def chained(per_sample: bool) -> Callable[[], None]:
        def run() -> None:
            sim = sims
            for t in range(H):
                sim = oracle.step_numpy(sim, actions[t], per_sample=per_sample)[3]
        return run

    init = np.empty((B, mujoco.mj_stateSize(m, FULL)))
    for i in range(B):  # full-physics states of the same starts for mujoco.rollout
        mujoco.mj_setState(m, data, sims[i], SIM_SPEC)
        mujoco.mj_getState(m, data, init[i], FULL)
    warm = np.ascontiguousarray(sims[:, m.nq + m.nv + m.na:])
    pools = {0: mujoco.rollout.Rollout(nthread=0), 2: mujoco.rollout.Rollout(nthread=2)}
    datas = {0: data, 2: [mujoco.MjData(m) for _ in range(2)]}

    def rollout(nthread: int) -> Callable[[], None]:
        def run() -> None:
            state = init
            for t in range(H):  # one env step (frame_skip substeps) per call, as MVE needs
                ctrl = np.repeat(actions[t][:, None, :].astype(np.float64), u.frame_skip, axis=1)
                out, _ = pools[nthread].rollout(m, datas[nthread], state, ctrl, initial_warmstart=warm)
                state = out[:, -1]
        return run

    cases = {"raw mj_step": raw, "batched": chained(False), "per-sample": chained(True),
             "rollout 0 threads": rollout(0), "rollout 2 threads": rollout(2)}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for fn in cases.values():
        fn()  # warm-up
    for r in range(args.repeats):
        for name in (list(cases) if r % 2 == 0 else list(cases)[::-1]):
            times[name].append(timed(cases[name]))
    n = H * B
    print(f"{args.env}: B = {B}, H = {H}, frame_skip {u.frame_skip}; {args.repeats} interleaved repeats, medians")
    rate = {}
    for name, t in times.items():
        cpu, wall = np.median([x[0] for x in t]), np.median([x[1] for x in t])
        rate[name] = n / cpu
        print(f"  {name:18s} {n / cpu:9.0f} sample-steps per CPU s  {n / wall:9.0f} per wall s  "
              f"({cpu / n * 1e6:6.1f} us CPU per sample-step)")
    print(f"batched / raw mj_step: {rate['batched'] / rate['raw mj_step']:.0%} (goal >= 50 %)")
    print(f"batched / per-sample: x{rate['batched'] / rate['per-sample']:.2f}")
    wall = {k: np.median([x[1] for x in times[f"rollout {k} threads"]]) for k in pools}
    print(f"rollout wall time, no pool / pool of 2 threads: x{wall[0] / wall[2]:.2f} (> 1: the pool helps)")
    for pool in pools.values():
        pool.close()


if __name__ == "__main__":
    main()
