"""Study 1b: model classes refitted in stages on a recorded buffer (SVG sec. 5.1, Fig. 3).

The episodes of a training run's replay are split once: the last `test_fraction` of them are the
fixed `test` split (later data, never fitted); of the others, a seeded `holdout_fraction` are
`holdout` episodes (never fitted) and the rest `train`. Stage k of S uses the first k/S of the
non-test episodes: every model class is fitted from scratch on that stage's train episodes, then
rolled open loop with the recorded actions from start states of each split, and the multi-step
MSE (mean over starts and state dimensions of the squared error) is recorded per horizon. Starts
are windows of `horizon` steps inside one episode with no termination before their last step,
spread evenly over the split's age (as Study 1's); a split without such a window gives NaN.

A model's own early stopping holds out part of what it is given (`FitConfig.holdout_ratio`):
`train` here means the data handed to the fit, as in SVG's figure.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from engine.models import make_dynamics, model_config_class
from engine.models.dynamics_base import Dynamics, ModelState, Transitions
from engine.numerics import set_process_numerics
from engine.record import RunWriter, StoreError, open_run
from engine.train.open_loop import choose, window_starts

SPLITS = ("train", "holdout", "test")
MODELS = ("mlp", "ensemble", "gru")
_REPLAY = ("obs", "action", "reward", "next_obs", "terminated", "episode")


@dataclass(frozen=True)
class ModelComparisonConfig:
    """What `python -m engine study model-comparison` fits and measures."""

    buffer: str
    """Path of the training run store whose replay is replayed (recorded for provenance)."""
    models: tuple[str, ...] = MODELS
    """Model classes to compare (`engine.models.make_dynamics` names, the oracle excluded)."""
    stages: int = 4
    """Number of stages; stage k fits on the first k/stages of the non-test episodes."""
    test_fraction: float = 0.2
    """Fraction of the episodes, the last ones, in the fixed test split."""
    holdout_fraction: float = 0.2
    """Fraction of the other episodes held out from every fit (chosen once, seeded)."""
    horizon: int = 10
    """Longest open-loop horizon; MSE is recorded for 1..horizon."""
    starts: int = 256
    """Start states per split, spread over the split's age."""
    model_config: dict[str, dict] = field(default_factory=dict)
    """Per model class, overrides of its config fields (e.g. {"mlp": {"hidden": 64}})."""
    seed: int = 0
    """Seeds the holdout choice, the starts and every model (stage k uses seed + k)."""

    def __post_init__(self) -> None:
        unknown = set(self.models) - set(MODELS)
        if not self.models or unknown:
            raise ValueError(f"models must be some of {MODELS}; unknown: {sorted(unknown)}")
        if len(set(self.models)) != len(self.models):
            raise ValueError("each model class once")
        if unknown := set(self.model_config) - set(self.models):
            raise ValueError(f"model_config for classes not compared: {sorted(unknown)}")
        if self.stages < 1 or self.horizon < 1 or self.starts < 1:
            raise ValueError("need stages, horizon and starts >= 1")
        if not 0 < self.test_fraction < 1 or not 0 <= self.holdout_fraction < 1:
            raise ValueError("need 0 < test_fraction < 1 and 0 <= holdout_fraction < 1")


@dataclass(frozen=True)
class Episodes:
    """The replay's rows and which split and stage each episode belongs to."""

    rows: dict[str, np.ndarray]
    """Replay arrays (obs, action, reward, next_obs, terminated, episode), row-aligned."""
    ids: np.ndarray
    """(E,) episode ids in collection order."""
    split: np.ndarray
    """(E,) "train", "holdout" or "test"."""
    stage: np.ndarray
    """(E,) first stage (1-based) whose data include the episode; 0 for test episodes."""


def split_episodes(rows: dict[str, np.ndarray], cfg: ModelComparisonConfig) -> Episodes:
    """Assign every episode of the buffer to a split and a stage."""
    episode = rows["episode"]
    _, first = np.unique(episode, return_index=True)
    ids = episode[np.sort(first)]
    n = len(ids)
    n_test = int(np.ceil(cfg.test_fraction * n))
    n_pool = n - n_test
    if n_pool < cfg.stages or n_test < 1:
        raise ValueError(f"the buffer has {n} episodes: too few for {cfg.stages} stage(s) and a test split")
    split = np.full(n, "train", dtype=object)
    split[n_pool:] = "test"
    held = np.random.default_rng(cfg.seed).random(n_pool) < cfg.holdout_fraction
    split[:n_pool][held] = "holdout"
    ends = np.round(np.arange(1, cfg.stages + 1) * n_pool / cfg.stages).astype(int)  # (stages,)
    stage = np.zeros(n, np.int64)
    stage[:n_pool] = np.searchsorted(ends, np.arange(n_pool), side="right") + 1
    return Episodes(rows, ids, split.astype(str), stage)


def _rows_of(ep: Episodes, chosen: np.ndarray) -> np.ndarray:
    """(n,) bool: replay rows of the chosen episodes (a bool mask over ep.ids)."""
    return np.isin(ep.rows["episode"], ep.ids[chosen])


