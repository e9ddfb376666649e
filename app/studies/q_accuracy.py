"""Study 2: critic accuracy, predicted Q vs true discounted return (MVE Fig. 5, DDPG Fig. 3).

Pure functions from an opened training run (`xarray.DataTree`, group `critic`) to the arrays
the figure draws. At each snapshot the engine ran evaluation episodes with the current policy
and recorded, for up to `sample` visited pairs, the critic's `q_pred` and the discounted
Monte-Carlo return `return_true` to the episode's end; `censored` marks pairs of an episode cut
by the time limit (their return is a truncated sum), `episode` = -1 marks padding.

**Normalisation.** Both quantities are shifted and scaled by the same two numbers, taken from
the true returns of the samples used (after padding and, if chosen, censored samples are
dropped) at that snapshot:

    x' = (return_true - mu) / sigma,   y' = (q_pred - mu) / sigma,
    mu = mean(return_true),  sigma = std(return_true) (ddof = 0)

The same affine map on both axes keeps the unity line y = x the unity line, and removes the
reward scale so runs with different rewards compare. If sigma is 0 or not finite (fewer than
two distinct returns) sigma = 1 is used (only the shift applies) and `scale_fallback` is set.
Bias, MSE and correlation are computed on the normalised values: bias' = bias / sigma,
MSE' = MSE / sigma^2, and the Pearson correlation is unchanged by the map.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from app.studies.compare import at_or_before
from app.studies.training import group_dataset, has_group

GROUP = "critic"
QUANTITIES = ("return_true", "q_pred")
SUMMARY = ("bias", "mse", "corr", "n_used", "n_samples", "n_censored")
SUMMARY_LABELS = {
    "bias": "bias",
    "mse": "MSE",
    "corr": "Pearson r",
}
SUMMARY_HELP = {
    "bias": "mean of (Q̂' − G') over the samples used, normalised values (> 0: overestimation)",
    "mse": "mean of (Q̂' − G')² over the samples used, normalised values",
    "corr": "Pearson correlation of Q̂ and G (unchanged by the normalisation)",
    "n_used": "samples used",
    "n_samples": "samples",
    "n_censored": "censored",
}
TAIL_TOLERANCE = 0.01
"""A censored sample is excluded when the discount weight of what its return misses,
gamma^(steps to the cut), exceeds this (with gamma = 0.99: the last 458 steps before a cut)."""
CENSORED_REASON = (
    "A censored sample comes from an evaluation episode cut by the time limit (or the "
    "evaluation step limit) rather than ended by the environment: its 'true' return is a "
    "truncated sum that misses the rewards after the cut, so it is not the critic's target. The "
    "missing part weighs gamma^(steps to the cut) of the whole discounted value; samples where "
    f"that exceeds {TAIL_TOLERANCE:.0%} are excluded, earlier samples of a cut episode are kept "
    "(their return is exact to within that)."
)


def available(tree: xr.DataTree) -> bool:
    """Whether the run has at least one critic snapshot."""
    return has_group(tree, GROUP)


def group(tree: xr.DataTree) -> xr.Dataset:
    """The run's `critic` group; `ValueError` if it has none."""
    return group_dataset(tree, GROUP)


def env_steps(tree: xr.DataTree) -> np.ndarray:
    """Environment steps of the run's critic snapshots, in snapshot order."""
    return group(tree)["env_step"].values.astype(int)


def snapshot_at(tree: xr.DataTree, env_step: int | None = None) -> int:
    """Position of the last snapshot at or before `env_step` (the first one if all are later;
    the last one if `env_step` is None)."""
    try:
        return at_or_before(env_steps(tree), env_step)
    except ValueError:
        raise ValueError("this run has no critic snapshot yet") from None


def normalized_samples(tree: xr.DataTree, snapshot: int, *, exclude_censored: bool = True) -> xr.DataArray:
    """The samples of one snapshot (by position), normalised: (quantity, sample).

    `quantity` is (return_true, q_pred). Only real samples (episode >= 0, both values finite)
    are kept, and censored ones (`biased_censored`) are dropped if `exclude_censored`.
    Coordinates of `sample`:
    `censored`, `t`, `episode`. Attributes: `shift` (mu), `scale` (sigma), `scale_fallback`,
    `env_step`, `snapshot`, `n_samples` (real samples), `n_censored` (among them), `n_used`,
    `exclude_censored`.
    """
    ds = group(tree).isel(snapshot=snapshot).load()
    q, g = ds["q_pred"].values.astype(float), ds["return_true"].values.astype(float)
    censored = biased_censored(tree, ds)
    real = (ds["episode"].values >= 0) & np.isfinite(q) & np.isfinite(g)
    used = real & ~censored if exclude_censored else real
    gu, qu = g[used], q[used]
    mu = float(gu.mean()) if gu.size else 0.0
    sigma = float(gu.std()) if gu.size else 0.0
    fallback = not (np.isfinite(sigma) and sigma > 0)
    if fallback:
        sigma = 1.0
    values = np.stack([(gu - mu) / sigma, (qu - mu) / sigma])
    idx = np.flatnonzero(used)
    out = xr.DataArray(
        values, dims=("quantity", "sample"),
        coords={"quantity": list(QUANTITIES), "sample": ds["sample"].values[idx],
                "censored": ("sample", censored[idx]), "t": ("sample", ds["t"].values[idx]),
                "episode": ("sample", ds["episode"].values[idx])},
        name="normalized_value",
    )
    out.attrs = {
        "long_name": "value normalised by the true returns' mean and std", "units": "1",
        "shift": mu, "scale": sigma, "scale_fallback": bool(fallback),
        "units_raw": ds["return_true"].attrs.get("units", ""),
        "env_step": int(ds["env_step"]), "snapshot": int(ds["snapshot"]),
        "n_samples": int(real.sum()), "n_censored": int((real & censored).sum()),
        "n_used": int(used.sum()), "exclude_censored": bool(exclude_censored),
    }
    return out


