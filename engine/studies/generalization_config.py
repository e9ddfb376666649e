"""Configuration of Study 3 (model generalization vs policy KL, MBPO Fig. 1)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.train.config import TrainConfig, from_mapping

STUDY_MODELS = ("ensemble", "mlp", "gru")


@dataclass(frozen=True)
class GeneralizationConfig:
    """Everything that determines a Study 3 run (saved in the store as JSON)."""

    env_id: str = "HalfCheetah-v5"
    """gymnasium environment id SAC trains on."""
    data_sizes: tuple[int, ...] = (2000, 5000, 10000, 25000)
    """Replay sizes at which a probe freezes (MBPO Fig. 1 uses a range of data sizes)."""
    steps: int = 50_000
    """Environment steps of the SAC run; must exceed the largest data size."""
    checks: int = 20
    """Checks spread evenly from the first data size to the end (plus one at each freeze)."""
    check_steps: int = 1000
    """Fresh transitions collected with the current policy at each check."""
    model: str = "ensemble"
    """Dynamics class of the probes: ensemble (MBPO), mlp or gru."""
    model_config: dict[str, Any] = field(default_factory=dict)
    """Overrides of the probe model's config fields (its fit settings included)."""
    seed: int = 0
    """Seed of the SAC run, the probes' models and the check environments."""
    train: dict[str, Any] = field(default_factory=dict)
    """Overrides of the SAC run's TrainConfig fields (e.g. start_steps, agent, commit_interval)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_sizes", tuple(int(n) for n in self.data_sizes))
        sizes = np.asarray(self.data_sizes)
        if len(sizes) == 0 or (sizes < 2).any() or (np.diff(sizes) <= 0).any():
            raise ValueError("data_sizes must be increasing integers >= 2")
        if self.steps <= sizes[-1]:
            raise ValueError(f"steps ({self.steps}) must exceed the largest data size ({sizes[-1]})")
        if self.checks < 1 or self.check_steps < 2:
            raise ValueError("need checks >= 1 and check_steps >= 2")
        if self.model not in STUDY_MODELS:
            raise ValueError(f"model must be one of {STUDY_MODELS}, not {self.model!r}")
        bad = sorted({"algo", "env_id", "steps", "seed"} & set(self.train))
        if bad:
            raise ValueError(f"set {bad} on the study, not in its train overrides")
        self.train_config()  # fail early on a bad override

    def train_config(self) -> TrainConfig:
        """The SAC run: no model of its own, one evaluation snapshot at the end by default."""
        base = {"record_model": False, "snapshot_interval": self.steps, "model": self.model}
        return TrainConfig.from_dict({**base, **self.train, "algo": "sac", "env_id": self.env_id,
                                      "steps": self.steps, "seed": self.seed})

    def model_settings(self) -> Any:
        """The probe model's config object (the seed is set per probe)."""
        from engine.models import model_config_class

        return dataclasses.replace(model_config_class(self.model)(), **self.model_config)

    def check_steps_at(self) -> np.ndarray:
        """Environment steps of the checks: every data size, and `checks` evenly spaced after the first."""
        spaced = np.linspace(self.data_sizes[0], self.steps, self.checks + 1)[1:].round().astype(np.int64)
        return np.unique(np.concatenate([np.asarray(self.data_sizes, np.int64), spaced]))

    def full(self) -> dict[str, Any]:
        """The config with the SAC run's and the model's configs expanded to every field."""
        out = dataclasses.asdict(self)
        out["train"] = self.train_config().full()
        out["model_config"] = dataclasses.asdict(self.model_settings())
        return json.loads(json.dumps(out, sort_keys=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneralizationConfig:
        """Build from a (partial) mapping, refusing unknown keys with their names."""
        return from_mapping(cls, data)
