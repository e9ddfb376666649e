"""Deterministic store builders shared by the store tests and the crash-test writer process.

Every value is a function of its record index, so a test can recompute exactly what a
(possibly killed) writer wrote. Floats are multiples of 1/8, exact in float32.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.record import RunWriter
from engine.record.schema import Var

REPO = Path(__file__).resolve().parents[2]
OBS, ACT, EVAL_EPISODES = 5, 2, 3
GRAD_COORDS: dict[str, Any] = {
    "dynamics": np.array(["true", "learned"]),
    "horizon": np.arange(4),
    "param": np.array(["k_pos", "k_vel"]),
}
LOSS = Var(("update",), "float32", "1", "critic loss")
STATIC_NOTE = Var(("obs_dim",), "float64", "env", "observation scale")


def replay_rows(lo: int, n: int, obs_dim: int = OBS, act_dim: int = ACT) -> dict[str, np.ndarray]:
    """Replay records for steps lo .. lo+n-1."""
    s = np.arange(lo, lo + n, dtype=np.int64)
    obs = (s[:, None] % 4096 + np.arange(obs_dim)[None, :] / 8).astype(np.float32)
    return {
        "step": s,
        "obs": obs,
        "action": ((s[:, None] % 16 - np.arange(act_dim)[None, :]) / 8).astype(np.float32),
        "reward": ((s % 7) - 3 + 0.125).astype(np.float32),
        "next_obs": obs + np.float32(0.5),
        "terminated": s % 50 == 49,
        "truncated": s % 97 == 96,
        "episode": s // 50,
        "policy_version": s // 100,
    }


def train_rows(lo: int, n: int) -> dict[str, np.ndarray]:
    """Train records for updates lo .. lo+n-1 (with the extra variable `loss`)."""
    u = np.arange(lo, lo + n, dtype=np.int64)
    return {"update": u, "env_step": 10 * u, "loss": (1000 - u % 1000) / 8}


def eval_rows(lo: int, n: int) -> dict[str, np.ndarray]:
    """Eval records for snapshots lo .. lo+n-1."""
    k = np.arange(lo, lo + n, dtype=np.int64)
    ep = np.arange(EVAL_EPISODES)[None, :]
    return {
        "snapshot": k,
        "env_step": 1000 * k,
        "return": (k[:, None] * 4 + ep / 8).astype(np.float32),
        "length": (k[:, None] + ep + 1).astype(np.int64),
    }


def grad_rows(lo: int, n: int) -> dict[str, np.ndarray]:
    """gradient_error records for seeds lo .. lo+n-1."""
    s = np.arange(lo, lo + n, dtype=np.int64)
    shape = (n, 2, 4, 2)
    est = s[:, None, None, None] + np.arange(np.prod(shape[1:])).reshape(shape[1:])[None] / 8
    return {
        "seed": s,
        "true_grad": np.stack([s * 0.5, -s * 0.25], axis=1).astype(np.float64),
        "est_grad": est.astype(np.float64),
        "l1_error": est.sum(axis=-1),
        "eps_f": s / 8,
        "eps_q": s / 4 + 0.125,
    }


def new_training(path: Path, **kw: Any) -> RunWriter:
    """A training writer with replay, eval and train (with extras) added."""
    w = RunWriter.create(
        path, kind="training", env_id="Hopper-v5", algorithm="sac", seed=7,
        config={"lr": 3e-4, "hidden": [256, 256]}, **kw,
    )
    w.add_group(
        "replay", coords={"obs_dim": np.arange(OBS), "act_dim": np.arange(ACT)},
        extra={"obs_scale": STATIC_NOTE}, static={"obs_scale": np.linspace(1, 2, OBS)},
    )
    w.add_group("eval", coords={"episode": np.arange(EVAL_EPISODES)})
    w.add_group("train", coords={}, extra={"loss": LOSS})
    return w


def write_training(path: Path, batches: list[int], close: bool = True) -> int:
    """Training store with one commit per batch of replay steps; returns the step count."""
    w = new_training(path)
    step = 0
    for i, n in enumerate(batches):
        w.append("replay", **replay_rows(step, n))
        w.append("train", **train_rows(i, 1))
        w.append("eval", **eval_rows(i, 1))
        w.commit()
        step += n
    if close:
        w.close()
    return step


def write_gradient(path: Path, seeds: int = 3, per_commit: int = 1) -> None:
    """A complete gradient_error store."""
    w = RunWriter.create(
        path, kind="gradient_error", env_id="DoubleIntegrator", algorithm="maac", seed=0,
        config={"gamma": 0.9}, run_id="grad-run",
    )
    w.add_group("gradient_error", coords=GRAD_COORDS)
    for lo in range(0, seeds, per_commit):
        w.append("gradient_error", **grad_rows(lo, min(per_commit, seeds - lo)))
        w.commit()
    w.close()


def zip_contents(store: Path, out: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Zip a store's contents the way `pack` does, optionally with extra members."""
    with zipfile.ZipFile(out, "w") as zf:
        for f in sorted(store.rglob("*")):
            if f.is_file() and f.name != ".writer.lock":
                zf.write(f, f.relative_to(store).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return out


def edit_json(path: Path, fn: Any) -> None:
    """Apply `fn` to the parsed JSON at `path` and write it back."""
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta))


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def python_env() -> dict[str, str]:
    """Environment for child processes: the repo and this folder importable."""
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), here, env.get("PYTHONPATH", "")])
    return env


def run_python(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python ARGS` from the repo root and capture its output."""
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=python_env(), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
