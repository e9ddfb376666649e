"""Study 3: model generalization vs policy KL (MBPO section 4.3, Fig. 1).

Pure functions from an opened run (`xarray.DataTree`) to what the figures draw: the frozen
models' error vs KL(pi || pi_D) per probe, and the local slope d eps_m / d eps_pi near KL = 0
per data size, fitted by least squares (`scipy.stats.linregress`) on the checks whose KL is at
most `kl_max` nats (the check at freezing, KL = 0 exactly, included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from app.studies.spread import Band, Center, reduce_seeds
from app.studies.training import group_dataset

KIND = "generalization"
"""The `kind` root attribute of the runs this study reads."""
GROUP, PROBES = "generalization", "generalization_probe"
MIN_POINTS = 3
"""Fewest points a slope is fitted on (linregress's standard error needs 3)."""


def available(tree: xr.DataTree) -> bool:
    """Whether the run has at least one committed check."""
    return GROUP in tree.children and tree[GROUP].sizes.get("check", 0) > 0


def curves(tree: xr.DataTree) -> xr.Dataset:
    """kl, model_error (probe, check), env_step (check), data_size and model_error_train (probe).

    model_error_train is NaN for a probe with no committed record yet.
    """
    ds = group_dataset(tree, GROUP)[["kl", "model_error", "env_step", "data_size"]].load()
    train = group_dataset(tree, PROBES)["model_error_train"].load()
    ds["model_error_train"] = train.reindex(probe=ds["probe"])
    ds["model_error_train"].attrs = train.attrs
    return ds


def default_kl_max(ds: xr.Dataset) -> float:
    """A starting "near 0": the median positive KL of the run (every probe then has its
    early checks in the fit), or 1 nat if there is none."""
    kl = ds["kl"].values
    pos = kl[np.isfinite(kl) & (kl > 0)]
    return float(np.median(pos)) if pos.size else 1.0


def local_slopes(ds: xr.Dataset, kl_max: float) -> xr.Dataset:
    """Per probe: slope, intercept and their standard errors of model_error ~ kl over the checks
    with kl <= kl_max, and the number of points; NaN with fewer than MIN_POINTS points."""
    out = {k: np.full(ds.sizes["probe"], np.nan) for k in ("slope", "slope_stderr", "intercept", "intercept_stderr")}
    from scipy import stats  # here, not at the top: scipy.stats is 0.5 s of a page's cold start

    n_points = np.zeros(ds.sizes["probe"], np.int64)
    kl_hi = np.full(ds.sizes["probe"], np.nan)
    for i in range(ds.sizes["probe"]):
        kl, err = ds["kl"].values[i], ds["model_error"].values[i]
        near = np.isfinite(kl) & np.isfinite(err) & (kl <= kl_max)
        n_points[i] = near.sum()
        kl_hi[i] = kl[near].max() if near.any() else np.nan
        if n_points[i] >= MIN_POINTS and np.ptp(kl[near]) > 0:
            fit = stats.linregress(kl[near].astype(float), err[near].astype(float))
            out["slope"][i], out["slope_stderr"][i] = fit.slope, fit.stderr
            out["intercept"][i], out["intercept_stderr"][i] = fit.intercept, fit.intercept_stderr
    units = ds["model_error"].attrs.get("units", "")
    res = xr.Dataset(
        {k: ("probe", v, {"long_name": f"local {k.replace('_', ' ')} of model error vs KL",
                          "units": f"{units}/nat" if k.startswith("slope") else units})
         for k, v in out.items()},
        coords={"probe": ds["probe"].values},
    )
    res["n_points"] = ("probe", n_points, {"long_name": "checks with KL <= kl_max", "units": "1"})
    res["kl_hi"] = ("probe", kl_hi, {"long_name": "largest KL among the fitted checks", "units": "nat"})
    res["data_size"] = ds["data_size"]
    res.attrs = {"kl_max": float(kl_max), "kl_max_units": "nat"}
    return res


def fitted_lines(slopes: xr.Dataset) -> xr.Dataset:
    """Each probe's fitted line over its fitted range: kl_fit, model_error_fit (probe, end),
    end = (from KL 0, to the largest fitted KL)."""
    kl = np.stack([np.zeros(slopes.sizes["probe"]), slopes["kl_hi"].values], axis=1)  # (probe, end)
    line = slopes["intercept"].values[:, None] + slopes["slope"].values[:, None] * kl
    units = slopes["intercept"].attrs.get("units", "")
    return xr.Dataset(
        {"kl_fit": (("probe", "end"), kl, {"long_name": "KL(pi || pi_D) of the fitted line", "units": "nat"}),
         "model_error_fit": (("probe", "end"), line, {"long_name": "fitted model error", "units": units})},
        coords={"probe": slopes["probe"].values, "end": ["start", "stop"]},
    )


def config_slopes(slopes: Mapping[str, xr.Dataset], groups: Mapping[str, Sequence[str]], keys: Mapping[str, str],
                  band: Band, center: Center = "mean") -> xr.DataArray:
    """Centre and band over the seeds of each config of the local slope at each data size:
    (stat, config, data_size). `slopes` maps a run to its `local_slopes`, `groups` a config
    label to its runs, `keys` a label to its config key (a coordinate: its colour). Runs are
    matched by data size (outer join); a probe without a slope is skipped (`reduce_seeds`).
    Coordinates of `config`: `config_key`, `n_seeds`."""
    parts = []
    for names in groups.values():
        per_run = [slopes[n]["slope"].assign_coords(data_size=slopes[n]["data_size"]).swap_dims(probe="data_size")
                   .drop_vars("probe") for n in names]
        parts.append(reduce_seeds(xr.concat(per_run, dim="seed", join="outer"), band, dim="seed", center=center))
    out = xr.concat(parts, dim=xr.Variable("config", list(groups)), join="outer", coords="minimal",
                    combine_attrs="override")
    out.attrs.pop("n_seeds", None)
    out["data_size"].attrs = {"long_name": "data size N", "units": "transitions"}
    return out.transpose("stat", "config", "data_size").assign_coords(
        config_key=("config", [keys[c] for c in groups]), n_seeds=("config", [len(v) for v in groups.values()]))


def error_plot_data(ds: xr.Dataset) -> xr.Dataset:
    """What panel (a) plots."""
    return ds[["kl", "model_error", "env_step", "data_size", "model_error_train"]]


def slope_plot_data(ds: xr.Dataset, slopes: xr.Dataset) -> xr.Dataset:
    """What panel (b) plots: the points near 0, the fitted lines and the slopes with their SE."""
    near = ds[["kl", "model_error"]].where(ds["kl"] <= slopes.attrs["kl_max"])
    return xr.merge([near.rename(kl="kl_near", model_error="model_error_near"),
                     fitted_lines(slopes), slopes], combine_attrs="drop").assign_attrs(slopes.attrs)
