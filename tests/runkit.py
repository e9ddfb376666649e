"""Engine runs that tests in more than one folder share (the session fixtures of tests/conftest.py
build them once): their settings, kept here so a test can rerun the same command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Study 3 on InvertedPendulum with small networks: probes at 200 and 400 steps, checks at 200,
# 300, ..., 600 (~15 s)
GENERALIZATION_CONFIG = {
    "train": {"start_steps": 100, "commit_interval": 100, "eval_episodes": 1, "eval_max_steps": 200,
              "critic_samples": 16, "log_interval": 50, "agent": {"hidden": 32, "batch_size": 32}},
    "model_config": {"members": 3, "elites": 2, "hidden": 32, "layers": 2},
}
GENERALIZATION_ARGS = ["--env", "InvertedPendulum-v5", "--data-sizes", "200,400", "--steps", "600", "--checks", "4",
                       "--check-steps", "300"]


def generalization_args(folder: Path, out: Path) -> list[str]:
    """`python -m engine` arguments of the short Study 3 run writing `out` (its config file
    written into `folder`)."""
    cfg = folder / "gen.json"
    cfg.write_text(json.dumps(GENERALIZATION_CONFIG))
    return ["study", "generalization", *GENERALIZATION_ARGS, "--config", str(cfg), "--out", str(out)]


def run_engine(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m engine ARGS` in the repository, output captured."""
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
