"""Recipes for the stores bundled in `datasets/`: which engine commands make each one.

A recipe is data: `python -m engine` command lines with `{work}` (a scratch folder) and
`{datasets}` (where packed stores go) placeholders, a full and a `--quick` variant, and the
config files its `train` commands read. `python -m engine datasets build` runs them in order
and packs the result; `datasets/manifest.json` records what was run, with which engine version
and how long it took, so anyone can regenerate or check a bundled store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

Command = tuple[str, ...]
"""Arguments of `python -m engine` (placeholders `{work}`, `{datasets}`)."""


@dataclass(frozen=True)
class Recipe:
    """How to make one bundled store."""

    name: str
    """File stem: the store is `datasets/NAME.zarr.zip`."""
    study: str
    """Which study the store is for (shown in datasets/README.md and the manifest)."""
    shows: str
    """What its figure shows, in one sentence."""
    commands: tuple[Command, ...]
    """Full-budget commands, run in order."""
    quick: tuple[Command, ...]
    """Tiny commands with the same shape (seconds each), for tests of the pipeline."""
    store: str
    """The work store (relative to `{work}`) that is packed as the result."""
    configs: dict[str, dict] = field(default_factory=dict)
    """Files `{work}/KEY.json` written before the commands (train or study configs)."""
    quick_configs: dict[str, dict] = field(default_factory=dict)
    """The same files for the quick variant."""
    needs: tuple[str, ...] = ()
    """Recipes whose packed stores the commands read (built first when missing)."""
    folder: str = ""
    """Sub-folder of `datasets/` the packed store goes in ("" = `datasets/` itself)."""

    def packed(self, out: Path) -> Path:
        """Where the packed store of this recipe lives under the datasets folder `out`."""
        return out / self.folder / f"{self.name}.zarr.zip"


_OPEN_LOOP_CONFIG = {"model_error_horizon": 30, "model_error_starts": 64, "eval_episodes": 5,
                     "critic_samples": 1000}
_QUICK_TRAIN = ("--steps", "400", "--start-steps", "100", "--model-start-steps", "150",
                "--snapshot-interval", "200")
_QUICK_CONFIG = {"model_error_horizon": 8, "model_error_starts": 12, "holdout_block": 16,
                 "model_fit_interval": 150, "commit_interval": 100, "eval_episodes": 2,
                 "eval_max_steps": 200, "critic_samples": 64, "agent": {"hidden": 32, "batch_size": 32},
                 "model_config": {"hidden": 32, "layers": 2}}
_SMALL_MODELS = json.dumps({"mlp": {"hidden": 32, "layers": 2},
                            "ensemble": {"hidden": 32, "layers": 2, "members": 3, "elites": 2},
                            "gru": {"hidden": 32, "mlp_hidden": 32, "seq_len": 3}})

# MVE Fig. 5 ran both critics with a mini-batch of 32 (oracle steps are expensive); no Study 1
# model (these stores are for Study 2); 4000 updates each: the oracle run at H = 30 (960 sample-steps
# per update) affords that in under an hour on the shared 2-core machine
_Q_ACCURACY_CONFIG = {"record_model": False, "snapshot_interval": 1000, "agent": {"batch_size": 32}}
_Q_ACCURACY_QUICK = {"record_model": False, "snapshot_interval": 200, "commit_interval": 100, "eval_episodes": 2,
                     "eval_max_steps": 200, "critic_samples": 64, "agent": {"hidden": 32, "batch_size": 16}}
_Q_ACCURACY_TRAIN = ("--env", "HalfCheetah-v5", "--steps", "8000", "--start-steps", "4000",
                     "--config", "{work}/q_accuracy.json")
_Q_ACCURACY_QUICK_TRAIN = ("--env", "InvertedPendulum-v5", "--steps", "400", "--start-steps", "100",
                           "--config", "{work}/q_accuracy.json")
_Q_ACCURACY_STUDY = "2: critic accuracy, Q vs true return (MVE Fig. 5)"


def _q_accuracy(name: str, algo: tuple[str, ...], quick_algo: tuple[str, ...], shows: str) -> Recipe:
    """One of MVE Fig. 5's two runs (DDPG, MVE-DDPG with the oracle): same budget and config."""
    return Recipe(
        name=name, study=_Q_ACCURACY_STUDY, shows=shows,
        commands=(("train", *algo, *_Q_ACCURACY_TRAIN, "--out", f"{{work}}/{name}.zarr"),),
        quick=(("train", *quick_algo, *_Q_ACCURACY_QUICK_TRAIN, "--out", f"{{work}}/{name}.zarr"),),
        store=f"{name}.zarr",
        configs={"q_accuracy": _Q_ACCURACY_CONFIG}, quick_configs={"q_accuracy": _Q_ACCURACY_QUICK},
    )


