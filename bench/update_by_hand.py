"""One DDPG and SAC update with the hand-written backward (`engine/agents/chain.py`, `ddpg.py`'s
`_steps_by_hand`, `sac_steps.py`) vs the same update through autograd with the nn modules (the
code before; still the path for non-ReLU nets), at the setting of `train_throughput.py`
(HalfCheetah-v5, 2x256, batch 256, a fixed batch of random transitions).

Both agents start from the same state and see the same batch; they run in blocks of `--block`
updates, alternately (the order flips every pair), timed in CPU time of this process; the ratio
of each pair is by hand / autograd, and the median of the ratios is printed (< 1: by hand is
faster), with the load average before and after.

    python bench/update_by_hand.py [--pairs 21] [--block 15] [--algos ddpg,sac]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from update_cost import agent_and_batch

from engine.agents import Agent, Batch
from engine.agents import ddpg as ddpg_module
from engine.agents import sac as sac_module


@contextmanager
def by_autograd() -> Iterator[None]:
    """The agents as before the hand-written steps: modules called as they are, autograd steps."""
    saved = [(m, name, getattr(m, name)) for m in (ddpg_module, sac_module) for name in ("relu_chain", "chain_params")]
    for m in (ddpg_module, sac_module):
        m.relu_chain, m.chain_params = (lambda net, x: net(x)), (lambda net: None)
    try:
        yield
    finally:
        for m, name, fn in saved:
            setattr(m, name, fn)


def _block(agent: Agent, batch: Batch, n: int, autograd: bool) -> float:
    """CPU seconds per update over n updates."""
    t0 = time.process_time()
    if autograd:
        with by_autograd():
            for _ in range(n):
                agent.update(batch)
    else:
        for _ in range(n):
            agent.update(batch)
    return (time.process_time() - t0) / n


def compare(algo: str, pairs: int, block: int) -> tuple[float, float, float]:
    """(median ms per update by hand, by autograd, median of the paired ratios hand / autograd)."""
    agent, batch = agent_and_batch(algo)
    hand, auto = agent, copy.deepcopy(agent)
    run: dict[bool, Callable[[], float]] = {False: lambda: _block(hand, batch, block, False),
                                            True: lambda: _block(auto, batch, block, True)}
    run[False](), run[True]()  # warm up (optimiser state, first allocations)
    t_hand, t_auto = [], []
    for r in range(pairs):
        for autograd in ((False, True) if r % 2 == 0 else (True, False)):
            (t_auto if autograd else t_hand).append(run[autograd]())
    ratio = statistics.median(h / a for h, a in zip(t_hand, t_auto, strict=True))
    return 1e3 * statistics.median(t_hand), 1e3 * statistics.median(t_auto), ratio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=21, help="interleaved pairs of blocks (default 21)")
    p.add_argument("--block", type=int, default=15, help="updates per block (default 15)")
    p.add_argument("--algos", default="ddpg,sac", help="comma-separated (default ddpg,sac)")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for algo in args.algos.split(","):
        hand, auto, ratio = compare(algo, args.pairs, args.block)
        print(f"{algo.upper():4s} update, CPU: by hand {hand:.2f} ms, autograd (before) {auto:.2f} ms; "
              f"by hand / autograd, median of {args.pairs} paired ratios: x{ratio:.3f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
