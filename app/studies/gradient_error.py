"""Study 4: MAAC policy-gradient error on the double integrator (MAAC Fig. 3, Lemma 4.1).

Pure functions from an opened run (`xarray.DataTree`) to the arrays the figures draw. All
curves are reduced over seeds with `reduce_seeds`, so they carry a `stat` dim (mean, lo, hi).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from app.studies.spread import Band, reduce_seeds, stats_to_vars

KIND = "gradient_error"
"""The `kind` root attribute of the runs this study reads."""
GROUP = "gradient_error"
EXACT_DYNAMICS = "true"
"""The `dynamics` label of rollouts through the true system: its model error eps_f is 0."""


def gradient_error_group(tree: xr.DataTree) -> xr.Dataset:
    """The run's `gradient_error` group; `ValueError` if the run has none."""
    if GROUP not in tree.children:
        raise ValueError(f"this run has no {GROUP!r} group (kind {tree.attrs.get('kind')!r})")
    return tree[GROUP].to_dataset()


def n_seeds(tree: xr.DataTree) -> int:
    """Seeds committed so far (0 if the group is not there yet)."""
    return int(tree[GROUP].sizes.get("seed", 0)) if GROUP in tree.children else 0


def pooled_tree(trees: Sequence[xr.DataTree]) -> xr.DataTree:
    """The seeds of several runs (of one config) as one run: their `gradient_error` groups
    concatenated along `seed` (renumbered 0..n-1), so every function here reduces over all of
    them. The first run's root attributes are kept."""
    if len(trees) == 1:
        return trees[0]
    parts = [gradient_error_group(t).drop_vars("seed") for t in trees]
    ds = xr.concat(parts, dim="seed", data_vars="minimal", coords="minimal", compat="override")
    ds = ds.assign_coords(seed=np.arange(ds.sizes["seed"]))
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=dict(trees[0].attrs)), GROUP: ds})


def by_config(parts: Mapping[str, xr.DataArray], keys: Mapping[str, str]) -> xr.DataArray:
    """One reduction per config (label -> array) stacked along a `config` dim, with each
    config's key (`config_key`, its colour) and seed count (`n_seeds`) as coordinates."""
    first = next(iter(parts.values()))
    out = xr.concat(list(parts.values()), dim=xr.Variable("config", list(parts)), join="outer",
                    coords="minimal", compat="override", combine_attrs="override")
    coords = {"config_key": ("config", [keys[c] for c in parts])}
    if "n_seeds" in first.attrs:
        coords["n_seeds"] = ("config", [int(p.attrs["n_seeds"]) for p in parts.values()])
    out = out.assign_coords(coords)
    if len(parts) > 1:
        out.attrs.pop("n_seeds", None)  # differs per config: the coordinate says it
    return out


def l1_vs_horizon(tree: xr.DataTree, band: Band) -> xr.DataArray:
    """L1 gradient error vs H per dynamics: (stat, dynamics, horizon)."""
    return reduce_seeds(gradient_error_group(tree)["l1_error"], band)


def est_grad_vs_horizon(tree: xr.DataTree, band: Band) -> xr.DataArray:
    """MAAC gradient estimate vs H per dynamics and parameter: (stat, dynamics, horizon, param)."""
    return reduce_seeds(gradient_error_group(tree)["est_grad"], band)


def true_gradient(tree: xr.DataTree) -> xr.DataArray:
    """Analytic gradient dJ/dK per parameter, mean over seeds: (param)."""
    tg = gradient_error_group(tree)["true_grad"]
    return tg.mean("seed").compute().assign_attrs(tg.attrs)


def seed_mean(tree: xr.DataTree, name: str) -> xr.DataArray:
    """Mean over seeds of a per-seed scalar (`eps_f`, `eps_q`), with its std as `std` attr."""
    da = gradient_error_group(tree)[name].compute()
    n = da.sizes["seed"]
    std = float(da.std("seed", ddof=1 if n > 1 else 0))
    return da.mean("seed").assign_attrs({**da.attrs, "std": std, "n_seeds": int(n)})


def bound_unscaled(tree: xr.DataTree) -> xr.DataArray:
    """Lemma 4.1 bound c1(H) eps_f + c2(H) eps_Q, mean over seeds: (dynamics, horizon).

    eps_f is taken as 0 for the exact dynamics: only the critic's error enters there.
    """
    ds = gradient_error_group(tree)
    eps_f = ds["eps_f"] * (ds["dynamics"] != EXACT_DYNAMICS)
    raw = (ds["bound_c1"] * eps_f + ds["bound_c2"] * ds["eps_q"]).mean("seed")
    out = raw.transpose("dynamics", "horizon").compute()
    out.name = "bound_raw"
    out.attrs = {"long_name": "Lemma 4.1 bound c1(H) eps_f + c2(H) eps_Q (unscaled)", "units": "1"}
    return out


def bound_shape(tree: xr.DataTree, measured_mean: xr.DataArray) -> xr.DataArray:
    """The bound, scaled per dynamics to equal `measured_mean` at the first horizon (H = 0).

    c1 and c2 hold unknown Lipschitz constants, so only the bound's shape in H is meaningful.
    A dynamics whose unscaled bound is 0 or not finite at the first horizon gets NaN.
    """
    raw = bound_unscaled(tree)
    h0 = raw["horizon"].values.min()
    at0 = raw.sel(horizon=h0)
    scale = (measured_mean.sel(horizon=h0) / at0).where((at0 > 0) & np.isfinite(at0))
    out = (raw * scale).transpose("dynamics", "horizon").reset_coords(drop=True).compute()
    out.name = "bound_shape"
    out.attrs = {
        "long_name": f"Lemma 4.1 bound shape, scaled to the measured mean at H = {h0}",
        "units": measured_mean.attrs.get("units", ""),
    }
    return out


def run_attrs(tree: xr.DataTree, **extra: Any) -> dict[str, Any]:
    """Provenance attributes for exported data: which run, which choices."""
    keys = ("run_id", "kind", "env_id", "algorithm", "seed", "engine_version")
    return {**{k: tree.attrs[k] for k in keys if k in tree.attrs}, **extra}


def l1_plot_data(curve: xr.DataArray, bound: xr.DataArray | None = None) -> xr.Dataset:
    """What panel 1 plots, one variable per line: l1_error_{mean,lo,hi} and the bound."""
    ds = stats_to_vars(curve)
    if bound is not None:
        ds["bound_shape"] = bound
    return ds


def gradients_plot_data(curve: xr.DataArray, true_grad: xr.DataArray) -> xr.Dataset:
    """What panel 2 plots: est_grad_{mean,lo,hi} per dynamics/H/param and the true gradient."""
    ds = stats_to_vars(curve)
    ds["true_grad"] = true_grad
    return ds