# Algorithm gallery (issue 7): every preset, two seeds, one cheap task, so the compare pages and
# seed aggregation have real runs to show. Short runs: they show how the presets start, not
# where they end. The gallery lives in datasets/gallery/, listed after the headline stores.
GALLERY_ALGOS = ("sac", "mbpo", "sac-svg", "maac", "ddpg", "mve-ddpg", "ib-ddpg", "naf", "naf-imagination")
GALLERY_SEEDS = (0, 1)
GALLERY_FOLDER = "gallery"
_GALLERY_CONFIG = {"eval_episodes": 3, "model_error_starts": 32, "critic_samples": 256, "model_fit_interval": 500}
# the model starts with learning (the presets' own 5000-step model start would leave every
# model-based preset model-free within 2000 steps) and is refitted every 500 steps
_GALLERY_TRAIN = ("--env", "InvertedPendulum-v5", "--steps", "2000", "--start-steps", "500",
                  "--model-start-steps", "500",
                  "--snapshot-interval", "500", "--config", "{work}/gallery.json")


def _gallery(algo: str, seed: int) -> Recipe:
    """One gallery run: `algo` on InvertedPendulum-v5 with `seed`, 2000 env steps."""
    name = f"gallery_{algo.replace('-', '_')}_s{seed}"
    seed_args = ("--algo", algo, "--seed", str(seed))
    return Recipe(
        name=name, study="gallery: learning curves and every study page across presets and seeds",
        shows=f"{algo} on InvertedPendulum-v5, seed {seed}, 2000 env steps (a short run of the preset)",
        commands=(("train", *seed_args, *_GALLERY_TRAIN, "--out", f"{{work}}/{name}.zarr"),),
        quick=(("train", *seed_args, "--env", "InvertedPendulum-v5", *_QUICK_TRAIN,
                "--config", "{work}/gallery.json", "--out", f"{{work}}/{name}.zarr"),),
        store=f"{name}.zarr", configs={"gallery": _GALLERY_CONFIG}, quick_configs={"gallery": _QUICK_CONFIG},
        folder=GALLERY_FOLDER,
    )


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(
        name="gradient_error", study="4: policy-gradient error vs horizon (MAAC Fig. 3)",
        shows="L1 gradient error vs H: falls with the true dynamics, has a minimum then a plateau "
              "with the learned model",
        commands=(("study", "gradient-error", "--out", "{work}/gradient_error.zarr"),),
        quick=(("study", "gradient-error", "--seeds", "2", "--horizons", "5",
                "--out", "{work}/gradient_error.zarr"),),
        store="gradient_error.zarr",
    ),
    Recipe(
        name="mve_ddpg_halfcheetah", study="1: open-loop model error vs horizon (MVE Fig. 1)",
        shows="MVE-DDPG with learned dynamics on fully observable HalfCheetah-v5: error grows "
              "with the horizon, test starts above holdout",
        commands=(("train", "--algo", "mve-ddpg", "--env", "HalfCheetah-v5", "--steps", "15000",
                   "--start-steps", "2000", "--model-start-steps", "2000", "--snapshot-interval", "2500",
                   "--config", "{work}/open_loop.json", "--out", "{work}/mve_ddpg_halfcheetah.zarr"),),
        quick=(("train", "--algo", "mve-ddpg", "--env", "InvertedPendulum-v5", *_QUICK_TRAIN,
                "--config", "{work}/open_loop.json", "--out", "{work}/mve_ddpg_halfcheetah.zarr"),),
        store="mve_ddpg_halfcheetah.zarr",
        configs={"open_loop": _OPEN_LOOP_CONFIG}, quick_configs={"open_loop": _QUICK_CONFIG},
    ),
    Recipe(
        name="model_comparison", study="1b: model classes on a recorded buffer (SVG Fig. 3)",
        shows="MLP, ensemble and GRU refitted in 4 stages on the MVE-DDPG HalfCheetah buffer: "
              "MSE vs horizon on train, holdout and later (test) episodes",
        commands=(("study", "model-comparison", "--buffer", "{datasets}/mve_ddpg_halfcheetah.zarr.zip",
                   "--stages", "4", "--horizon", "10", "--out", "{work}/model_comparison.zarr"),),
        quick=(("study", "model-comparison", "--buffer", "{datasets}/mve_ddpg_halfcheetah.zarr.zip",
                "--stages", "2", "--horizon", "3", "--starts", "32", "--model-config", _SMALL_MODELS,
                "--out", "{work}/model_comparison.zarr"),),
        store="model_comparison.zarr",
        needs=("mve_ddpg_halfcheetah",),
    ),
    Recipe(
        name="generalization_halfcheetah", study="3: model generalization vs policy KL (MBPO Fig. 1)",
        shows="SAC on HalfCheetah-v5 with ensemble probes frozen at 2k, 5k, 10k and 20k "
              "transitions: one-step model error vs KL(pi || pi_D) at later checks",
        commands=(("study", "generalization", "--env", "HalfCheetah-v5", "--data-sizes", "2000,5000,10000,20000",
                   "--steps", "25000", "--checks", "16", "--config", "{work}/generalization.json",
                   "--out", "{work}/generalization_halfcheetah.zarr"),),
        quick=(("study", "generalization", "--env", "InvertedPendulum-v5", "--data-sizes", "200,400",
                "--steps", "600", "--checks", "4", "--check-steps", "300", "--config",
                "{work}/generalization.json", "--out", "{work}/generalization_halfcheetah.zarr"),),
        store="generalization_halfcheetah.zarr",
        # 2x256 and batch 256 (not SVG's 2x512, 512): half the update cost on 2 cores
        configs={"generalization": {"train": {"start_steps": 1000, "agent": {"hidden": 256, "batch_size": 256}}}},
        quick_configs={"generalization": {
            "train": {"start_steps": 100, "commit_interval": 100, "eval_episodes": 1, "eval_max_steps": 200,
                      "critic_samples": 16, "log_interval": 50, "agent": {"hidden": 32, "batch_size": 32}},
            "model_config": {"members": 3, "elites": 2, "hidden": 32, "layers": 2}}},
    ),
    _q_accuracy("q_accuracy_ddpg", ("--algo", "ddpg"), ("--algo", "ddpg"),
                "DDPG (H = 0, mini-batch 32) on fully observable HalfCheetah-v5, 8000 steps: "
                "critic Q vs discounted Monte-Carlo return (the baseline of MVE Fig. 5)"),
    _q_accuracy("q_accuracy_mve_oracle", ("--algo", "mve-ddpg", "--dynamics", "oracle", "--horizon", "30"),
                ("--algo", "mve-ddpg", "--dynamics", "oracle", "--horizon", "5"),
                "MVE-DDPG with oracle dynamics at H = 30 (mini-batch 32) on fully observable "
                "HalfCheetah-v5, 8000 steps: critic Q vs discounted Monte-Carlo return (MVE Fig. 5)"),
    *(_gallery(algo, seed) for algo in GALLERY_ALGOS for seed in GALLERY_SEEDS),
)}


def order(names: list[str]) -> list[Recipe]:
    """The recipes `names` and everything they need, dependencies first."""
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; choose from {sorted(RECIPES)}")
    out: list[Recipe] = []

    def visit(name: str) -> None:
        recipe = RECIPES[name]
        for dep in recipe.needs:
            visit(dep)
        if recipe not in out:
            out.append(recipe)

    for name in names:
        visit(name)
    return out


def fill(command: Command, work: str, datasets: str) -> list[str]:
    """A command with its placeholders replaced."""
    return [a.replace("{work}", work).replace("{datasets}", datasets) for a in command]
