"""The rollout viewer on real training runs: what it draws is the stored prediction against the
true trajectory read (independently, with plain xarray) from the replay, with the ensemble's
spread as a band; start labels; controls; export; a store written before predictions existed."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from app_helpers import assert_clean, by_meta, chart_layout, chart_traces, floats, page, plain_tree

from app.library import DATASETS_ENV

PAGE = "views/rollout.py"


@pytest.fixture(scope="module")
def ensemble_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one short MBPO run (a 3-member ensemble, 2 elites) trained by the engine
    (~40 s), with small networks: its predictions carry a spread."""
    from engine.train.config import TrainConfig
    from engine.train.run import train

    out = tmp_path_factory.mktemp("rollout")
    cfg = TrainConfig(algo="mbpo", env_id="InvertedPendulum-v5", steps=300, start_steps=100, model_start_steps=150,
                      snapshot_interval=100, model_fit_interval=150, commit_interval=100, model_error_horizon=8,
                      model_error_starts=12, holdout_block=16, holdout_fraction=0.25, eval_episodes=2,
                      eval_max_steps=200, critic_samples=64, agent={"hidden": 32, "batch_size": 32},
                      model_config={"hidden": 32, "layers": 2, "members": 3, "elites": 2})
    train(cfg, out / "mbpo.zarr")
    shutil.rmtree(out / "mbpo.zarr.ckpt")
    return out


@pytest.fixture
def ensemble_run(monkeypatch: pytest.MonkeyPatch, ensemble_folder: Path) -> Path:
    monkeypatch.setenv(DATASETS_ENV, str(ensemble_folder))
    return ensemble_folder / "mbpo.zarr"


def _expected(store: Path, snapshot: int, split: str, start: int) -> dict[str, np.ndarray]:
    """The start's trajectories from the store read plainly: horizon 0 is obs[step]."""
    tree = plain_tree(store)
    me, replay = tree["model_error"], tree["replay"]
    at = {"snapshot": snapshot, "split": split, "start": start}
    step = int(me["start_step"].sel(at))
    H = me.sizes["horizon"]
    head = replay["obs"].values[step][None]
    return {"step": step, "true": np.concatenate([head, replay["next_obs"].values[step:step + H]]),
            "predicted": np.concatenate([head, me["prediction"].sel(at).values]),
            "spread": np.concatenate([np.zeros_like(head), me["prediction_spread"].sel(at).values])}


def _selected(at) -> tuple[int, str, int]:  # noqa: ANN001
    return (at.selectbox(key="ro_snapshot").value, at.radio(key="ro_split").value, at.selectbox(key="ro_start").value)


def _check_chart(at, store: Path, dims: list[int], band: bool) -> None:  # noqa: ANN001
    want = _expected(store, *_selected(at))
    traces = chart_traces(at, 0)
    assert {t["meta"].split("/")[0] for t in traces} == {str(d) for d in dims}
    for d in dims:
        np.testing.assert_allclose(floats(by_meta(traces, f"{d}/true")["y"]), want["true"][:, d], rtol=1e-6)
        pred = want["predicted"][:, d]
        np.testing.assert_allclose(floats(by_meta(traces, f"{d}/predicted")["y"]), pred, rtol=1e-6)
        spread = [t for t in traces if t["meta"] == f"{d}/spread"]
        if not band:
            assert not spread
            continue
        poly = floats(spread[0]["y"])  # upper edge forward, lower edge back
        n = len(pred)
        np.testing.assert_allclose(poly[:n], pred + want["spread"][:, d], rtol=1e-6)
        np.testing.assert_allclose(poly[n:][::-1], pred - want["spread"][:, d], rtol=1e-6)
        assert (want["spread"][1:, d] > 0).all()


def test_page_draws_the_stored_prediction_against_the_replay(ensemble_run: Path) -> None:
    at = page(PAGE)
    assert_clean(at)
    assert not at.error and not at.info
    me = plain_tree(ensemble_run)["model_error"]
    assert at.selectbox(key="ro_snapshot").value == int(me["snapshot"].values[-1])  # the newest by default
    dims = list(range(me.sizes["obs_dim"]))  # InvertedPendulum: 4, all shown by default
    assert at.multiselect(key="ro_dims").value == dims
    _check_chart(at, ensemble_run, dims, band=True)
    assert "replay step" in chart_layout(at, 0)["title"]["text"]


def test_start_labels_name_the_replay_step_episode_and_time_step(ensemble_run: Path) -> None:
    at = page(PAGE)
    snapshot, split, _ = _selected(at)
    tree = plain_tree(ensemble_run)
    rows = tree["model_error"]["start_step"].sel(snapshot=snapshot, split=split).values
    episode = tree["replay"]["episode"].values
    labels = []
    for step in rows[rows >= 0]:
        ep = episode[step]
        t = step - np.flatnonzero(episode == ep).min()
        labels.append(f"replay step {step} · episode {ep} · t = {t}")
    assert at.selectbox(key="ro_start").options == labels


