"""Write a big training store for the app latency bench: 1M HalfCheetah-sized transitions and
every group a real run records (replay, eval, train, model_error, critic), through the engine's
own writer (`RunWriter`, via the training recorder `TrainRecorder`), with the default training
config's sizes: a snapshot every 5000 steps (3 eval episodes, 1000 critic samples, 64 start
states x 2 splits x 30 horizons), a train row every 100 updates, a commit every 5000 steps.

Values are synthetic (generated, never committed to the repository) but shaped like a run's:
1000-step episodes, a smooth random walk of states, returns that rise, model errors that grow
with the horizon, valid open-loop start states inside episodes. About 1 min and 0.7 GB.

    python bench/make_big_store.py [--out /tmp/mbrl-bench/big.zarr] [--steps 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's engine first

from engine.record import RunWriter  # noqa: E402
from engine.train.config import TrainConfig  # noqa: E402
from engine.train.evaluate import EvalResult  # noqa: E402
from engine.train.recorder import TrainRecorder  # noqa: E402

OBS, ACT, SIM = 18, 6, 27  # HalfCheetah-v5 with x kept; qpos, qvel, qacc_warmstart
EPISODE = 1000
DEFAULT_OUT = Path(tempfile.gettempdir()) / "mbrl-bench" / "big.zarr"
METRICS = ("critic_loss", "actor_loss", "alpha", "alpha_loss", "entropy", "q_mean", "model_loss")


def replay_rows(rng: np.random.Generator, lo: int, n: int, snapshot_interval: int,
                holdout_block: int) -> dict[str, np.ndarray]:
    """Transitions lo .. lo+n-1: a random walk per episode."""
    step = np.arange(lo, lo + n)
    walk = np.cumsum(rng.normal(0, 0.05, (n + 1, OBS)).astype(np.float32), axis=0)
    sim = np.cumsum(rng.normal(0, 0.05, (n + 1, SIM)), axis=0)
    last = step % EPISODE == EPISODE - 1
    return {
        "obs": walk[:-1], "next_obs": walk[1:], "action": rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
        "reward": (np.tanh(walk[:-1, 8]) + lo / 2e5).astype(np.float32),
        "terminated": np.zeros(n, bool), "truncated": last, "episode": step // EPISODE,
        "policy_version": step // snapshot_interval,
        "holdout": (step // holdout_block) % 10 == 0, "sim_state": sim[:-1], "next_sim_state": sim[1:],
        "step": step,
    }


def snapshot(rng: np.random.Generator, k: int, env_step: int, cfg: TrainConfig, fit_step: int,
             ) -> tuple[EvalResult, dict[str, np.ndarray]]:
    """Eval returns, critic samples and open-loop errors of snapshot k."""
    progress = env_step / cfg.steps
    n, eps = cfg.critic_samples, cfg.eval_episodes
    t = np.tile(np.arange(n // eps + 1), eps)[:n]
    g = 100 * progress * (1 - 0.99 ** (EPISODE - t)) + rng.normal(0, 5, n)
    result = EvalResult(
        returns=(5000 * progress + rng.normal(0, 100, eps)).astype(np.float32),
        lengths=np.full(eps, EPISODE), q_pred=(g + rng.normal(10, 20, n)).astype(np.float32),
        return_true=g.astype(np.float32), t=t, episode=np.repeat(np.arange(eps), n // eps + 1)[:n],
        censored=t > EPISODE - 300)
    starts, h = cfg.model_error_starts, cfg.model_error_horizon
    shape = (2, starts, h)
    growth = np.arange(1, h + 1) ** 1.5 * (0.05 + 0.5 * (1 - progress))
    error = (growth * rng.lognormal(0, 0.3, shape)).astype(np.float32)
    first = (rng.integers(0, max(env_step // EPISODE, 1), (2, starts)) * EPISODE
             + rng.integers(0, EPISODE - h, (2, starts)))
    model_error = {"error": error, "error_normalized": error / 3, "disagreement": np.full(shape, np.nan, np.float32),
                   "start_step": first.astype(np.int64)}
    if fit_step == 0:  # before the first fit: padding only
        model_error = {**{k: np.full(shape, np.nan, np.float32) for k in ("error", "error_normalized", "disagreement")},
                       "start_step": np.full((2, starts), -1, np.int64)}
    return result, model_error


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"store to (over)write (default {DEFAULT_OUT})")
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    cfg = TrainConfig(env_id="HalfCheetah-v5", steps=args.steps, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    start = time.perf_counter()
    writer = RunWriter.create(args.out, kind="training", env_id=cfg.env_id, algorithm=cfg.algo, seed=cfg.seed,
                              config=cfg.full())
    rec = TrainRecorder(writer)
    rec.define(OBS, ACT, SIM, cfg.eval_episodes, cfg.critic_samples, cfg.model_error_starts, cfg.model_error_horizon)
    interval, update = cfg.snapshot_interval, 0
    with writer:
        for k, lo in enumerate(range(0, cfg.steps, interval)):
            n = min(interval, cfg.steps - lo)
            rec.replay(replay_rows(rng, lo, n, interval, cfg.holdout_block))
            for env_step in range(lo + cfg.log_interval, lo + n + 1, cfg.log_interval):
                if env_step > cfg.start_steps:
                    update += cfg.log_interval
                    rec.train(update, env_step, {m: float(rng.normal(1 / (1 + env_step / 1e5), 0.05)) for m in METRICS})
            fit = (lo + n) // cfg.model_fit_interval * cfg.model_fit_interval if lo + n >= cfg.model_start_steps else 0
            rec.snapshot(k, lo + n, *snapshot(rng, k, lo + n, cfg, fit), fit)
            writer.commit()
            if k % 20 == 0:
                print(f"{lo + n} steps, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out}: {cfg.steps} transitions, {size / 2**30:.2f} GiB, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
