"""`study ...`: the diagnostic studies that are not training runs."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `study` and its subcommands."""
    study = sub.add_parser("study", help="run a diagnostic study and write its store")
    kinds = study.add_subparsers(dest="study", required=True, metavar="STUDY")
    _add_gradient_error(kinds)
    _add_model_comparison(kinds)
    from engine.cli.study_generalization import add_parser as _add_generalization

    _add_generalization(kinds)


def _field_help(cls: type, name: str) -> str:
    """The one-line docstring under a config field (kept in the source as the field's doc)."""
    import inspect

    lines = inspect.getsource(cls).splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(f"{name}:"):
            return lines[i + 1].strip().strip('"')
    return ""


def _add_gradient_error(kinds: argparse._SubParsersAction) -> None:
    from engine.studies.gradient_config import GradientErrorConfig

    d = GradientErrorConfig()
    h = lambda name: f"{_field_help(GradientErrorConfig, name)} (default: %(default)s)"  # noqa: E731
    p = kinds.add_parser(
        "gradient-error",
        help="MAAC policy-gradient error vs horizon on the double integrator (Study 4)",
        description="Fit a dynamics model and a critic from limited noisy data for each seed, "
        "estimate the policy gradient of the H-step MAAC objective by autograd through rollouts "
        "with the true and the learned dynamics, and compare with the analytic gradient. "
        "Writes the gradient_error group; one seed per commit, so --resume continues a killed run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", help="output store (NAME.zarr directory); required unless --print-config")
    p.add_argument("--seeds", type=int, default=d.seeds, help=_field_help(GradientErrorConfig, "seeds"))
    p.add_argument("--horizons", type=int, default=d.horizon_max, metavar="H_MAX",
                   help="largest horizon: the study covers H = 0..H_MAX")
    p.add_argument("--gamma", type=float, default=d.gamma, help=_field_help(GradientErrorConfig, "gamma"))
    p.add_argument("--data-size", type=int, default=d.data_size, help=_field_help(GradientErrorConfig, "data_size"))
    p.add_argument("--noise", type=float, default=d.noise, help=_field_help(GradientErrorConfig, "noise"))
    p.add_argument("--explore", type=float, default=d.explore, help=_field_help(GradientErrorConfig, "explore"))
    p.add_argument("--critic", choices=("mlp", "quadratic"), default=d.critic, help=_field_help(GradientErrorConfig, "critic"))
    p.add_argument("--model", choices=("mlp", "linear"), default=d.model, help=_field_help(GradientErrorConfig, "model"))
    p.add_argument("--gain", type=float, nargs=2, default=list(d.gain), metavar=("K_POS", "K_VEL"),
                   help=_field_help(GradientErrorConfig, "gain"))
    p.add_argument("--dt", type=float, default=d.dt, help=_field_help(GradientErrorConfig, "dt"))
    p.add_argument("--base-seed", type=int, default=d.base_seed, help=_field_help(GradientErrorConfig, "base_seed"))
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes computing seeds side by side (default: one per core, at most 2); "
                        "the numbers do not depend on it")
    _store_args(p)
    p.set_defaults(func=_run_gradient_error)
    del h


def _run_gradient_error(args: argparse.Namespace) -> int:
    from engine.studies.gradient_config import GradientErrorConfig

    def config() -> GradientErrorConfig:
        return GradientErrorConfig(
            seeds=args.seeds, horizon_max=args.horizons, gamma=args.gamma, data_size=args.data_size,
            noise=args.noise, explore=args.explore, critic=args.critic, model=args.model,
            gain=tuple(args.gain), dt=args.dt, base_seed=args.base_seed,
        )

    def run(cfg: GradientErrorConfig, progress: Callable) -> Path:
        from engine.studies.gradient_error import run_study

        return run_study(cfg, Path(args.out), resume=args.resume, overwrite=args.overwrite, progress=progress,
                         workers=args.workers)

    return _run_counted(args, config, run, "seeds", "seed", "gradient error")


def _add_model_comparison(kinds: argparse._SubParsersAction) -> None:
    from engine.studies.model_comparison import MODELS, ModelComparisonConfig

    h = lambda name: _field_help(ModelComparisonConfig, name)  # noqa: E731
    d = ModelComparisonConfig(buffer="")
    p = kinds.add_parser(
        "model-comparison",
        help="model classes refitted in stages on a recorded replay buffer (Study 1b, SVG Fig. 3)",
        description="Replay a training run's episodes in order; at each stage refit every model "
        "class from scratch on the episodes so far (minus a holdout) and record the multi-step "
        "MSE vs horizon on train, holdout and a fixed test split of the last episodes. Writes the "
        "model_comparison group; one stage per commit, so --resume continues a killed study.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--buffer", required=True, metavar="RUN.zarr", help=h("buffer"))
    p.add_argument("--out", help="output store (NAME.zarr directory); required unless --print-config")
    p.add_argument("--models", default=",".join(d.models), help=f"comma-separated, some of {', '.join(MODELS)}")
    p.add_argument("--stages", type=int, default=d.stages, help=h("stages"))
    p.add_argument("--horizon", type=int, default=d.horizon, help=h("horizon"))
    p.add_argument("--starts", type=int, default=d.starts, help=h("starts"))
    p.add_argument("--test-fraction", type=float, default=d.test_fraction, help=h("test_fraction"))
    p.add_argument("--holdout-fraction", type=float, default=d.holdout_fraction, help=h("holdout_fraction"))
    p.add_argument("--model-config", default="{}", metavar="JSON", help=h("model_config"))
    p.add_argument("--seed", type=int, default=d.seed, help=h("seed"))
    _store_args(p)
    p.set_defaults(func=_run_model_comparison)


def _run_model_comparison(args: argparse.Namespace) -> int:
    import json

    from engine.studies.model_comparison import ModelComparisonConfig, run_study

    def config() -> ModelComparisonConfig:
        return ModelComparisonConfig(
            buffer=args.buffer, models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
            stages=args.stages, horizon=args.horizon, starts=args.starts, test_fraction=args.test_fraction,
            holdout_fraction=args.holdout_fraction, model_config=json.loads(args.model_config), seed=args.seed,
        )

    def run(cfg: ModelComparisonConfig, progress: Callable) -> Path:
        return run_study(cfg, Path(args.out), resume=args.resume, overwrite=args.overwrite, progress=progress)

    return _run_counted(args, config, run, "stages", "stage", "model comparison")


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true", help="continue a killed study in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    p.add_argument("--print-config", action="store_true", help="print the full config as JSON and exit")


def _run_counted(args: argparse.Namespace, config: Callable[[], Any], run: Callable[[Any, Callable], Path],
                 total: str, unit: str, desc: str) -> int:
    """Build the config (2 on a bad one), print it or run it under a bar of `cfg.<total>` units."""
    import json

    from engine.cli.runner import count_update, run_with_bar

    try:
        cfg = config()
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(dataclasses.asdict(cfg), indent=2))
        return 0
    if not args.out:
        print("error: --out is required", file=sys.stderr)
        return 2
    return run_with_bar(getattr(cfg, total), unit, desc, lambda progress: run(cfg, progress), count_update)
