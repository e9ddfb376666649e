"""Mean and spread over seeds: the reduction every per-seed curve goes through."""

from __future__ import annotations

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

    `std` and `sem` use the sample standard deviation (ddof = 1; 0 with a single seed);
    percentiles interpolate linearly (numpy's default). NaNs are skipped. The result keeps
    `da`'s name and attributes and records the band and the number of seeds.
    """
    if band not in BANDS:
        raise ValueError(f"unknown band {band!r}; expected one of {list(BANDS)}")
    n = da.sizes[dim]
    mean = da.mean(dim, skipna=True)
    if band in ("std", "sem"):
        spread = da.std(dim, ddof=1 if n > 1 else 0, skipna=True)
        if band == "sem":
            spread = spread / np.sqrt(n)
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