def multistep_mse(model: Dynamics, rows: dict[str, np.ndarray], starts: np.ndarray, horizon: int) -> np.ndarray:
    """(horizon,) mean over starts and state dims of the squared open-loop error; NaN if no start."""
    if len(starts) == 0:
        return np.full(horizon, np.nan)
    window = starts[:, None] + np.arange(horizon)[None, :]  # (start, horizon) replay rows
    state = ModelState(torch.as_tensor(rows["obs"][starts], dtype=torch.float32))
    with torch.no_grad():
        pred = model.rollout(state, torch.as_tensor(rows["action"][window], dtype=torch.float32)).numpy()
    diff = pred.astype(np.float64) - rows["next_obs"][window]  # (start, horizon, obs_dim)
    return (diff ** 2).mean(axis=(0, 2))


def build_model(name: str, cfg: ModelComparisonConfig, obs_dim: int, act_dim: int, seed: int) -> Dynamics:
    """Model class `name` with the study's overrides; the ensemble predicts its elites' mean
    (a sample would add its aleatoric noise to the MSE the deterministic models are judged by)."""
    from gymnasium import spaces

    overrides = {"seed": seed, **({"step_mode": "mean"} if name == "ensemble" else {}),
                 **cfg.model_config.get(name, {})}
    config = dataclasses.replace(model_config_class(name)(), **overrides)
    box = lambda d: spaces.Box(-np.inf, np.inf, (d,), np.float32)  # noqa: E731
    return make_dynamics(name, box(obs_dim), box(act_dim), "", config)


def run_stage(cfg: ModelComparisonConfig, ep: Episodes, k: int) -> dict[str, np.ndarray]:
    """One stage's record (append dim first): n_episodes, mse (1, model, split, horizon), fit
    diagnostics."""
    rows = ep.rows
    in_stage = (ep.stage >= 1) & (ep.stage <= k)
    fit_rows = _rows_of(ep, in_stage & (ep.split == "train"))
    if not fit_rows.any():
        raise ValueError(f"stage {k} has no train episode (holdout_fraction too high for this buffer)")
    data = Transitions(**{f: rows[f][fit_rows] for f in _REPLAY})
    rng = np.random.default_rng([cfg.seed, k])
    starts = {}
    for split in SPLITS:
        chosen = (ep.split == split) & (in_stage | (split == "test"))
        cand = window_starts(rows["episode"], rows["terminated"], cfg.horizon, _rows_of(ep, chosen))
        picked = choose(cand, cfg.starts, rng)
        starts[split] = picked[picked >= 0]
    obs_dim, act_dim = rows["obs"].shape[1], rows["action"].shape[1]
    mse = np.full((1, len(cfg.models), len(SPLITS), cfg.horizon), np.nan)
    epochs = np.zeros((1, len(cfg.models)))
    for m, name in enumerate(cfg.models):
        model = build_model(name, cfg, obs_dim, act_dim, cfg.seed + k)
        epochs[0, m] = model.fit(data).get("epochs", np.nan)
        for s, split in enumerate(SPLITS):
            mse[0, m, s] = multistep_mse(model, rows, starts[split], cfg.horizon)
    return {
        "stage": np.array([k]),
        "n_episodes": np.array([int((in_stage & (ep.split == "train")).sum())]),
        "n_transitions": np.array([int(fit_rows.sum())]),
        "n_starts": np.array([[len(starts[s]) for s in SPLITS]]),
        "fit_epochs": epochs,
        "mse": mse.astype(np.float32),
    }


def _read_buffer(tree: xr.DataTree, path: str) -> dict[str, np.ndarray]:
    if "replay" not in tree:
        raise StoreError(f"{path!r} has no replay group: give a training run store")
    replay = tree["replay"]
    rows = {f: replay[f].values for f in _REPLAY}
    rows["obs"], rows["next_obs"] = (rows[k].astype(np.float64) for k in ("obs", "next_obs"))
    return rows


def run_study(
    cfg: ModelComparisonConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Run every stage not yet committed in `out`; one commit per stage."""
    out = Path(out)
    set_process_numerics(1)
    source = open_run(cfg.buffer)
    ep = split_episodes(_read_buffer(source, cfg.buffer), cfg)
    config = json.loads(json.dumps(dataclasses.asdict(cfg)))
    if resume and out.exists():
        stored = json.loads(open_run(out, check_values=False).attrs["config"])
        if stored != config:
            changed = sorted(k for k in config if stored.get(k) != config[k])
            raise StoreError(f"{str(out)!r} was written with a different config (differs in {changed}); "
                             "resume it with the same arguments, or write a new store.")
        writer = RunWriter.resume(out)
    else:
        writer = RunWriter.create(
            out, kind="model_comparison", env_id=source.attrs["env_id"],
            algorithm=f"model-comparison:{source.attrs['algorithm']}", seed=cfg.seed, config=config,
            overwrite=overwrite,
        )
    with writer:
        if not writer.has_group("model_comparison"):
            coords = {"model": list(cfg.models), "split": list(SPLITS), "horizon": np.arange(1, cfg.horizon + 1)}
            writer.add_group("model_comparison", coords)
        done = writer.committed["model_comparison"]
        if progress:
            progress(done, cfg.stages)
        for k in range(done + 1, cfg.stages + 1):
            writer.append("model_comparison", **run_stage(cfg, ep, k))
            writer.commit()
            if progress:
                progress(k, cfg.stages)
    return out
