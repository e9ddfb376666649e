"""Centre and spread over seeds (or over any other dim): the reduction every curve goes through."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np
import xarray as xr

Band = Literal["std", "sem", "ci95", "minmax", "p10_90"]
Center = Literal["mean", "iqm"]

BANDS: dict[Band, str] = {
    "std": "mean ± 1 std",
    "sem": "mean ± standard error",
    "ci95": "95 % bootstrap CI of the mean",
    "minmax": "min – max",
    "p10_90": "10th – 90th percentile",
}
"""The spread bands, with the label the app shows for each (with the mean as centre)."""

CENTERS: dict[Center, str] = {"mean": "mean", "iqm": "IQM (interquartile mean)"}
"""The central statistics: the mean, or the rliable-style interquartile mean."""

STATS = ("mean", "lo", "hi")
"""Values of the `stat` dim a reduction returns (`mean` holds the chosen centre, IQM included)."""

IQM_TRIM = 0.25
"""`scipy.stats.trim_mean` cuts this fraction from each end: the mean of the middle 50 %."""
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
"""The bootstrap CI resamples with `numpy.random.default_rng(BOOTSTRAP_SEED)`: reproducible."""
_BATCH_VALUES = 2_000_000
"""At most this many resampled values are held at once (bootstrap `batch`)."""


def band_label(band: Band, center: Center = "mean") -> str:
    """What a band is called with this centre (`IQM ± 1 std`, `95 % bootstrap CI of the IQM`)."""
    return BANDS[band].replace("mean", "IQM") if center == "iqm" else BANDS[band]


def iqm(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean along `axis`: `scipy.stats.trim_mean(x, 0.25)` (rliable's IQM)."""
    from scipy import stats  # here, not at the top: 0.5 s of every page's cold start otherwise

    return stats.trim_mean(x, IQM_TRIM, axis=axis)


CENTER_FUNCS: dict[Center, Callable[..., np.ndarray]] = {"mean": np.mean, "iqm": iqm}


