"""Compare: the centre (mean, IQM) and bands (std, standard error, 95 % bootstrap CI) over seeds,
each checked against an independent numpy computation, and the colour of a run or config."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from app.studies import spread
from app.figures.style import KEY_PALETTE, key_colour, key_colours, rgba
from app.studies.spread import BOOTSTRAP_RESAMPLES, band_label, bootstrap_ci, reduce_seeds


def _iqm_by_hand(x: np.ndarray) -> np.ndarray:
    """Mean of the middle values along axis 0: floor(n/4) cut from each end (rliable's IQM)."""
    n = x.shape[0]
    cut = int(np.floor(0.25 * n))
    return np.sort(x, axis=0)[cut : n - cut].mean(0)


def _bootstrap_by_hand(x: np.ndarray, stat, n: int, seed: int = 123) -> tuple[float, float]:  # noqa: ANN001
    """Percentile bootstrap of `stat` over the values `x` (1-D), with its own generator."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n, len(x)))
    boot = stat(x[idx], axis=1)
    return float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


@pytest.fixture
def seeds() -> xr.DataArray:
    rng = np.random.default_rng(7)
    return xr.DataArray(rng.lognormal(size=(12, 5)), dims=("seed", "x"), name="ret", attrs={"units": "1"})


def test_iqm_matches_sorting_by_hand(seeds: xr.DataArray) -> None:
    out = reduce_seeds(seeds, "minmax", center="iqm")
    np.testing.assert_allclose(out.sel(stat="mean"), _iqm_by_hand(seeds.values), rtol=1e-12)
    assert not np.allclose(out.sel(stat="mean"), seeds.values.mean(0))  # skewed data: IQM != mean
    assert out.attrs["center"] == "iqm"


@pytest.mark.parametrize("center", ["mean", "iqm"])
def test_std_and_sem_bands_surround_the_centre(seeds: xr.DataArray, center: str) -> None:
    x = seeds.values
    mid = x.mean(0) if center == "mean" else _iqm_by_hand(x)
    for band, half in (("std", x.std(0, ddof=1)), ("sem", x.std(0, ddof=1) / np.sqrt(len(x)))):
        out = reduce_seeds(seeds, band, center=center)  # type: ignore[arg-type]
        np.testing.assert_allclose(out.sel(stat="lo"), mid - half, rtol=1e-12)
        np.testing.assert_allclose(out.sel(stat="hi"), mid + half, rtol=1e-12)
    assert band_label("std", center) == ("IQM ± 1 std" if center == "iqm" else "mean ± 1 std")  # type: ignore[arg-type]


@pytest.mark.parametrize(("center", "stat"), [("mean", np.mean), ("iqm", _iqm_by_hand)])
def test_bootstrap_ci_matches_a_numpy_bootstrap(
    seeds: xr.DataArray, center: str, stat, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    # 50 000 resamples on both sides: the Monte Carlo error of the edges is then a few % of a
    # standard error, so the tolerance checks the method (statistic, percentiles, level)
    monkeypatch.setattr(spread, "BOOTSTRAP_RESAMPLES", 50_000)
    out = reduce_seeds(seeds, "ci95", center=center)  # type: ignore[arg-type]
    scale = seeds.values.std(0, ddof=1) / np.sqrt(12)  # the CI's half width is about 2 of these
    for j in range(seeds.sizes["x"]):
        x = seeds.values[:, j]
        if center == "iqm":
            lo, hi = _bootstrap_by_hand(x, lambda a, axis: _iqm_by_hand(np.moveaxis(a, axis, 0)), n=50_000)
        else:
            lo, hi = _bootstrap_by_hand(x, stat, n=50_000)
        assert abs(float(out.sel(stat="lo")[j]) - lo) < 0.06 * scale[j]
        assert abs(float(out.sel(stat="hi")[j]) - hi) < 0.06 * scale[j]
        assert float(out.sel(stat="lo")[j]) < float(out.sel(stat="mean")[j]) < float(out.sel(stat="hi")[j])


def test_bootstrap_is_seeded_and_skips_nans(seeds: xr.DataArray) -> None:
    a, b = reduce_seeds(seeds, "ci95"), reduce_seeds(seeds, "ci95")
    np.testing.assert_array_equal(a.values, b.values)  # reproducible
    holed = seeds.copy()
    holed[:4, 1] = np.nan  # column 1 has 8 values
    holed[:, 3] = np.nan  # column 3 has none
    holed[1:, 4] = np.nan  # column 4 has one
    out = reduce_seeds(holed, "ci95")
    lo, hi = bootstrap_ci(seeds.values[4:, 1:2])
    np.testing.assert_allclose(out.sel(stat="lo")[1], lo[0], rtol=1e-12)  # the 8 present values only
    np.testing.assert_allclose(out.sel(stat="hi")[1], hi[0], rtol=1e-12)
    assert np.isnan(out.sel(x=3)).all()
    np.testing.assert_allclose(out.sel(x=4), seeds.values[0, 4])  # one value: a point, no band
    np.testing.assert_allclose(out.sel(stat="mean", x=0), seeds.values[:, 0].mean())
    assert BOOTSTRAP_RESAMPLES >= 1000


def test_key_colours_are_deterministic_and_distinct() -> None:
    keys = [f"config-{i}" for i in range(12)]
    first = key_colours(keys)
    assert key_colours(list(reversed(keys))) == first  # independent of order
    assert len(set(first.values())) == len(keys)  # distinct while the palette lasts
    assert all(c in KEY_PALETTE for c in first.values())
    assert key_colours(["config-3"])["config-3"] == key_colour("config-3")  # alone: its own colour


def test_a_config_has_its_key_colour_in_both_modes() -> None:
    from app.figures.learning_curves import learning_curve_figure
    from app.studies import learning_curves as lc
    from app.studies import training
    from engine.record import open_run

    from app_helpers import REPO

    tree = open_run(REPO / "datasets" / "mve_ddpg_halfcheetah.zarr.zip")
    expected = key_colour(training.config_key(tree))
    curves = lc.run_curves({"a": tree, "b": tree}, lc.EVAL_RETURN)
    each = learning_curve_figure(curves)
    aggregated = learning_curve_figure(lc.config_curves(curves, "ci95"))
    assert {t.line.color for t in each.data} == {expected}
    assert [t.line.color for t in aggregated.data if t.fill != "toself"] == [expected]
    assert [t.fillcolor for t in aggregated.data if t.fill == "toself"] == [rgba(expected, 0.18)]  # its band

