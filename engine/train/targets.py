"""Imagination and critic targets of a preset: MVE through a learned model (known or learned
reward/termination) or the oracle; the same imagination feeds a model-based actor."""

from __future__ import annotations

from collections.abc import Callable

from engine.envs.factory import make_env
from torch import nn

from engine.models.dynamics_base import Dynamics
from engine.models.extras import RewardModel, TerminationModel
from engine.models.imagination import ModelImagination
from engine.models.known import known_functions
from engine.train.config import TrainConfig
from engine.train.mve import Imagination, MVETargets


class _OracleImagination:
    """The oracle gives rewards and terminations from the simulator itself."""

    def __init__(self, oracle: Dynamics) -> None:
        self.oracle = oracle

    def step(self, state, action):  # noqa: ANN001, ANN201 - Imagination protocol
        return self.oracle.step_with_reward(state, action)


def make_imagination(
    cfg: TrainConfig, model: Dynamics, learned: dict[str, nn.Module] | None = None,
) -> ModelImagination | _OracleImagination:
    """Imagined steps of the preset: the oracle's own, or `model` with the env's known reward and
    termination or, with `cfg.reward == "learned"`, learned models created into `learned` (the
    caller fits and saves them)."""
    if cfg.dynamics == "oracle":
        return _OracleImagination(model)
    env = make_env(cfg.env_id, cfg.fully_observable)  # known functions read its parameters
    try:
        if cfg.reward == "known":
            return ModelImagination.with_known(model, known_functions(cfg.env_id, env=env))
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        reward, done = RewardModel(obs_dim, act_dim), TerminationModel(obs_dim, act_dim)
        if learned is not None:
            learned.update(reward_model=reward, termination_model=done)
        # the termination probability weighs the continuation (an expected, soft end)
        return ModelImagination(model, reward, done)
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]}; use reward: learned in the config") from None
    finally:
        env.close()


def critic_targets(
    cfg: TrainConfig, model: Dynamics, ready: Callable[[], bool] = lambda: True,
    learned: dict[str, nn.Module] | None = None, imagination: Imagination | None = None,
) -> MVETargets:
    """MVE targets with the preset's horizon and TD-k choice; `ready` says whether a learned
    model has been fitted (the oracle is always ready). `imagination` defaults to
    `make_imagination(cfg, model, learned)` (pass one to share it with a model-based actor)."""
    if imagination is None:
        imagination = make_imagination(cfg, model, learned)
    if cfg.dynamics == "oracle":
        return MVETargets(imagination, cfg.horizon, cfg.tdk)
    return MVETargets(imagination, cfg.horizon, cfg.tdk, ready)
