"""Mean and spread over seeds (or over any other dim): the reduction every curve goes through."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import xarray as xr

Band = Literal["std", "sem", "minmax", "p10_90"]

BANDS: dict[Band, str] = {
    "std": "mean ± 1 std",
    "sem": "mean ± standard error",
    "minmax": "min – max",
    "p10_90": "10th – 90th percentile",
}
"""The spread bands, with the label the app shows for each."""

STATS = ("mean", "lo", "hi")
"""Values of the `stat` dim a reduction returns."""


def reduce_seeds(da: xr.DataArray, band: Band, dim: str = "seed") -> xr.DataArray:
    """Mean over `dim` and the band's lower/upper edge, stacked along a new `stat` dim.

    NaNs are skipped: every statistic uses the n values present at that point. `std` and `sem`
    use the sample standard deviation (ddof = 1; 0 where a single value is present) and
    `sem` = std / sqrt(n); percentiles interpolate linearly (numpy's default). Where no value
    is present all three are NaN. The result keeps `da`'s name and attributes and records the
    band and the size of `dim` (`n_seeds`).
    """
    if band not in BANDS:
        raise ValueError(f"unknown band {band!r}; expected one of {list(BANDS)}")
    n = da.sizes[dim]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, as documented
        count = da.count(dim)
        mean = da.mean(dim, skipna=True)
        if band in ("std", "sem"):
            ss = ((da - mean) ** 2).sum(dim, skipna=True)
            spread = xr.where(count > 1, np.sqrt(ss / (count - 1).clip(min=1)), 0.0).where(count > 0)
            if band == "sem":
                spread = spread / np.sqrt(count.clip(min=1))
            lo, hi = mean - spread, mean + spread
        elif band == "minmax":
            lo, hi = da.min(dim, skipna=True), da.max(dim, skipna=True)
        else:
            q = da.quantile([0.1, 0.9], dim=dim, skipna=True)
            lo, hi = q.sel(quantile=0.1, drop=True), q.sel(quantile=0.9, drop=True)
        out = xr.concat([mean, lo, hi], dim=xr.Variable("stat", list(STATS)), coords="minimal")
        out = out.transpose("stat", *mean.dims).compute()
    out.name = da.name
    out.attrs = {**da.attrs, "band": band, "band_label": BANDS[band], "n_seeds": int(n)}
    return out
