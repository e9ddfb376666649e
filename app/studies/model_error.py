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
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from app.studies.compare import config_keys
from app.studies.spread import Band, Center, reduce_seeds, stats_to_vars
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


def skipped_note(tree: xr.DataTree) -> str | None:
    """Which snapshots are not shown and why (no model fitted yet, or no valid start), or None."""
    fitted = model_fitted(tree)
    usable = usable_snapshots(tree)
    steps = dict(zip(fitted["snapshot"].values.tolist(), fitted["env_step"].values.tolist(), strict=True))
    skipped = [s for s in steps if s not in usable]
    unfitted = [str(steps[s]) for s in skipped if not bool(fitted.sel(snapshot=s))]
    no_start = [str(steps[s]) for s in skipped if bool(fitted.sel(snapshot=s))]
    parts = [f"no model fitted yet at step(s) {', '.join(unfitted)}"] if unfitted else []
    if no_start:
        parts.append("no valid start state (an episode long enough for the horizon) at step(s) " + ", ".join(no_start))
    return "; ".join(parts) or None


def usable_steps(tree: xr.DataTree) -> dict[int, int]:
    """`usable_snapshots` -> their environment steps, in snapshot order."""
    steps = start_counts(tree)["env_step"]
    return {s: int(steps.sel(snapshot=s)) for s in usable_snapshots(tree)}


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
    tree: xr.DataTree, snapshots: Sequence[int], band: Band, center: Center = "mean", *, normalized: bool = False
) -> xr.DataArray:
    """Mean and band over starts of the open-loop error: (stat, snapshot, split, horizon).

    `snapshots` are `snapshot` coordinate values. Padded starts and snapshots without a fitted
    model are NaN; statistics use the real starts only (see `reduce_seeds`), so a split without
    any real start is all NaN. Coordinates: `env_step(snapshot)`, `n_starts(snapshot, split)`.
    """
    da = _errors(tree, normalized).sel(snapshot=list(snapshots)).load()
    out = reduce_seeds(da, band, dim="start", center=center)
    out = out.transpose("stat", "snapshot", "split", "horizon")
    n = start_counts(tree).sel(snapshot=list(snapshots))
    out = out.assign_coords(n_starts=(("snapshot", "split"), n.transpose("snapshot", "split").values))
    out.attrs["n_starts_max"] = out.attrs.pop("n_seeds")
    out.attrs["normalized"] = bool(normalized)
    return out


def runs_error_vs_horizon(
    trees: Mapping[str, xr.DataTree], snapshots: Mapping[str, int], groups: Mapping[str, Sequence[str]],
    band: Band, center: Center = "mean", *, normalized: bool = False,
) -> xr.DataArray:
    """Several runs, each at one snapshot: centre and band of the open-loop error per line,
    (stat, line, split, horizon).

    `groups` maps a line's label to its runs (the seeds of a config, or one run); the start
    states of every run of a line are pooled (the statistics are over every real start of
    every seed, NaN padding skipped), horizons outer-joined. `snapshots` gives each run's
    snapshot (coordinate value). Coordinates of `line`: `config_key` (its colour), `n_runs`,
    `runs` and `env_steps` (text), and `n_starts(line, split)`.
    """
    keys = config_keys(trees)
    parts, n_starts, env_steps = [], [], []
    for names in groups.values():
        pooled = [_errors(trees[n], normalized).sel(snapshot=snapshots[n]).drop_vars(["snapshot", "env_step", "start"])
                  .rename(start="sample").load() for n in names]
        parts.append(reduce_seeds(xr.concat(pooled, dim="sample", join="outer"), band, dim="sample", center=center))
        counts = [start_counts(trees[n]).sel(snapshot=snapshots[n]).drop_vars(["snapshot", "env_step"]) for n in names]
        n_starts.append(sum(counts).transpose("split").values)
        env_steps.append(", ".join(str(int(_errors(trees[n], normalized)["env_step"].sel(snapshot=snapshots[n])))
                                   for n in names))
    out = xr.concat(parts, dim=xr.Variable("line", list(groups)), join="outer", coords="minimal")
    out = out.transpose("stat", "line", "split", "horizon").assign_coords(
        config_key=("line", [keys[names[0]] for names in groups.values()]),
        n_runs=("line", [len(names) for names in groups.values()]),
        runs=("line", [", ".join(names) for names in groups.values()]),
        env_steps=("line", env_steps),
        n_starts=(("line", "split"), np.array(n_starts)),
    )
    out["horizon"].attrs = parts[0]["horizon"].attrs
    out.attrs = {**parts[0].attrs, "normalized": bool(normalized)}
    out.attrs["n_starts_max"] = out.attrs.pop("n_seeds")
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
    n_starts = curves["n_starts"].reset_coords(drop=True)
    curves = curves.drop_vars([c for c in ("n_starts", "config_key") if c in curves.coords])
    ds = stats_to_vars(curves, over="starts")
    ds["n_starts"] = n_starts.assign_attrs(long_name="start states evaluated", units="1")
    for coord in ("env_step", "env_steps"):
        if coord in ds.coords:
            ds[coord].attrs = {"long_name": "environment steps at the snapshot", "units": "1"}
    ds.attrs = {**ds.attrs, "normalized": int(curves.attrs.get("normalized", False))}
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