def test_controls_choose_split_start_dimensions_and_band(ensemble_run: Path) -> None:
    at = page(PAGE)
    splits = at.radio(key="ro_split").options
    assert splits == ["holdout", "test"]
    at.radio(key="ro_split").set_value("test").run()
    rows = plain_tree(ensemble_run)["model_error"]["start_step"].sel(snapshot=_selected(at)[0], split="test").values
    last = int(np.flatnonzero(rows >= 0)[-1])
    at.selectbox(key="ro_start").set_value(last).run()
    at.multiselect(key="ro_dims").set_value([1, 3]).run()
    assert_clean(at)
    assert _selected(at)[1:] == ("test", last)
    _check_chart(at, ensemble_run, [1, 3], band=True)
    at.toggle(key="ro_band").set_value(False).run()
    assert_clean(at)
    _check_chart(at, ensemble_run, [1, 3], band=False)
    at.multiselect(key="ro_dims").set_value([]).run()
    assert_clean(at)
    assert not at.get("plotly_chart") and any("at least one" in i.value for i in at.info)


def test_a_run_without_an_ensemble_has_no_band(training_datasets: Path) -> None:
    at = page(PAGE)
    assert_clean(at)
    assert at.selectbox(key="ro_run").value == "bundled:ddpg.zarr.zip"  # the library's first run
    assert at.toggle(key="ro_band").proto.disabled  # the spread variable exists, all NaN for an MLP
    _check_chart(at, training_datasets / "ddpg.zarr.zip", list(range(4)), band=False)
    assert any("No band" in c.value for c in at.caption)


def test_csv_export_of_the_panel(ensemble_run: Path) -> None:
    at = page(PAGE)
    at.selectbox(key="ro_fig_format").set_value("csv").run()
    at.button(key="ro_fig_prepare").click().run()
    assert_clean(at)
    assert not at.error
    buttons = at.get("download_button")
    assert len(buttons) == 1 and buttons[0].proto.label.startswith("Download mbpo_rollout_step")


def test_a_store_from_before_the_predictions_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, ensemble_folder: Path, tmp_path: Path
) -> None:
    """An older store (the prediction arrays removed, as the engine wrote them before) beside a
    new one: the page opens on the new one though the older sorts first, and the older one gets
    a note naming what it lacks."""
    old = tmp_path / "a_old.zarr"
    shutil.copytree(ensemble_folder / "mbpo.zarr", old)
    (tmp_path / "mbpo.zarr").symlink_to(ensemble_folder / "mbpo.zarr")
    for name in ("prediction", "prediction_spread", "obs_dim"):
        shutil.rmtree(old / "model_error" / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata is not yet in the v3 spec
        zarr.consolidate_metadata(str(old))  # as the engine leaves a complete store
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    at = page(PAGE)
    assert_clean(at)
    box = at.selectbox(key="ro_run")
    assert box.options[1].startswith("a_old.zarr") and box.value == "bundled:mbpo.zarr"
    assert len(at.get("plotly_chart")) == 1
    box.set_value("bundled:a_old.zarr").run()
    assert_clean(at)
    assert not at.get("plotly_chart") and not at.error
    note = [i.value for i in at.info if "`model_error/prediction`" in i.value]
    assert len(note) == 1 and note[0].endswith("runs here that have them: mbpo.zarr."), note


def test_episode_first_steps_across_block_boundaries(ensemble_folder: Path) -> None:
    from app.studies import rollout
    from engine.record import open_run

    store = ensemble_folder / "mbpo.zarr"
    episode = plain_tree(store)["replay"]["episode"].values
    want = {int(e): int(np.flatnonzero(episode == e).min()) for e in np.unique(episode)}
    for rows in (7, 64, 100_000):
        got = rollout.episode_first_steps(open_run(store), rows=rows)
        assert got.to_dict() == want


def test_a_fresh_machine_opens_on_a_bundled_run_with_predictions(datasets: Path) -> None:
    """The bundled headline runs predate stored predictions; the gallery's MBPO run (rebuilt
    with them) is what the page opens on, with its ensemble band."""
    at = page(PAGE)
    assert_clean(at)
    assert at.selectbox(key="ro_run").value == "bundled:gallery/gallery_mbpo_s0.zarr.zip"
    _check_chart(at, datasets / "gallery" / "gallery_mbpo_s0.zarr.zip", list(range(4)), band=True)
