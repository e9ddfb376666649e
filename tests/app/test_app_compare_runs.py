"""Several runs on the study pages: seeds of a config pooled (against numpy on the stores read
with plain xarray), configs labelled, one colour per run on every page, multi-run exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from app.figures.style import key_colours
GALLERY = ("gallery/gallery_mbpo_s0.zarr.zip", "gallery/gallery_mbpo_s1.zarr.zip")
"""Two seeds of one config (the bundled algorithm gallery: MBPO on InvertedPendulum)."""


def _real_errors(tree: xr.DataTree, snapshot: int) -> np.ndarray:
    """(split, start, horizon) open-loop errors of one snapshot, NaN where the start is padding."""
    me = tree["model_error"].isel(snapshot=snapshot)
    err = me["error"].values.astype(float)
    return np.where((me["start_step"].values >= 0)[..., None], err, np.nan)


@pytest.mark.parametrize("band", ["std", "sem", "p10_90"])
def test_model_error_of_two_seeds_is_the_numpy_statistic_of_their_pooled_starts(band: str) -> None:
    from app.studies import compare
    from app.studies import model_error as me
    from engine.record import open_run

    from app_helpers import REPO, plain_tree

    paths = [REPO / "datasets" / p for p in GALLERY]
    trees = {p.name: open_run(p) for p in paths}
    groups = compare.config_groups(trees)
    assert list(groups.values()) == [[p.name for p in paths]]  # seeds 0 and 1: one config
    last = {n: me.usable_snapshots(t)[-1] for n, t in trees.items()}
    curves = me.runs_error_vs_horizon(trees, last, groups, band)  # type: ignore[arg-type]
    pooled = np.concatenate([_real_errors(plain_tree(p), last[p.name]) for p in paths], axis=1)
    n = np.isfinite(pooled).sum(1)  # (split, horizon)
    mean = np.nanmean(pooled, axis=1)
    if band == "p10_90":
        lo, hi = np.nanpercentile(pooled, 10, axis=1), np.nanpercentile(pooled, 90, axis=1)
    else:
        half = np.nanstd(pooled, axis=1, ddof=1) / (np.sqrt(n) if band == "sem" else 1)
        lo, hi = mean - half, mean + half
    line = curves.isel(line=0).transpose("stat", "split", "horizon")
    for stat, want in (("mean", mean), ("lo", lo), ("hi", hi)):
        np.testing.assert_allclose(line.sel(stat=stat).values, want, rtol=1e-5)
    assert int(line["n_runs"]) == 2 and (line["n_starts"].values == n[:, 0]).all()
    each = me.runs_error_vs_horizon(trees, last, {k: [k] for k in trees}, band)  # type: ignore[arg-type]
    for i, p in enumerate(paths):  # one run alone: the statistic of its own starts
        np.testing.assert_allclose(each.isel(line=i).sel(stat="mean").values,
                                   np.nanmean(_real_errors(plain_tree(p), last[p.name]), axis=1), rtol=1e-5)


def test_gradient_error_pools_the_seeds_of_runs_of_one_config() -> None:
    from app.studies import gradient_error as ge
    from engine.record import open_run

    from app_helpers import BUNDLED, plain_group

    tree = open_run(BUNDLED)
    l1 = plain_group(BUNDLED)["l1_error"].values  # (seed, dynamics, horizon)
    both = np.concatenate([l1, l1])  # the store twice: 2 x its seeds
    curve = ge.l1_vs_horizon(ge.pooled_tree([tree, tree]), "std")
    np.testing.assert_allclose(curve.sel(stat="mean").values, both.mean(0), rtol=1e-12)
    np.testing.assert_allclose(curve.sel(stat="hi").values, both.mean(0) + both.std(0, ddof=1), rtol=1e-12)
    assert curve.attrs["n_seeds"] == 2 * l1.shape[0]
    # the pooled std is not the store's own (ddof = 1 over n vs 2n values)
    assert not np.allclose(both.std(0, ddof=1), l1.std(0, ddof=1))


def test_a_run_has_one_colour_on_every_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two seeds of one config and a run of another, selected through the URL: the learning
    curves, the open-loop error (each run), the heatmap facet titles and the Q-accuracy panel
    titles give each run its config's `key_colour`."""
    from streamlit.testing.v1 import AppTest

    from app.library import DATASETS_ENV
    from app.studies import training
    from engine.record import open_run

    from app_helpers import MAIN, REPO, assert_clean, chart_layout, chart_traces

    stores = [*GALLERY, "gallery/gallery_mve_ddpg_s0.zarr.zip"]
    for s in stores:
        (tmp_path / Path(s).name).symlink_to(REPO / "datasets" / s)
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    trees = {Path(s).name: open_run(REPO / "datasets" / s) for s in stores}
    colours = key_colours(training.config_key(t) for t in trees.values())
    expected = {name.removesuffix(".zarr.zip"): colours[training.config_key(t)] for name, t in trees.items()}
    assert expected["gallery_mbpo_s0"] == expected["gallery_mbpo_s1"] != expected["gallery_mve_ddpg_s0"]

    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.query_params["run"] = [f"bundled:{Path(s).name}" for s in stores]
    at.run()
    at.switch_page("views/learning_curves.py").run()
    at.radio(key="lc_mode").set_value("each").run()
    assert_clean(at)
    learning = {t["meta"]: t["line"]["color"] for t in chart_traces(at, 0)}
    assert learning == expected

    at.switch_page("views/model_error.py").run()
    at.radio(key="me_mode").set_value("each").run()
    assert_clean(at)
    assert len(at.multiselect(key="me_runs").value) == 3
    lines = {t["meta"].split("/")[0]: t["line"]["color"] for t in chart_traces(at, 0) if t.get("meta")}
    assert lines == expected
    titles = {a["text"].split(" · ")[0]: a["font"]["color"] for a in chart_layout(at, 1)["annotations"]}
    assert titles == expected  # the heatmap: one row of facets per run, titled in its colour

    at.switch_page("views/q_accuracy.py").run()
    assert_clean(at)
    panels = {chart_layout(at, i)["title"]["text"].split(" · ")[0]: chart_layout(at, i)["title"]["font"]["color"]
              for i in range(len(at.get("plotly_chart")))}
    assert panels == expected
    table = at.dataframe[0].value  # the summary: one row per run, its MSE as on its panel
    assert list(table["run"]) == list(expected)