def biased_censored(tree: xr.DataTree, ds: xr.Dataset) -> np.ndarray:
    """(sample,) bool: censored samples whose missing tail weighs more than TAIL_TOLERANCE.

    The weight is gamma^(L - t), L the sample's evaluation-episode length (the `eval` group at
    the same env step), gamma the agent's discount from the run's config. Without either, every
    censored sample counts as biased (the strict rule).
    """
    censored = ds["censored"].values.astype(bool)
    gamma = _gamma(tree)
    if gamma is None or not has_group(tree, "eval") or not censored.any():
        return censored
    ev = group_dataset(tree, "eval")
    at = np.flatnonzero(ev["env_step"].values == int(ds["env_step"]))
    if len(at) == 0:
        return censored
    lengths = ev["length"].isel(snapshot=int(at[0])).values  # (eval episode,)
    episode, t = ds["episode"].values, ds["t"].values
    ok = (episode >= 0) & (episode < len(lengths))
    remaining = np.where(ok, lengths[np.clip(episode, 0, len(lengths) - 1)] - t, 0)
    return censored & (~ok | (gamma ** remaining.astype(float) > TAIL_TOLERANCE))


def _gamma(tree: xr.DataTree) -> float | None:
    import json

    try:
        gamma = json.loads(tree.attrs.get("config", "{}")).get("agent", {}).get("gamma")
    except (ValueError, AttributeError):
        return None
    return float(gamma) if isinstance(gamma, (int, float)) and 0 < gamma < 1 else None


def summary(samples: xr.DataArray) -> xr.DataArray:
    """Bias (mean of q' − g'), MSE (mean of (q' − g')²) and Pearson correlation of the
    normalised samples, and the sample counts: (stat). Statistics of fewer than one sample (two
    for the correlation, or zero variance) are NaN."""
    g, q = samples.sel(quantity="return_true").values, samples.sel(quantity="q_pred").values
    diff = q - g
    n = diff.size
    bias = float(diff.mean()) if n else np.nan
    mse = float((diff**2).mean()) if n else np.nan
    corr = np.nan
    if n >= 2 and g.std() > 0 and q.std() > 0:
        corr = float(np.corrcoef(g, q)[0, 1])
    values = [bias, mse, corr, samples.attrs.get("n_used", n), samples.attrs.get("n_samples", n),
              samples.attrs.get("n_censored", 0)]
    out = xr.DataArray(np.asarray(values, float), dims="stat", coords={"stat": list(SUMMARY)}, name="summary")
    out.attrs = {"long_name": "summary of normalised Q vs true return", "units": "1"}
    return out


def summary_record(stats: xr.DataArray) -> dict[str, float | int]:
    """`summary` as a table row: bias, MSE, Pearson r (floats) and the sample counts (ints),
    keyed by what the page calls them."""
    return {SUMMARY_LABELS.get(s, SUMMARY_HELP[s]): (int if s.startswith("n_") else float)(stats.sel(stat=s))
            for s in SUMMARY}


def common_range(samples: list[xr.DataArray], pad: float = 0.05) -> tuple[float, float] | None:
    """One axis range covering both quantities of all `samples` (so side-by-side panels share
    their axes and each panel is square around the unity line), padded by `pad` of its width."""
    vals = np.concatenate([s.values.ravel() for s in samples]) if samples else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return None
    lo, hi = float(vals.min()), float(vals.max())
    width = (hi - lo) or 1.0
    return lo - pad * width, hi + pad * width


def plot_data(samples: xr.DataArray, stats: xr.DataArray) -> xr.Dataset:
    """What one panel plots: the normalised pairs (and their raw values) and the summary."""
    ds = xr.Dataset({
        "return_true_normalized": samples.sel(quantity="return_true", drop=True).assign_attrs(
            long_name="true discounted return, normalised", units="1"),
        "q_pred_normalized": samples.sel(quantity="q_pred", drop=True).assign_attrs(
            long_name="predicted Q, normalised", units="1"),
    })
    mu, sigma = samples.attrs["shift"], samples.attrs["scale"]
    units = samples.attrs.get("units_raw", "")
    ds["return_true"] = (ds["return_true_normalized"] * sigma + mu).assign_attrs(
        long_name="true discounted return", units=units)
    ds["q_pred"] = (ds["q_pred_normalized"] * sigma + mu).assign_attrs(long_name="predicted Q", units=units)
    ds["censored"] = ds["censored"].astype("int8")
    ds = ds.reset_coords(["censored", "t", "episode"])
    for name, long in (("censored", "episode cut by the time limit"), ("t", "time step within the episode"),
                       ("episode", "evaluation episode"), ("sample", "evaluated state-action pair")):
        ds[name].attrs = {"long_name": long, "units": "1"}
    for stat in stats["stat"].values:
        ds.attrs[str(stat)] = float(stats.sel(stat=stat))
    keep = ("shift", "scale", "scale_fallback", "env_step", "snapshot", "exclude_censored")
    ds.attrs.update({k: samples.attrs[k] for k in keep})
    ds.attrs["normalization"] = "(value - mean(return_true)) / std(return_true), over the samples used"
    return ds
