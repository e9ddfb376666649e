"""Study 1: open-loop model error vs horizon during training (MVE Fig. 1; SVG Fig. 3).

Pure functions from an opened training run (`xarray.DataTree`, group `model_error`) to the
arrays the figures draw. At each snapshot the engine rolled the current model open loop from
up to `start` start states per split (`holdout`: replay transitions never used for fitting;
`test`: the newest data, collected after the model's last fit) and stored the error at every
horizon; padded starts (`start_step` = -1) are NaN. A snapshot taken before the first model
fit has `model_fit_step` = 0 and only NaN errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from app.studies.spread import Band, reduce_seeds
from app.studies.training import group_dataset, has_group

GROUP = "model_error"
VARIABLES = {False: "error", True: "error_normalized"}
"""The error variable by `normalized`."""


def available(tree: xr.DataTree) -> bool:
    """Whether the run has at least one model-error snapshot."""
    return has_group(tree, GROUP)


def group(tree: xr.DataTree) -> xr.Dataset:
    """The run's `model_error` group; `ValueError` if it has none."""
    return group_dataset(tree, GROUP)


def start_counts(tree: xr.DataTree) -> xr.DataArray:
    """Number of real (non-padded) starts per (snapshot, split), 0 before the first fit.

    A start is real when its `start_step` is >= 0 (if the store lacks `start_step`: when its
    error at the first horizon is finite).
    """
    ds = group(tree)
    if "start_step" in ds:
        real = ds["start_step"] >= 0
    else:
        real = np.isfinite(ds["error"].isel(horizon=0))
    fitted = model_fitted(tree)
    n = (real.sum("start") * fitted).astype(int).load()
    n.name = "n_starts"
    n.attrs = {"long_name": "start states evaluated", "units": "1"}
    return n.assign_coords(env_step=ds["env_step"].load())


def model_fitted(tree: xr.DataTree) -> xr.DataArray:
    """Whether a model had been fitted at each snapshot (`model_fit_step` > 0; if the store lacks
    it, whether any error is finite). Coordinates `env_step` and `model_fit_step`."""
    ds = group(tree)
    if "model_fit_step" in ds:
        fit = ds["model_fit_step"].load()
        out = fit > 0
    else:
        fit = None
        out = np.isfinite(ds["error"]).any(("split", "start", "horizon")).load()
    out = out.assign_coords(env_step=ds["env_step"].load())
    if fit is not None:
        out = out.assign_coords(model_fit_step=fit)
    out.name = "model_fitted"
    return out


def usable_snapshots(tree: xr.DataTree) -> list[int]:
    """Snapshots (coordinate values) with a fitted model and at least one real start."""
    n = start_counts(tree)
    return [int(s) for s in n["snapshot"].values[(n.sum("split") > 0).values]]


def _errors(tree: xr.DataTree, normalized: bool) -> xr.DataArray:
    ds = group(tree)
    var = VARIABLES[bool(normalized)]
    da = ds[var]
    if "start_step" in ds:
        da = da.where(ds["start_step"] >= 0)
    if "model_fit_step" in ds:
        da = da.where(ds["model_fit_step"] > 0)
    return da.assign_coords(env_step=ds["env_step"]).astype(float)


def error_vs_horizon(
    tree: xr.DataTree, snapshots: Sequence[int], band: Band, *, normalized: bool = False
) -> xr.DataArray:
    """Mean and band over starts of the open-loop error: (stat, snapshot, split, horizon).

    `snapshots` are `snapshot` coordinate values. Padded starts and snapshots without a fitted
    model are NaN; statistics use the real starts only (see `reduce_seeds`), so a split without
    any real start is all NaN. Coordinates: `env_step(snapshot)`, `n_starts(snapshot, split)`.
    """
    da = _errors(tree, normalized).sel(snapshot=list(snapshots)).load()
    out = reduce_seeds(da, band, dim="start")
    out = out.transpose("stat", "snapshot", "split", "horizon")
    n = start_counts(tree).sel(snapshot=list(snapshots))
    out = out.assign_coords(n_starts=(("snapshot", "split"), n.transpose("snapshot", "split").values))
    out.attrs["n_starts_max"] = out.attrs.pop("n_seeds")
    out.attrs["normalized"] = bool(normalized)
    return out


def error_heatmap(tree: xr.DataTree, *, normalized: bool = False) -> xr.DataArray:
    """Mean error over real starts per (split, snapshot, horizon), NaN where there is none.

    Coordinates: `env_step(snapshot)`, `model_fitted(snapshot)`, `n_starts(split, snapshot)`.
    """
    da = _errors(tree, normalized).load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an all-NaN slice is NaN
        out = da.mean("start", skipna=True)
    out = out.transpose("split", "snapshot", "horizon")
    n = start_counts(tree).transpose("split", "snapshot")
    out = out.assign_coords(model_fitted=("snapshot", model_fitted(tree).values),
                            n_starts=(("split", "snapshot"), n.values))
    out.name = da.name
    out.attrs = {**da.attrs, "long_name": f"mean {da.attrs.get('long_name', da.name)} over starts",
                 "normalized": bool(normalized)}
    return out


def empty_curves(curves: xr.DataArray) -> list[tuple[int, str]]:
    """(snapshot, split) pairs of `error_vs_horizon` output with no finite mean at any horizon."""
    mean = curves.sel(stat="mean")
    finite = np.isfinite(mean).any("horizon")
    return [(int(s), str(p)) for s in mean["snapshot"].values for p in mean["split"].values
            if not bool(finite.sel(snapshot=s, split=p))]


def curves_plot_data(curves: xr.DataArray) -> xr.Dataset:
    """What the error-vs-horizon panel plots: {var}_{mean,lo,hi} per snapshot, split, horizon."""
    name = str(curves.name)
    base = curves.attrs.get("long_name", name)
    what = {"mean": "mean over starts", "lo": "band lower edge", "hi": "band upper edge"}
    n_starts = curves["n_starts"].reset_coords(drop=True)
    curves = curves.drop_vars("n_starts")
    ds = xr.Dataset()
    for stat in curves["stat"].values:
        var = curves.sel(stat=stat, drop=True)
        var.attrs = {"long_name": f"{base}, {what[str(stat)]}", "units": curves.attrs.get("units", "")}
        ds[f"{name}_{stat}"] = var
    ds["n_starts"] = n_starts.assign_attrs(long_name="start states evaluated", units="1")
    ds["env_step"].attrs = {"long_name": "environment steps at the snapshot", "units": "1"}
    ds.attrs = {"band": curves.attrs.get("band", ""), "normalized": int(curves.attrs.get("normalized", False))}
    return ds


def heatmap_plot_data(heat: xr.DataArray) -> xr.Dataset:
    """What the heatmap panel plots: the mean error per split, snapshot (with env_step), horizon."""
    ds = heat.reset_coords(["model_fitted", "n_starts"]).rename({heat.name: f"{heat.name}_mean"})
    ds["model_fitted"] = ds["model_fitted"].astype("int8").assign_attrs(
        long_name="a model had been fitted at the snapshot", units="1")
    ds["n_starts"].attrs = {"long_name": "start states evaluated", "units": "1"}
    ds["env_step"].attrs = {"long_name": "environment steps at the snapshot", "units": "1"}
    ds.attrs = {"normalized": int(heat.attrs.get("normalized", False))}
    return ds
