"""Rollout viewer: the model's predicted open-loop trajectory against the true one, per state
dimension, from one recorded start state at one snapshot.

Pure functions on a lazily opened training run. The engine stores, at each snapshot, the
prediction from every Study 1 start (`model_error/prediction`, (snapshot, split, start, horizon,
obs_dim)) and, for an ensemble, the elites' per-dimension spread (`prediction_spread`). The true
trajectory is not stored twice: it is the replay's `next_obs` at rows `start_step + h - 1`, read
here (only those rows), with the start state `obs[start_step]` as horizon 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from app.studies import model_error
from app.studies.buffer import BLOCK_ROWS, blocks
from app.studies.training import has_group

GROUP = model_error.GROUP
NEEDED = {GROUP: ("prediction", "start_step"), "replay": ("obs", "next_obs", "episode")}
"""The variables the viewer reads, by group."""


def missing(tree: xr.DataTree) -> list[str]:
    """`group/variable` names the viewer needs and the run lacks (a store written before the
    engine recorded predictions lacks `model_error/prediction`); [] if it has them all."""
    out = []
    for group, names in NEEDED.items():
        if not has_group(tree, group):
            out.append(group)
            continue
        out += [f"{group}/{n}" for n in names if n not in tree[group].data_vars]
    return out


def has_predictions(tree: xr.DataTree | None) -> bool:
    """Whether the run (None: a store that did not open) has everything the viewer reads."""
    return tree is not None and not missing(tree)


def has_spread(tree: xr.DataTree) -> bool:
    """Whether the run stores an ensemble spread (it may still be all NaN for other models)."""
    return "prediction_spread" in tree[GROUP].data_vars


def episode_first_steps(tree: xr.DataTree, rows: int = BLOCK_ROWS) -> pd.Series:
    """First replay step of every episode (indexed by episode), reading `replay/episode` in
    blocks of `rows` steps."""
    episode = tree["replay"]["episode"]
    ids, firsts, previous = [], [], None
    for sl in blocks(episode.sizes["step"], rows):
        ep = episode.isel(step=sl).values
        before = np.concatenate([[ep[0] - 1 if previous is None else previous], ep[:-1]])
        new = np.flatnonzero(ep != before)  # rows where an episode begins
        ids.append(ep[new])
        firsts.append(sl.start + new)
        previous = ep[-1]
    return pd.Series(np.concatenate(firsts) if firsts else [], index=np.concatenate(ids) if ids else [],
                     name="first_step", dtype=np.int64)


def starts(tree: xr.DataTree, snapshot: int, split: str, first_steps: pd.Series) -> pd.DataFrame:
    """The real start states of (snapshot, split): `start` (index in the store), `replay_step`,
    `episode` and `t` (time step within the episode), in start order. `first_steps` is
    `episode_first_steps(tree)`."""
    rows = tree[GROUP]["start_step"].sel(snapshot=snapshot, split=split).values
    real = np.flatnonzero(rows >= 0)
    steps = rows[real]
    episode = tree["replay"]["episode"].isel(step=xr.DataArray(steps, dims="row")).values if len(steps) else steps
    return pd.DataFrame({"start": real, "replay_step": steps, "episode": episode,
                         "t": steps - first_steps.reindex(episode).to_numpy(np.int64)})


def start_label(row: pd.Series) -> str:
    """`replay step 1234 · episode 5 · t = 234` for a row of `starts`."""
    return f"replay step {row['replay_step']} · episode {row['episode']} · t = {row['t']}"


def trajectory(tree: xr.DataTree, snapshot: int, split: str, start: int) -> xr.Dataset:
    """Predicted vs true trajectory of one start, each (horizon, obs_dim) with horizon 0 (the
    start state, where both are the real observation) to H.

    Variables: `predicted`, `true`, `spread` (the ensemble's per-dimension spread: NaN without
    one, 0 at horizon 0) and the stored `error` (L2, NaN at horizon 0). Attributes name the
    start (`replay_step`, `episode`), the snapshot (`env_step`) and the split. `ValueError` for
    a padded start.
    """
    me = tree[GROUP].to_dataset()
    at = {"snapshot": snapshot, "split": split, "start": start}
    step = int(me["start_step"].sel(at))
    if step < 0:
        raise ValueError(f"start {start} of snapshot {snapshot} ({split}) is padding: no start state")
    pred = me["prediction"].sel(at).load()  # (horizon, obs_dim)
    H = pred.sizes["horizon"]
    replay = tree["replay"].to_dataset()[["obs", "next_obs", "episode"]].isel(step=slice(step, step + H)).load()
    if (replay["episode"] != replay["episode"][0]).any():  # the engine never stores such a start
        raise ValueError(f"the rollout from replay step {step} crosses an episode end")
    horizon = np.arange(H + 1)
    first = replay["obs"].isel(step=0).values[None, :]  # (1, obs_dim)

    def along(values: np.ndarray, head: np.ndarray, long_name: str) -> xr.DataArray:
        return xr.DataArray(np.concatenate([head, values]).astype(float), dims=("horizon", "obs_dim"),
                            attrs={"long_name": long_name, "units": pred.attrs.get("units", "env")})

    spread = me["prediction_spread"].sel(at).values if has_spread(tree) else np.full(pred.shape, np.nan)
    error = np.concatenate([[np.nan], me["error"].sel(at).values]).astype(float)
    ds = xr.Dataset(
        {
            "predicted": along(pred.values, first, "predicted observation"),
            "true": along(replay["next_obs"].values, first, "true observation (replay)"),
            "spread": along(spread, np.where(np.isfinite(spread[:1]), 0.0, np.nan), "ensemble spread (std)"),
            "error": xr.DataArray(error, dims="horizon", attrs=dict(me["error"].attrs)),
        },
        coords={"horizon": ("horizon", horizon, {"long_name": "open-loop horizon", "units": "1"}),
                "obs_dim": ("obs_dim", pred["obs_dim"].values, {"long_name": "observation dimension", "units": "1"})},
    )
    ds.attrs = {"snapshot": int(snapshot), "split": str(split), "start": int(start), "replay_step": step,
                "episode": int(replay["episode"][0]), "env_step": int(me["env_step"].sel(snapshot=snapshot))}
    return ds
