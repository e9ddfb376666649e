"""`study generalization`: Study 3, model error vs policy KL (MBPO Fig. 1)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: CLI flag -> GeneralizationConfig field, for the flags that override a config file
FLAGS = {"env": "env_id", "data_sizes": "data_sizes", "steps": "steps", "checks": "checks",
         "check_steps": "check_steps", "model": "model", "seed": "seed"}


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Register `study generalization`."""
    from engine.cli.study_cmds import _field_help
    from engine.studies.generalization_config import STUDY_MODELS, GeneralizationConfig as C

    d = C()
    p = kinds.add_parser(
        "generalization",
        help="frozen-model error vs policy KL during SAC training (Study 3, MBPO Fig. 1)",
        description="Train SAC; when the replay reaches each data size, freeze a probe (a dynamics "
        "model fitted to convergence with holdout early stopping, and a copy of the policy pi_D); "
        "at each check collect fresh transitions with the current policy pi and record, for every "
        "probe so far, the mean KL(pi || pi_D) (closed form) and the frozen model's one-step error. "
        "Writes the generalization and generalization_probe groups beside the training groups. "
        "Flags override the --config file; a killed study continues with the same command plus --resume.",
    )
    p.add_argument("--env", help=f"{_field_help(C, 'env_id')} (default: {d.env_id})")
    p.add_argument("--data-sizes", type=_sizes, metavar="N1,N2,...",
                   help=f"{_field_help(C, 'data_sizes')} (default: {','.join(map(str, d.data_sizes))})")
    p.add_argument("--steps", type=int, help=f"{_field_help(C, 'steps')} (default: {d.steps})")
    p.add_argument("--checks", type=int, help=f"{_field_help(C, 'checks')} (default: {d.checks})")
    p.add_argument("--check-steps", type=int, help=f"{_field_help(C, 'check_steps')} (default: {d.check_steps})")
    p.add_argument("--model", choices=STUDY_MODELS, help=f"{_field_help(C, 'model')} (default: {d.model})")
    p.add_argument("--seed", type=int, help=f"{_field_help(C, 'seed')} (default: {d.seed})")
    p.add_argument("--config", type=Path, help="YAML or JSON file with any study fields, e.g. "
                   '{"train": {"start_steps": 1000}, "model_config": {"hidden": 64}}')
    p.add_argument("--out", help="output store NAME.zarr (required unless --print-config)")
    p.add_argument("--resume", action="store_true", help="continue a killed study in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    p.add_argument("--print-config", action="store_true", help="print the full config (JSON) and exit")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    """Defaults < --config file < flags."""
    from engine.cli.train_cmds import read_config_file
    from engine.studies.generalization_config import GeneralizationConfig

    data: dict[str, Any] = read_config_file(args.config) if args.config else {}
    data.update({name: getattr(args, flag) for flag, name in FLAGS.items() if getattr(args, flag) is not None})
    return GeneralizationConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    """Run the study; 0 on success, 1 on a store problem, 2 on a bad config."""
    from engine.cli.train_cmds import run_stepped

    def work(cfg: Any, progress: Any) -> Path:
        from engine.studies.generalization import run_study

        return run_study(cfg, Path(args.out), resume=args.resume, overwrite=args.overwrite, progress=progress)

    return run_stepped(args, build_config, lambda cfg: f"generalization {cfg.env_id}", work)


__all__ = ["add_parser", "build_config", "run"]
