"""`python -m engine datasets build --quick`: the bundled-store pipeline end to end (tiny runs),
and the manifest that records how each bundled store in `datasets/` was made."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine import open_run
from engine.bundles import RECIPES, order
from runkit import run_engine

REPO = Path(__file__).resolve().parents[2]


def _engine(*args: str) -> subprocess.CompletedProcess:
    return run_engine(list(args), timeout=900)


def test_order_puts_dependencies_first() -> None:
    names = [r.name for r in order(["model_comparison"])]
    assert names == [*RECIPES["model_comparison"].needs, "model_comparison"]
    with pytest.raises(ValueError, match="unknown dataset"):
        order(["nope"])


def test_quick_build_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "datasets"
    done = _engine("datasets", "build", "--quick", "--out", str(out), "model_comparison")
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    # the dependency was built first, from its own recipe, and both are recorded
    assert set(manifest) == {"model_comparison", *RECIPES["model_comparison"].needs}
    for name, entry in manifest.items():
        tree = open_run(out / f"{name}.zarr.zip")
        assert tree.attrs["status"] == "complete"
        assert entry["quick"] is True and entry["commands"] and entry["wall_seconds"] > 0
        assert entry["engine_version"] == tree.attrs["engine_version"]
    mc = open_run(out / "model_comparison.zarr.zip")["model_comparison"]
    assert list(mc.model.values) == ["mlp", "ensemble", "gru"] and mc.sizes["stage"] == 2
    listed = _engine("datasets", "list", "--out", str(out))
    assert listed.returncode == 0 and "model_comparison" in listed.stdout and "present" in listed.stdout
    bad = _engine("datasets", "build", "--out", str(out), "nope")
    assert bad.returncode == 2 and "unknown dataset" in bad.stderr and "Traceback" not in bad.stderr


def test_every_bundled_store_is_in_the_manifest() -> None:
    """Each store in datasets/ (and its gallery sub-folder) says how it was made (full budget,
    not --quick) and lies where its recipe puts it; the manifest lists nothing that is not there."""
    folder = REPO / "datasets"
    manifest = json.loads((folder / "manifest.json").read_text())
    stores = {p.relative_to(folder).as_posix() for p in folder.glob("**/*.zarr.zip")}
    assert stores == {RECIPES[name].packed(folder).relative_to(folder).as_posix() for name in manifest}
    for name, entry in manifest.items():
        assert entry["quick"] is False, name
        assert name in RECIPES, f"{name}: no recipe makes it"
        assert open_run(RECIPES[name].packed(folder)).attrs["status"] == "complete"


def test_gallery_recipe_packs_into_its_folder_and_the_app_lists_it(tmp_path: Path) -> None:
    """A gallery recipe (quick) lands in datasets/gallery/, its manifest entry says so, and the
    app lists it after the headline stores under a `bundled:gallery/` key."""
    from app.library import GALLERY, find_stores
    from engine.bundles import GALLERY_FOLDER

    assert GALLERY == GALLERY_FOLDER  # one folder name on both sides of the store
    out = tmp_path / "datasets"
    done = _engine("datasets", "build", "--quick", "--out", str(out), "gallery_naf_s1")
    assert done.returncode == 0, done.stderr[-3000:]
    entry = json.loads((out / "manifest.json").read_text())["gallery_naf_s1"]
    assert entry["path"] == "gallery/gallery_naf_s1.zarr.zip"
    tree = open_run(out / entry["path"])
    config = json.loads(tree.attrs["config"])
    assert (config["algo"], config["seed"], config["env_id"]) == ("naf", 1, "InvertedPendulum-v5")
    assert find_stores(out) == [] and [p.name for p in find_stores(out / GALLERY)] == ["gallery_naf_s1.zarr.zip"]


def test_quick_q_accuracy_pair_gives_the_page_its_numbers(tmp_path: Path) -> None:
    """Both Q-accuracy recipes end to end (tiny, on InvertedPendulum): DDPG with H = 0 and
    MVE-DDPG through the oracle, each with critic snapshots the page's study can summarise."""
    from app.studies import q_accuracy

    names = ["q_accuracy_ddpg", "q_accuracy_mve_oracle"]
    done = _engine("datasets", "build", "--quick", "--out", str(tmp_path), *names)
    assert done.returncode == 0, done.stderr[-3000:]
    configs = {}
    for name in names:
        tree = open_run(tmp_path / f"{name}.zarr.zip")
        configs[name] = json.loads(tree.attrs["config"])
        stats = q_accuracy.summary(q_accuracy.normalized_samples(tree, q_accuracy.snapshot_at(tree)))
        assert stats.sel(stat="n_used") > 0 and np.isfinite(float(stats.sel(stat="mse")))
    assert configs["q_accuracy_ddpg"]["algo"] == "ddpg"
    mve = configs["q_accuracy_mve_oracle"]
    assert (mve["algo"], mve["dynamics"], mve["horizon"]) == ("mve-ddpg", "oracle", 5)
    assert all(c["agent"]["batch_size"] == 16 for c in configs.values())


def test_gallery_runs_use_their_models() -> None:
    """Every bundled gallery run is what its name says: a model-based preset's model starts
    inside the run (a first build used the presets' 5000-step model start on 2000-step runs,
    which made mve-ddpg, ib-ddpg and maac exact copies of ddpg and sac), and runs of different
    presets with one seed differ."""
    from engine.bundles import GALLERY_ALGOS
    from engine.train.config import TrainConfig

    folder = REPO / "datasets"
    manifest = json.loads((folder / "manifest.json").read_text())
    returns = {}
    for name, entry in manifest.items():
        if not RECIPES[name].folder:
            continue
        tree = open_run(folder / entry["path"])
        config = TrainConfig.from_dict(json.loads(tree.attrs["config"]))
        assert config.model_idle_note() is None, name
        returns[(config.algo, config.seed)] = tree["eval"]["return"].values
    assert set(returns) == {(a, s) for a in GALLERY_ALGOS for s in (0, 1)}
    for seed in (0, 1):
        by_algo = [returns[(a, seed)].tobytes() for a in GALLERY_ALGOS]
        assert len(set(by_algo)) == len(GALLERY_ALGOS), "two presets gave identical evaluation returns"
