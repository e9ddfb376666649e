"""Learned function approximators shared by agents and studies (torch), and dynamics models.

`make_dynamics(name, ...)` builds any dynamics behind the one interface of `dynamics_base`:
"mlp" (deterministic deltas, MVE), "ensemble" (probabilistic, MBPO/PETS), "gru" (multi-step,
SAC-SVG), "linear-tv" (time-varying linear-Gaussian, refitted on the newest episodes: NAF
sec. 5.3; its state's `hidden` is the time step) and "oracle" (the true simulator, MVE appendix A).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.models.dynamics_base import Dynamics, ModelState, Transitions
from engine.models.mlp import mlp

if TYPE_CHECKING:
    from gymnasium import spaces

DYNAMICS = ("mlp", "ensemble", "gru", "linear-tv", "oracle")


def _classes(name: str) -> tuple[Any, type]:
    # imported here so `from engine.models import mlp` stays light for the agents
    from engine.models.deterministic import MLPDynamics, MLPDynamicsConfig
    from engine.models.ensemble import EnsembleConfig, GaussianEnsemble
    from engine.models.gru import GRUDynamics, GRUDynamicsConfig
    from engine.models.linear_tv import LinearTVConfig, LinearTVDynamics
    from engine.models.oracle import OracleConfig, OracleDynamics

    classes: dict[str, tuple[Any, type]] = {
        "mlp": (MLPDynamics, MLPDynamicsConfig), "ensemble": (GaussianEnsemble, EnsembleConfig),
        "gru": (GRUDynamics, GRUDynamicsConfig), "linear-tv": (LinearTVDynamics, LinearTVConfig),
        "oracle": (OracleDynamics, OracleConfig),
    }
    if name not in classes:
        raise ValueError(f"unknown dynamics {name!r}; choose one of {DYNAMICS}")
    return classes[name]


def model_config_class(name: str) -> type:
    """The config dataclass `make_dynamics(name, ...)` takes (e.g. to apply overrides)."""
    return _classes(name)[1]


def make_dynamics(
    name: str, obs_space: spaces.Box, act_space: spaces.Box, env_id: str, config: Any = None
) -> Dynamics:
    """A dynamics model for `env_id`'s spaces; `config` is that class's config (None: defaults).

    The oracle builds its own env: if `obs_space` has one more dimension than the env's default
    observation it is made with `exclude_current_positions_from_observation=False`.
    """
    if len(obs_space.shape) != 1 or len(act_space.shape) != 1:
        raise ValueError("dynamics models need flat Box observation and action spaces")
    obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
    cls, config_cls = _classes(name)
    if config is not None and not isinstance(config, config_cls):
        raise TypeError(f"{name!r} dynamics take a {config_cls.__name__}, not {type(config).__name__}")
    if name == "oracle":
        return cls(env_id, obs_dim, config)
    return cls(obs_dim, act_dim, config)


__all__ = ["DYNAMICS", "Dynamics", "ModelState", "Transitions", "make_dynamics", "mlp", "model_config_class"]
