"""Learning curves of training runs: mean evaluation return vs environment steps, or any
logged agent metric vs gradient updates; several runs overlaid, seeds of a config aggregated.

Pure functions from opened runs (`xarray.DataTree`) to the arrays the figure draws:

- `run_curves`: one curve per run, (run, x), smoothed per run, with the run's config label,
  config key and seed as coordinates of `run`;
- `config_curves`: centre (mean or IQM) and spread band over the seeds of each config,
  (stat, config, x), computed only where every seed of the config has a value. With
  `per_episode` run curves (the eval return per evaluation episode) the statistics pool every
  episode of every seed, as rliable's IQM does.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import xarray as xr

from app.studies import training
from app.studies.spread import Band, Center, band_label, reduce_seeds

EVAL_RETURN = "eval_return"
"""Metric id of the mean evaluation return per snapshot (group `eval`); every other metric id
is a variable of the `train` group."""
X_DIMS = {"env_step": "environment steps", "update": "gradient update"}


def metrics(tree: xr.DataTree) -> list[str]:
    """The metrics a run offers: the mean eval return (if any), then its train variables."""
    out = [EVAL_RETURN] if training.has_group(tree, "eval") else []
    if training.has_group(tree, "train"):
        out += sorted(str(v) for v in tree["train"].data_vars if v != "env_step")
    return out


def x_dim(metric: str) -> str:
    """The x dim of a metric's curve: `env_step` for the eval return, `update` for the rest."""
    return "env_step" if metric == EVAL_RETURN else "update"


def metric_label(metric: str) -> str:
    """What the metric chooser shows."""
    return "mean evaluation return" if metric == EVAL_RETURN else metric.replace("_", " ")