def bootstrap_ci(x: np.ndarray, center: Center = "mean") -> tuple[np.ndarray, np.ndarray]:
    """95 % percentile-bootstrap CI of the centre of each column of `x` (n, m), no NaNs.

    `scipy.stats.bootstrap`, seeded; a column of one value has the CI [value, value].
    """
    n, m = x.shape
    if n < 2:
        return x[0].astype(float), x[0].astype(float)
    from scipy import stats  # see iqm

    res = stats.bootstrap(
        (x,), CENTER_FUNCS[center], axis=0, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile", confidence_level=0.95, rng=np.random.default_rng(BOOTSTRAP_SEED),
        batch=max(1, _BATCH_VALUES // (n * m)),
    )
    return np.asarray(res.confidence_interval.low, float), np.asarray(res.confidence_interval.high, float)


def _by_pattern(
    x: np.ndarray, fn: Callable[[np.ndarray], tuple[np.ndarray, ...]], k: int
) -> tuple[np.ndarray, ...]:
    """Apply `fn` to the columns of `x` (n, m) grouped by which rows are not NaN, so that every
    call sees complete columns; `fn` returns `k` arrays of one value per column. All-NaN
    columns give NaN."""
    present = ~np.isnan(x)
    out = tuple(np.full(x.shape[1], np.nan) for _ in range(k))
    patterns, inverse = np.unique(present.T, axis=0, return_inverse=True)
    for i, rows in enumerate(patterns):
        cols = np.flatnonzero(inverse.ravel() == i)
        if not rows.any():
            continue
        for o, v in zip(out, fn(x[np.ix_(rows, cols)]), strict=True):
            o[cols] = v
    return out


def _over_dim(da: xr.DataArray, dim: str, fn: Callable[[np.ndarray], tuple[np.ndarray, ...]],
              k: int) -> list[xr.DataArray]:
    """`_by_pattern` on `da` with `dim` as the rows: `k` arrays shaped like `da` without `dim`."""
    rest = [d for d in da.dims if d != dim]
    x = da.transpose(dim, *rest).values.astype(float)
    flat = x.reshape(x.shape[0], -1)  # (n, every other point)
    template = da.isel({dim: 0}, drop=True).transpose(*rest)
    return [template.copy(data=v.reshape(x.shape[1:])) for v in _by_pattern(flat, fn, k)]


def reduce_seeds(da: xr.DataArray, band: Band, dim: str = "seed", center: Center = "mean") -> xr.DataArray:
    """Centre over `dim` and the band's lower/upper edge, stacked along a new `stat` dim.

    NaNs are skipped: every statistic uses the n values present at that point. The centre is
    the mean or the IQM (`iqm`). `std` and `sem` are centre ± the sample standard deviation
    (ddof = 1; 0 where a single value is present) and ± std / sqrt(n); `ci95` is the 95 %
    percentile-bootstrap CI of the centre (`bootstrap_ci`); percentiles interpolate linearly
    (numpy's default). Where no value is present all three are NaN. The result keeps `da`'s
    name and attributes and records the band, the centre and the size of `dim` (`n_seeds`).
    """
    if band not in BANDS:
        raise ValueError(f"unknown band {band!r}; expected one of {list(BANDS)}")
    if center not in CENTERS:
        raise ValueError(f"unknown centre {center!r}; expected one of {list(CENTERS)}")
    n = da.sizes[dim]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, as documented
        count = da.count(dim)
        mean = da.mean(dim, skipna=True)
        mid = mean if center == "mean" else _over_dim(da, dim, lambda x: (iqm(x),), 1)[0]
        if band in ("std", "sem"):
            ss = ((da - mean) ** 2).sum(dim, skipna=True)
            spread = xr.where(count > 1, np.sqrt(ss / (count - 1).clip(min=1)), 0.0).where(count > 0)
            if band == "sem":
                spread = spread / np.sqrt(count.clip(min=1))
            lo, hi = mid - spread, mid + spread
        elif band == "ci95":
            lo, hi = _over_dim(da, dim, lambda x: bootstrap_ci(x, center), 2)
        elif band == "minmax":
            lo, hi = da.min(dim, skipna=True), da.max(dim, skipna=True)
        else:
            q = da.quantile([0.1, 0.9], dim=dim, skipna=True)
            lo, hi = q.sel(quantile=0.1, drop=True), q.sel(quantile=0.9, drop=True)
        out = xr.concat([mid, lo, hi], dim=xr.Variable("stat", list(STATS)), coords="minimal")
        out = out.transpose("stat", *mean.dims).compute()
    out.name = da.name
    out.attrs = {**da.attrs, "band": band, "band_label": band_label(band, center), "center": center,
                 "center_label": CENTERS[center], "n_seeds": int(n)}
    return out


def stats_to_vars(curve: xr.DataArray, over: str = "seeds") -> xr.Dataset:
    """A `reduce_seeds` result as the variables an export holds: `{name}_mean` (the centre, its
    `long_name` saying mean or IQM `over` what), `{name}_lo`, `{name}_hi`; the band, the centre
    and the number of values reduced (`n_seeds`, if known) as attributes."""
    name = str(curve.name)
    base = curve.attrs.get("long_name", name)
    centre = "IQM" if curve.attrs.get("center") == "iqm" else "mean"
    what = {"mean": f"{centre} over {over}", "lo": "band lower edge", "hi": "band upper edge"}
    ds = xr.Dataset()
    for stat in curve["stat"].values:
        var = curve.sel(stat=stat, drop=True)
        var.attrs = {"long_name": f"{base}, {what.get(str(stat), stat)}", "units": curve.attrs.get("units", "")}
        ds[f"{name}_{stat}"] = var
    ds.attrs = {"band": curve.attrs.get("band", ""), "center": curve.attrs.get("center", "mean"),
                **({"n_seeds": curve.attrs["n_seeds"]} if "n_seeds" in curve.attrs else {})}
    return ds
