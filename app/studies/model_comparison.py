"""Study 1b: multi-step MSE of model classes refitted in stages on a recorded buffer (SVG Fig. 3).

Pure functions from an opened run (`xarray.DataTree`) to what the figures draw.
"""

from __future__ import annotations

import xarray as xr

from app.studies.training import group_dataset

KIND = "model_comparison"
"""The `kind` root attribute of the runs this study reads."""
GROUP = "model_comparison"


def n_stages(tree: xr.DataTree) -> int:
    """Stages committed so far (0 if the group is not there yet)."""
    return int(tree[GROUP].sizes.get("stage", 0)) if GROUP in tree.children else 0


def mse_vs_horizon(tree: xr.DataTree, stage: int) -> xr.DataArray:
    """MSE at one stage: (model, split, horizon), with the stage's data sizes as attributes."""
    ds = group_dataset(tree, GROUP).sel(stage=stage)
    mse = ds["mse"].transpose("model", "split", "horizon").compute()
    return mse.assign_attrs(stage=int(stage), n_episodes=int(ds["n_episodes"]),
                            n_transitions=int(ds["n_transitions"]) if "n_transitions" in ds else None)


def mse_vs_stage(tree: xr.DataTree, horizon: int) -> xr.DataArray:
    """MSE at one horizon over the stages: (model, split, stage), with `n_episodes` (stage) as a
    coordinate (the x axis: how much data the models were fitted on)."""
    ds = group_dataset(tree, GROUP).sel(horizon=horizon)
    mse = ds["mse"].transpose("model", "split", "stage").compute()
    return mse.assign_coords(n_episodes=ds["n_episodes"].compute()).assign_attrs(horizon=int(horizon))


def starts_table(tree: xr.DataTree) -> xr.DataArray:
    """Start states each MSE averages over: (stage, split); absent in stores without it."""
    ds = group_dataset(tree, GROUP)
    if "n_starts" not in ds:
        raise ValueError("this store does not record n_starts")
    return ds["n_starts"].compute()
