"""Section 1 of `train_throughput.py`: the cost of one update against its matmul FLOPs at this CPU's
measured matmul rate, and the shared setting, clock and agent builder of the training benches.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

# the engine of the checkout this file is in (python puts bench/, not the cwd, on sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.agents import Agent, Batch, make_agent  # noqa: E402
from engine.envs.factory import make_env  # noqa: E402
from engine.train import loop as train_loop  # noqa: E402
from engine.train.config import TrainConfig  # noqa: E402
from engine.train.replay import Replay  # noqa: E402

ENV_ID = "HalfCheetah-v5"
HIDDEN, LAYERS, BATCH = 256, 2, 256


def _macs(sizes: list[int]) -> int:
    """Multiply-accumulates per sample of a forward pass through Linear layers of `sizes`."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def update_flops(algo: str, obs_dim: int, act_dim: int, batch: int = BATCH) -> float:
    """FLOPs of the matmuls one update needs (a weight-and-input backward counted as 2x forward,
    an input-only backward as 1x; elementwise ops, Adam and Polyak, which are memory-bound and
    O(params), not counted).

    SAC: target (actor + 2 target critics, forward) + critic loss (2 critics, fwd + bwd) + actor
    loss (actor fwd + bwd; 2 frozen critics, fwd + input-only bwd); the alpha loss reuses the
    actor loss's log-probs: 4 A + 12 C (5 A + 14 C before the alpha loss's own actor forward and
    the critics' weight gradients in the actor backward were dropped).
    DDPG: target (actor' + critic', fwd) + critic (fwd + bwd) + actor loss (actor fwd + bwd;
    frozen critic, fwd + input-only bwd) = 4 A + 6 C.
    """
    hid = [HIDDEN] * LAYERS
    critic = _macs([obs_dim + act_dim, *hid, 1])
    if algo == "sac":
        actor = _macs([obs_dim, *hid, 2 * act_dim])
        macs = 4 * actor + 12 * critic
    else:
        actor = _macs([obs_dim, *hid, act_dim])
        macs = 4 * actor + 6 * critic
    return 2.0 * batch * macs


Stamp = tuple[float, float]


def stamp() -> Stamp:
    """(wall seconds, CPU seconds of this process)."""
    return time.perf_counter(), time.process_time()


def rates(n: float, t0: Stamp, t1: Stamp) -> tuple[float, float]:
    """`n` per wall second and per CPU second between two stamps."""
    return n / (t1[0] - t0[0]), n / (t1[1] - t0[1])


def matmul_rate(seconds: float = 0.5) -> tuple[float, float]:
    """GFLOP/s (per wall second, per CPU second) of a 256x256 @ 256x256 float32 matmul loop at the
    current torch thread count."""
    a, b, out = torch.randn(256, 256), torch.randn(256, 256), torch.empty(256, 256)
    for _ in range(20):
        torch.mm(a, b, out=out)
    n, t0 = 0, stamp()
    while time.perf_counter() - t0[0] < seconds:
        for _ in range(50):
            torch.mm(a, b, out=out)
        n += 50
    return tuple(r / 1e9 for r in rates(2 * 256**3 * n, t0, stamp()))  # type: ignore[return-value]


def agent_and_batch(algo: str) -> tuple[Agent, Batch]:
    """The agent as the bench trains it (HalfCheetah-v5, 2x256, batch 256) and a fixed batch of
    random transitions."""
    env = make_env(ENV_ID)
    cfg = train_loop._agent_config(TrainConfig(algo=algo, agent={"hidden": HIDDEN, "layers": LAYERS,
                                                                  "batch_size": BATCH}))
    agent = make_agent(algo, env.observation_space, env.action_space, cfg, None, seed=0)
    rng = np.random.default_rng(0)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    replay = Replay.empty(2000, obs_dim, act_dim, 0)
    for _ in range(2000):
        replay.add(obs=rng.normal(size=obs_dim), action=rng.uniform(-1, 1, act_dim), reward=rng.normal(),
                   next_obs=rng.normal(size=obs_dim), terminated=False)
    return agent, replay.sample(BATCH, rng)


def isolated_updates(algo: str, n: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of one `agent.update` on a fixed batch, the agent as the bench
    trains it."""
    agent, batch = agent_and_batch(algo)
    for _ in range(5):
        agent.update(batch)
    wall, cpu = [], []
    for _ in range(n):
        t0 = stamp()
        agent.update(batch)
        t1 = stamp()
        wall.append(t1[0] - t0[0])
        cpu.append(t1[1] - t0[1])
    return statistics.median(wall), statistics.median(cpu)
