"""`train`: run a preset on an environment and record everything into a run store."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: CLI flag -> TrainConfig field, for the flags that override a config file
FLAGS = {
    "algo": "algo", "env": "env_id", "steps": "steps", "seed": "seed", "horizon": "horizon",
    "dynamics": "dynamics", "model": "model", "reward": "reward", "snapshot_interval": "snapshot_interval",
    "start_steps": "start_steps", "model_start_steps": "model_start_steps",
    "updates_per_step": "updates_per_step",
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `train`."""
    from engine.train.config import MODELS, PRESETS

    p = sub.add_parser(
        "train",
        help="train an agent and record replay, eval, train, model_error and critic groups",
        description="Train a preset (paper defaults; see --print-config) and write a run store. "
        "Flags override the --config file, which overrides the defaults. A killed run continues "
        "with the same command plus --resume.",
    )
    p.add_argument("--algo", choices=sorted(PRESETS), help="preset (default sac)")
    p.add_argument("--env", help="gymnasium id, e.g. HalfCheetah-v5, InvertedPendulum-v5, Pendulum-v1")
    p.add_argument("--steps", type=int, help="environment steps")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output store NAME.zarr (required unless --print-config)")
    p.add_argument("--horizon", type=int, help="model horizon H (critic targets of mve-*/maac, actor of sac-svg/maac)")
    p.add_argument("--dynamics", choices=("learned", "oracle"),
                   help="model for critic targets and branched rollouts: learned (class --model) or the "
                   "simulator (oracle: MVE presets, mbpo, ib-ddpg, naf-imagination; actors need a differentiable model)")
    p.add_argument("--model", choices=MODELS, help="learned dynamics class (linear-tv: time-varying "
                   "linear-Gaussian refitted on the newest episodes, NAF sec. 5.3; naf-imagination's default)")
    p.add_argument("--reward", choices=("known", "learned"),
                   help="imagined rewards/terminations: the env's functions or learned models")
    p.add_argument("--no-tdk", action="store_true", help="MVE without the TD-k trick (naive)")
    p.add_argument("--snapshot-interval", type=int, help="env steps between snapshots")
    p.add_argument("--start-steps", type=int, help="random-action steps before learning (default: the preset's)")
    p.add_argument("--model-start-steps", type=int, help="steps before the first model fit (default: the preset's)")
    p.add_argument("--updates-per-step", type=int, help="gradient updates per env step (default: the preset's, 1; mbpo 5)")
    p.add_argument("--config", type=Path, help="YAML or JSON file with any TrainConfig fields")
    p.add_argument("--print-config", action="store_true", help="print the full config (JSON) and exit")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    p.set_defaults(func=run)


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping of config fields in a YAML (.yaml/.yml) or JSON file."""
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of config fields")
    return data


def bar_update(total: int) -> Any:
    """Progress-bar mover for a loop reporting (env step, latest metrics)."""

    def update(bar, call: tuple) -> None:  # noqa: ANN001 - call = (env step, latest metrics)
        step, last = call
        if step - bar.n >= 50 or step == total:
            bar.update(step - bar.n)
            bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()}, refresh=False)

    return update


def build_config(args: argparse.Namespace) -> Any:
    """Defaults < --config file < flags."""
    from engine.train.config import TrainConfig

    data: dict[str, Any] = read_config_file(args.config) if args.config else {}
    for flag, name in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            data[name] = value
    if args.no_tdk:
        data["tdk"] = False
    return TrainConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    """Train; 0 on success, 1 on a store problem, 2 on a bad config."""

    def work(cfg: Any, progress: Any) -> Path:
        from engine.train.run import train

        return train(cfg, Path(args.out), resume=args.resume, overwrite=args.overwrite, progress=progress)

    return run_stepped(args, build_config, lambda cfg: f"{cfg.algo} {cfg.env_id}", work)


def run_stepped(args: argparse.Namespace, build: Any, desc: Any, work: Any) -> int:
    """A command over env steps: config from `build(args)` (or --print-config), then
    `work(cfg, progress)` under a progress bar titled `desc(cfg)`; 0 done, 1 store problem,
    2 bad config."""
    try:
        cfg = build(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(cfg.full(), indent=2, sort_keys=True))
        return 0
    if not args.out:
        print("error: --out is required", file=sys.stderr)
        return 2
    from engine.cli.runner import run_with_bar

    note = getattr(cfg, "model_idle_note", lambda: None)()
    if note:
        print(f"warning: {note}", file=sys.stderr)
    return run_with_bar(cfg.steps, "step", desc(cfg), lambda progress: work(cfg, progress), bar_update(cfg.steps))