def test_the_multi_run_exports_round_trip_through_netcdf_and_csv() -> None:
    """Every panel's data with several runs (a `run`, `line` or `config` dim, per-run
    coordinates, the runs' identity as list attributes) is written and read back."""
    import io

    from app.export import data_csv, data_netcdf
    from app.studies import compare, generalization, model_comparison
    from app.studies import gradient_error as ge
    from app.studies import model_error as me
    from engine.record import open_run

    from app_helpers import BUNDLED, REPO

    def both(path: Path) -> dict[str, xr.DataTree]:
        return {"a": open_run(path), "b": open_run(path)}

    pair = {Path(p).name: open_run(REPO / "datasets" / p) for p in GALLERY}
    last = {n: me.usable_snapshots(t)[-1] for n, t in pair.items()}
    curves = me.runs_error_vs_horizon(pair, last, compare.config_groups(pair), "std")
    gen = {n: generalization.curves(t) for n, t in both(REPO / "datasets" / "generalization_halfcheetah.zarr.zip").items()}
    mc = both(REPO / "datasets" / "model_comparison.zarr.zip")
    grads = both(BUNDLED)
    pooled = ge.pooled_tree(list(grads.values()))
    panels = [
        me.curves_plot_data(curves).assign_attrs(compare.runs_attrs(pair, step=1)),
        compare.stack_runs({n: me.heatmap_plot_data(me.error_heatmap(t)) for n, t in pair.items()}),
        compare.stack_runs({n: generalization.error_plot_data(ds) for n, ds in gen.items()}),
        compare.stack_runs({n: model_comparison.mse_vs_stage(t, 3).to_dataset(name="mse") for n, t in mc.items()}),
        ge.l1_plot_data(ge.by_config({"x": ge.l1_vs_horizon(pooled, "std"), "y": ge.l1_vs_horizon(grads["a"], "std")},
                                     {"x": "kx", "y": "ky"})).assign_attrs(compare.runs_attrs(grads)),
    ]
    for data in panels:
        back = xr.open_dataset(io.BytesIO(data_netcdf(data)), engine="h5netcdf").load()
        assert set(back.data_vars) == set(data.data_vars)
        for name in data.data_vars:
            np.testing.assert_allclose(back[name].values, data[name].values.astype(float), equal_nan=True)
        assert data_csv(data).count(b"\n") > 1
    assert panels[0].attrs["runs"] == list(pair) and len(panels[0].attrs["run_id"]) == 2
    assert panels[1].sizes["run"] == panels[2].sizes["run"] == panels[3].sizes["run"] == 2


