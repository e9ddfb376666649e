"""Checkpoints for `--resume`: networks, optimisers, RNG states and counters, beside the store.

RNG states include the models' own generators (`generator_states`), so a resumed model-based
run fits and imagines exactly as an uninterrupted one.

`NAME.zarr.ckpt/step-000012000.pt`, written atomically (temp file + rename) right after the
store commit it belongs to, and loadable with `torch.load(weights_only=True)` (tensors and
plain Python values only). The app never reads them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class Counters:
    """The loop's position; everything else is derived or stored."""

    env_step: int = 0
    episode: int = 0
    episode_step: int = 0
    episode_return: float = 0.0
    updates: int = 0
    snapshots: int = 0
    policy_version: int = 0
    model_fit_step: int = 0
    last: dict[str, float] = field(default_factory=dict)
    """Latest values shown in the progress bar."""


def ckpt_dir(store: Path) -> Path:
    """Where the checkpoints of `store` live."""
    return store.with_name(store.name + ".ckpt")


def save(store: Path, counters: Counters, committed: dict[str, int], agent: Any, model: Any,
         rng: np.random.Generator, obs: np.ndarray | None, sim: np.ndarray | None,
         learned: dict[str, Any] | None = None, extras: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint for the store state `committed` (group -> length); returns its path.

    `learned` (reward/termination models) and `extras` (e.g. MBPO's model buffer) map names to
    objects with `state_dict()`."""
    d = ckpt_dir(store)
    d.mkdir(exist_ok=True)
    state = {
        "counters": asdict(counters),
        "committed": dict(committed),
        "agent": agent.state_dict(),
        "model": model.state_dict() if model is not None and hasattr(model, "state_dict") else {},
        "learned": {name: m.state_dict() for name, m in (learned or {}).items()},
        "extras": {name: x.state_dict() for name, x in (extras or {}).items()},
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "model_rngs": {name: generator_states(m) for name, m in _models(model, learned).items()},
        "obs": None if obs is None else torch.as_tensor(obs),
        "sim": None if sim is None else torch.as_tensor(sim),
    }
    path = d / f"step-{counters.env_step:09d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def latest(store: Path, at_most: int) -> Path | None:
    """The newest checkpoint whose replay length is <= `at_most` (the store's committed length)."""
    d = ckpt_dir(store)
    found = sorted(p for p in d.glob("step-*.pt") if int(p.stem.split("-")[1]) <= at_most) if d.exists() else []
    return found[-1] if found else None


def committed(path: Path) -> dict[str, int]:
    """The store state (group -> committed length) a checkpoint belongs to."""
    return dict(torch.load(path, weights_only=True)["committed"])


def load(path: Path, agent: Any, model: Any, rng: np.random.Generator, learned: dict[str, Any] | None = None,
         extras: dict[str, Any] | None = None) -> tuple[Counters, np.ndarray | None, np.ndarray | None]:
    """Restore agent, models and RNGs in place; returns the counters, observation and sim state."""
    state = torch.load(path, weights_only=True)
    agent.load_state_dict(state["agent"])
    if model is not None and state["model"]:
        model.load_state_dict(state["model"])
    for saved, objects in (("learned", learned), ("extras", extras)):
        for name, m in (objects or {}).items():
            if name in state.get(saved, {}):
                m.load_state_dict(state[saved][name])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    for name, m in _models(model, learned).items():  # absent from checkpoints before 2026-11-22
        load_generator_states(m, state.get("model_rngs", {}).get(name, {}))
    obs = None if state["obs"] is None else state["obs"].numpy()
    sim = None if state["sim"] is None else state["sim"].numpy()
    return Counters(**state["counters"]), obs, sim


def _models(model: Any, learned: dict[str, Any] | None) -> dict[str, Any]:
    """The run's models by checkpoint name: the dynamics model and the learned reward/termination ones."""
    return {**({"model": model} if model is not None else {}), **{f"learned/{k}": m for k, m in (learned or {}).items()}}


def generator_states(obj: Any) -> dict[str, Any]:
    """The states of the random generators `obj` holds as attributes (a model's minibatch order,
    holdout split, ensemble member and noise draws): found by type, so a model that adds one is
    checkpointed without registering it."""
    out: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if isinstance(value, torch.Generator):
            out[name] = value.get_state()
        elif isinstance(value, np.random.Generator):
            out[name] = value.bit_generator.state
    return out


def load_generator_states(obj: Any, states: dict[str, Any]) -> None:
    """Put back what `generator_states` returned (names `obj` no longer has are an error)."""
    for name, st in states.items():
        value = getattr(obj, name)
        if isinstance(value, torch.Generator):
            value.set_state(st)
        else:
            value.bit_generator.state = st


def prune(store: Path, keep: Path) -> None:
    """Drop checkpoints older than `keep` (one is enough once its commit is durable)."""
    for p in ckpt_dir(store).glob("step-*.pt"):
        if p != keep and p.name < keep.name:
            p.unlink(missing_ok=True)
