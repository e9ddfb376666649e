"""Start or resume a training run: store, checkpoint and loop wired together."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.record import RunWriter, StoreError, open_run
from engine.train import checkpoint
from engine.train.config import TrainConfig
from engine.train.loop import Progress, Trainer

REPLAY_FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated", "episode",
                 "policy_version", "holdout", "sim_state", "next_sim_state")


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: Progress | None = None) -> Path:
    """Run `cfg` into the store `out` (a new one, or continue it with `resume`; a resumed run,
    finished or not, may be given more `steps` than it was written with: it trains on to them)."""
    out = Path(out)
    writer, trainer = open_trainer(out, cfg.full(), lambda w: Trainer(cfg, w), kind="training",
                                   env_id=cfg.env_id, algorithm=cfg.algo, seed=cfg.seed,
                                   resume=resume, overwrite=overwrite, extendable=("steps",))
    with writer:
        trainer.run(progress)
    return out


def open_trainer(out: Path, config: Mapping[str, Any], make: Callable[[RunWriter], Trainer], *, kind: str,
                 env_id: str, algorithm: str, seed: int, resume: bool, overwrite: bool,
                 extendable: tuple[str, ...] = ()) -> tuple[RunWriter, Trainer]:
    """A writer on a new store, or on `out` rolled back to its newest checkpoint (`resume`, same
    `config` only, except that the integer budgets named in `extendable` may be raised: the
    store's config then says the new value), and the trainer `make(writer)` restored from that
    checkpoint."""
    if resume and out.exists():
        stored = json.loads(open_run(out, check_values=False).attrs["config"])
        raised = _check_resumable(out, stored, config, extendable)
        writer = RunWriter.resume(out)
        if raised:  # the store's config is the run's full config, now the extended one
            writer.replace_config(config)
        trainer = make(writer)
        ckpt = checkpoint.latest(out, writer.committed.get("replay", 0))
        writer.rollback(checkpoint.committed(ckpt) if ckpt else {})
        if ckpt:
            replay = open_run(out, check_values=False)["replay"]
            trainer.restore(ckpt, {k: replay[k].values for k in REPLAY_FIELDS})
    else:
        if overwrite:
            shutil.rmtree(checkpoint.ckpt_dir(out), ignore_errors=True)
        writer = RunWriter.create(out, kind=kind, env_id=env_id, algorithm=algorithm, seed=seed,
                                  config=config, overwrite=overwrite)
        trainer = make(writer)
    return writer, trainer


def _check_resumable(out: Path, stored: Mapping[str, Any], config: Mapping[str, Any],
                     extendable: tuple[str, ...]) -> list[str]:
    """The `extendable` keys `config` raises above the `stored` config; StoreError for any
    other difference, or for an `extendable` value that is lowered (a run cannot be shortened)."""
    changed = sorted(k for k in config if stored.get(k) != config[k])
    others = [k for k in changed if k not in extendable]
    if others:
        can = f" (only {list(extendable)} may be raised)" if extendable else ""
        raise StoreError(f"{str(out)!r} was written with a different config (differs in {others}){can}; "
                         "resume with the same config, or write a new store.")
    lowered = [k for k in changed if not (isinstance(stored.get(k), int) and config[k] > stored[k])]
    if lowered:
        was = ", ".join(f"{k} {stored.get(k)} -> {config[k]}" for k in lowered)
        raise StoreError(f"{str(out)!r}: a resumed run can only be extended, not shortened ({was}); "
                         "resume with at least the stored value, or write a new store.")
    return changed