def test_generalization_slopes_of_seeds_are_the_numpy_mean_and_band_per_data_size() -> None:
    """Local slopes of three runs, two seeds of one config: per data size the centre and std
    band of the seeds' slopes; a probe without a slope (NaN) or a data size only one seed has
    uses the seeds that have it."""
    from app.studies import generalization as gen

    def slopes(sizes: list[int], values: list[float]) -> xr.Dataset:
        return xr.Dataset({"slope": ("probe", np.array(values)), "data_size": ("probe", np.array(sizes))},
                          coords={"probe": np.arange(len(sizes))})

    runs = {"s0": slopes([100, 200, 400], [0.5, 0.25, np.nan]), "s1": slopes([100, 200, 400, 800], [0.7, 0.45, 0.1, 0.2]),
            "other": slopes([100], [2.0])}
    out = gen.config_slopes(runs, {"cfg": ["s0", "s1"], "alone": ["other"]}, {"cfg": "k", "alone": "j"}, "std")
    cfg = out.sel(config="cfg")
    np.testing.assert_allclose(cfg.sel(stat="mean").values, [0.6, 0.35, 0.1, 0.2])
    half = np.array([np.std([0.5, 0.7], ddof=1), np.std([0.25, 0.45], ddof=1), 0.0, 0.0])
    np.testing.assert_allclose(cfg.sel(stat="hi").values, cfg.sel(stat="mean").values + half)
    assert out["n_seeds"].values.tolist() == [2, 1] and out["config_key"].values.tolist() == ["k", "j"]
    assert out.sel(config="alone", stat="mean").values.tolist()[0] == 2.0
    assert np.isnan(out.sel(config="alone", stat="mean").values[1:]).all()


def test_runs_of_a_study_are_grouped_and_labelled_by_algorithm_and_env(tmp_path: Path) -> None:
    """Study configs (no `algo`/`env_id` keys) take their label from the run's attributes; the
    same store twice is one config, another store another."""
    from app.studies import compare
    from engine.record import open_run

    from app_helpers import BUNDLED
    from app_synthetic import write_store

    write_store(tmp_path / "synth.zarr")
    trees = {"a": open_run(BUNDLED), "b": open_run(BUNDLED), "c": open_run(tmp_path / "synth.zarr")}
    labels = {name: f"{t.attrs['algorithm']} · {t.attrs['env_id']}" for name, t in trees.items()}
    assert compare.config_groups(trees) == {labels["c"]: ["c"], labels["a"]: ["a", "b"]}
    assert list(compare.group_keys(trees).values()) == [compare.config_keys(trees)[n] for n in ("c", "a")]