def raw_curve(tree: xr.DataTree, metric: str, per_episode: bool = False) -> xr.DataArray | None:
    """The run's unsmoothed curve along `x_dim(metric)`, or None if the run does not have it.

    The eval return is the mean over the snapshot's evaluation episodes (NaNs skipped), or with
    `per_episode` every episode's return, (episode, env_step), placed at the snapshot's
    `env_step`; a train metric is its value per logged update (NaN where the agent did not
    report it; `per_episode` does not apply).
    """
    if metric == EVAL_RETURN:
        if not training.has_group(tree, "eval"):
            return None
        ds = tree["eval"].to_dataset()
        ret = ds["return"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            y = ret if per_episode else ret.mean("episode", skipna=True)
        y = y.assign_coords(env_step=("snapshot", ds["env_step"].values)).swap_dims(snapshot="env_step")
        y = y.drop_vars("snapshot")
        if per_episode:  # an index, so runs with different episode counts join outer
            y = y.assign_coords(episode=np.arange(y.sizes["episode"]))
        what, n = ret.attrs.get("long_name", "evaluation return"), ret.sizes["episode"]
        attrs = {"long_name": f"{what} ({n} episodes each)" if per_episode else f"mean {what} (over {n} episodes)",
                 "units": ret.attrs.get("units", "")}
    else:
        if not training.has_group(tree, "train") or metric not in tree["train"].data_vars:
            return None
        da = tree["train"].to_dataset()[metric]
        y = da.reset_coords(drop=True)
        attrs = {"long_name": da.attrs.get("long_name", metric), "units": da.attrs.get("units", "")}
    dim = x_dim(metric)
    y = y.load().drop_duplicates(dim, keep="last").sortby(dim).astype(float)
    y = y.transpose(..., dim)
    y.name = metric
    y.attrs = attrs
    y[dim].attrs = {"long_name": X_DIMS[dim], "units": "1"}
    return y


def smooth(curve: xr.DataArray, window: int) -> xr.DataArray:
    """Centred moving average over `window` recorded points (NaN points skipped; shorter windows
    at the ends; points that were NaN stay NaN). `window` <= 1 returns the curve unchanged."""
    if window <= 1:
        return curve
    if curve.ndim > 1:  # (episode, x): each episode's curve on its own
        other = curve.dims[0]
        parts = [smooth(curve.isel({other: i}), window) for i in range(curve.sizes[other])]
        return xr.concat(parts, dim=other).transpose(*curve.dims)
    dim = curve.dims[0]
    valid = curve.dropna(dim)
    if valid.sizes[dim] == 0:
        return curve
    sm = valid.rolling({dim: int(window)}, center=True, min_periods=1).mean()
    out = sm.reindex({dim: curve[dim]})
    out.attrs = curve.attrs
    out.name = curve.name
    return out


def run_curves(
    trees: Mapping[str, xr.DataTree], metric: str, window: int = 1, per_episode: bool = False
) -> xr.DataArray:
    """One (smoothed) curve per run that has `metric`: (run, x), outer-joined on x; with
    `per_episode` and the eval return, (run, episode, x), one curve per evaluation episode.

    Coordinates of `run`: `config` (label shared by seeds of one config), `config_key`
    (canonical JSON of the config without seeds) and `seed`. Runs without the metric are
    listed in the `skipped` attribute.
    """
    curves, names, skipped = [], [], []
    for name, tree in trees.items():
        c = raw_curve(tree, metric, per_episode)
        if c is None or not np.isfinite(c.values).any():
            skipped.append(name)
            continue
        curves.append(smooth(c, window))
        names.append(name)
    dim = x_dim(metric)
    if not curves:
        out = xr.DataArray(np.zeros((0, 0)), dims=("run", dim),
                           coords={"run": [], dim: np.zeros(0, int), "config": ("run", []),
                                   "config_key": ("run", []), "seed": ("run", [])}, name=metric)
        out.attrs = {"skipped": skipped, "smooth": int(window), "metric": metric}
        return out
    keys = [training.config_key(trees[n]) for n in names]
    labels = training.config_labels(keys)
    out = xr.concat(curves, dim=xr.Variable("run", names), join="outer", coords="minimal")
    seeds = [training.seed(trees[n]) for n in names]
    out = out.assign_coords(
        config=("run", [labels[k] for k in keys]),
        config_key=("run", keys),
        seed=("run", [-1 if s is None else s for s in seeds]),
    )
    out[dim].attrs = curves[0][dim].attrs
    out.name = metric
    out.attrs = {**curves[0].attrs, "skipped": skipped, "smooth": int(window), "metric": metric}
    return out.transpose("run", ..., dim)


def configs(curves: xr.DataArray) -> list[str]:
    """The config labels of `run_curves`/`config_curves` output, in the order colours follow
    (sorted), so a config keeps its colour whether its seeds are shown or aggregated."""
    labels = curves["config"].values if "config" in curves.coords else []
    return sorted({str(c) for c in labels})


def config_curves(curves: xr.DataArray, band: Band, center: Center = "mean") -> xr.DataArray:
    """Centre and band over the seeds of each config: (stat, config, x).

    Only x values where every seed of the config has a value are kept (a seed still running
    cuts its config's curve to its own length); elsewhere the result is NaN. Per-episode curves
    (run, episode, x) are pooled: the statistics are over every (seed, episode) value at x.
    `n_seeds`, `seeds` (text) and `config_key` are coordinates of `config`.
    """
    dim = curves.dims[-1]
    pooled = [d for d in curves.dims if d not in ("run", dim)]
    parts, n_seeds, seed_text, keys = [], [], [], []
    for label in configs(curves):
        sel = curves.isel(run=np.flatnonzero(curves["config"].values == label))
        complete = sel.notnull().any(pooled).all("run") if pooled else sel.notnull().all("run")
        sel = sel.where(complete)
        flat = sel.drop_vars(["config", "config_key", "seed"]).stack(sample=["run", *pooled])
        red = reduce_seeds(flat.drop_vars(["sample", "run", *pooled]), band, dim="sample", center=center)
        parts.append(red)
        n_seeds.append(sel.sizes["run"])
        seed_text.append(", ".join(str(int(s)) for s in sel["seed"].values))
        keys.append(str(sel["config_key"].values[0]))
    labels = configs(curves)
    if not parts:
        out = xr.DataArray(np.zeros((3, 0, curves.sizes[dim])), dims=("stat", "config", dim),
                           coords={"stat": ["mean", "lo", "hi"], "config": [], dim: curves[dim].values})
    else:
        out = xr.concat(parts, dim=xr.Variable("config", labels), join="outer", coords="minimal")
    out = out.assign_coords(n_seeds=("config", n_seeds), seeds=("config", seed_text),
                            config_key=("config", keys))
    out = out.transpose("stat", "config", dim)
    out[dim].attrs = curves[dim].attrs
    out.name = curves.name
    out.attrs = {**curves.attrs, "band": band, "band_label": band_label(band, center), "center": center,
                 "pooled": pooled}
    out.attrs.pop("n_seeds", None)
    return out


def plot_data(curves: xr.DataArray) -> xr.Dataset:
    """What the figure plots, one variable per line kind (`{metric}` per run, or
    `{metric}_mean/_lo/_hi` per config), with the choices as attributes."""
    name = str(curves.name)
    base = curves.attrs.get("long_name", name)
    ds = xr.Dataset()
    if "stat" in curves.dims:
        centre = "IQM" if curves.attrs.get("center") == "iqm" else "mean"
        over = "seeds and episodes" if curves.attrs.get("pooled") else "seeds"
        what = {"mean": f"{centre} over {over}", "lo": "band lower edge", "hi": "band upper edge"}
        for stat in curves["stat"].values:
            var = curves.sel(stat=stat, drop=True)
            var.attrs = {"long_name": f"{base}, {what[str(stat)]}", "units": curves.attrs.get("units", "")}
            ds[f"{name}_{stat}"] = var
        ds.attrs["band"] = curves.attrs.get("band", "")
        ds.attrs["center"] = curves.attrs.get("center", "mean")
    else:
        ds[name] = curves.assign_attrs({"long_name": base, "units": curves.attrs.get("units", "")})
    for coord in ds.coords.values():
        coord.attrs.setdefault("long_name", str(coord.name))
        coord.attrs.setdefault("units", "1")
    ds.attrs.update({"metric": curves.attrs.get("metric", name), "smooth_window": curves.attrs.get("smooth", 1),
                     "skipped_runs": list(curves.attrs.get("skipped", []))})
    for v in ds.data_vars.values():
        v.attrs = {k: v.attrs[k] for k in ("long_name", "units")}
    return ds
