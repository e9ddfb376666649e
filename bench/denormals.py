"""Denormal floats in Adam's moments: how much they slow a SAC update, and how many a real run has.

A ReLU unit that stops firing gets zero gradients, so its Adam moments decay geometrically
(x0.9 and x0.999 per step) through the denormal range (below 1.2e-38), where x86 arithmetic is
tens of times slower. `engine/numerics.py` therefore turns on `torch.set_flush_denormal(True)`.

This bench times isolated SAC updates (the agent and batch of `update_cost.py`: 2x256, batch
256) in which a share of the second hidden layer's units of actor and critics is dead and their
Adam moments sit in the denormal range (as in a real run: `--checkpoint`), with flushing off and
on, in interleaved pairs from the same saved state (CPU time; the ratio is the figure, these
machines are noisy). `--checkpoint` also prints, for an engine checkpoint
(`<store>.ckpt/step-*.pt`), the share of denormal entries in each optimiser state tensor.

Usage:
  python bench/denormals.py
  python bench/denormals.py --pairs 9 --updates 20 --fractions 0 0.2
  python bench/denormals.py --checkpoint runs/Hopper-v5-mbpo-0.zarr.ckpt/step-000010000.pt
"""

from __future__ import annotations

import argparse
import copy
import statistics
from collections.abc import Iterator
from typing import Any

import torch

from update_cost import agent_and_batch, stamp

TINY = torch.finfo(torch.float32).tiny  # the smallest normal float32, 1.18e-38


def denormal_share(t: torch.Tensor) -> float:
    """Share of the entries of a float32 tensor that are denormal (non-zero, below `TINY`)."""
    return ((t != 0) & (t.abs() < TINY)).float().mean().item()


def _moments(state: Any, path: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every float32 tensor of more than 100 entries under the optimiser states of a checkpoint."""
    if isinstance(state, dict):
        for k, v in state.items():
            yield from _moments(v, f"{path}/{k}")
    elif isinstance(state, torch.Tensor) and state.dtype == torch.float32 and state.numel() > 100 \
            and "_opt" in path:
        yield path, state


def dead_units(agent: Any, fraction: float, gen: torch.Generator) -> None:
    """Silence `fraction` of the second hidden layer's units of the actor and of both critics (a
    bias of -1e3: the ReLU never fires, so their in- and outgoing weights get zero gradients) and
    put their Adam moments where a dead unit's end up: a few units in the last place (ulps) of the
    denormal range, where a zero gradient's x0.9 (below 5 ulps) and x0.999 (below 500) round back
    to the same value, so they never reach zero."""

    def stuck(m: torch.Tensor, index: tuple) -> None:
        m[index] = (torch.randint(1, 200, m[index].shape, generator=gen) * 1.4e-45).to(m.dtype)

    def silence(opt: torch.optim.Optimizer, params: list[tuple[torch.Tensor, tuple]]) -> None:
        for param, index in params:
            for key in ("exp_avg", "exp_avg_sq"):
                stuck(opt.state[param][key], index)

    actor = agent.actor  # Sequential: Linear (0), ReLU, Linear (2), ReLU, Linear (4)
    dead = torch.rand(actor[2].bias.shape, generator=gen) < fraction  # (hidden,)
    with torch.no_grad():
        actor[2].bias[dead] = -1e3
    silence(agent.actor_opt, [(actor[2].weight, (dead,)), (actor[2].bias, (dead,)),
                              (actor[4].weight, (slice(None), dead))])
    critics = agent.critics  # StackedMLP: weights.i (critic, in, out), biases.i (critic, 1, out)
    dead = torch.rand(critics.biases[1].shape[-1], generator=gen) < fraction
    with torch.no_grad():
        critics.biases[1][..., dead] = -1e3
    silence(agent.critic_opt, [(critics.weights[1], (slice(None), slice(None), dead)),
                               (critics.biases[1], (slice(None), slice(None), dead)),
                               (critics.weights[2], (slice(None), dead))])


def agent_moments(agent: Any) -> list[torch.Tensor]:
    """The actor's and critics' Adam moments (`exp_avg`, `exp_avg_sq` of every parameter)."""
    return [st[k] for opt in (agent.actor_opt, agent.critic_opt) for st in opt.state.values()
            for k in ("exp_avg", "exp_avg_sq")]


def timed(agent: Any, batch: Any, n: int) -> float:
    """CPU seconds per update over `n` updates."""
    t0 = stamp()
    for _ in range(n):
        agent.update(batch)
    return (stamp()[1] - t0[1]) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.05, 0.2, 0.35],
                   help="shares of the second hidden layer's units made dead")
    p.add_argument("--pairs", type=int, default=7, help="interleaved (off, on) pairs per fraction")
    p.add_argument("--updates", type=int, default=15, help="updates per timed block")
    p.add_argument("--checkpoint",
                   help="also report the denormal share of an engine checkpoint's optimiser states")
    args = p.parse_args()
    torch.set_num_threads(1)

    if args.checkpoint:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        print(f"denormal share of the optimiser states in {args.checkpoint}:")
        for path, t in _moments(state):
            print(f"  {path} {tuple(t.shape)}: {denormal_share(t):.1%}")

    agent, batch = agent_and_batch("sac")
    for _ in range(5):
        agent.update(batch)
    print(f"SAC update (2x256, batch 256), CPU ms per update, {args.pairs} pairs of {args.updates} updates")
    print("| dead units | flush off | flush on | on / off | denormal moments after (off, on) |")
    print("|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for fraction in args.fractions:
        seeded = copy.deepcopy(agent)
        dead_units(seeded, fraction, gen)
        saved = seeded.state_dict()
        times: dict[bool, list[float]] = {False: [], True: []}
        left: dict[bool, float] = {}  # denormal share of the moments after a block
        for i in range(args.pairs):
            for flush in ((False, True) if i % 2 == 0 else (True, False)):
                seeded.load_state_dict(copy.deepcopy(saved))
                torch.set_flush_denormal(flush)
                times[flush].append(timed(seeded, batch, args.updates))
                left[flush] = statistics.mean(denormal_share(t) for t in agent_moments(seeded))
        torch.set_flush_denormal(False)
        off, on = (statistics.median(times[f]) * 1e3 for f in (False, True))
        ratios = [b / a for a, b in zip(times[False], times[True], strict=True)]
        print(f"| {fraction:.0%} | {off:.2f} | {on:.2f} | x{statistics.median(ratios):.3f} | "
              f"{left[False]:.1%}, {left[True]:.1%} |")


if __name__ == "__main__":
    main()
