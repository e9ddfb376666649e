"""The training loop: collect, update, fit the model, snapshot, commit, checkpoint.

Order at a step that is a snapshot and a model-fit step: the snapshot is recorded first, with
the model fitted before the newest data arrived (so `test` starts are data it never saw), then
the model is refitted. Checkpoints are written right after each store commit and name the
replay length they belong to; on resume the store is truncated back to the newest checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from engine.agents import make_agent
from engine.agents.base import Agent, one_step_targets
from engine.agents.svg import PathwiseSAC
from engine.envs.factory import make_env, sim_state_fns
from engine.models import make_dynamics
from engine.models.ensemble import GaussianEnsemble, SpreadTracking
from engine.models.dynamics_base import Dynamics
from engine.models.training import mark_fitted
from engine.numerics import set_process_numerics
from engine.record import RunWriter
from engine.train import checkpoint
from engine.train.branched import BranchedRollouts
from engine.train.config import TrainConfig
from engine.train.evaluate import evaluate
from engine.train.open_loop import OpenLoop, choose, open_loop, snapshot_record, valid_starts
from engine.train.recorder import TrainRecorder
from engine.train.replay import Replay
from engine.train.targets import critic_targets, make_imagination

Progress = Callable[[int, dict[str, float]], None]


class Trainer:
    """One run of one preset on one environment, writing one store."""

    def __init__(self, cfg: TrainConfig, writer: RunWriter) -> None:
        self.cfg = cfg
        self.writer = writer
        self.rec = TrainRecorder(writer)
        self.env = make_env(cfg.env_id, cfg.fully_observable)
        self.eval_env = make_env(cfg.env_id, cfg.fully_observable)
        self.get_sim, self.set_sim, sim_dim = sim_state_fns(self.env)
        obs_space, act_space = self.env.observation_space, self.env.action_space
        set_process_numerics(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.model: Dynamics | None = None
        if cfg.uses_model or cfg.actor_uses_model or cfg.branched or cfg.record_model:
            name = "oracle" if ((cfg.uses_model or cfg.branched) and cfg.dynamics == "oracle") else cfg.model
            self.model = make_dynamics(name, obs_space, act_space, cfg.env_id, _model_config(name, cfg))
        self.learned: dict[str, torch.nn.Module] = {}  # learned reward/termination models, if any
        ready = lambda: self.state.model_fit_step > 0  # noqa: E731
        imagination = None
        if cfg.actor_uses_model or (cfg.uses_model and cfg.dynamics != "oracle"):
            imagination = make_imagination(cfg, self.model, self.learned)  # one, shared by critic and actor
        targets = critic_targets(cfg, self.model, ready, self.learned, imagination) if cfg.uses_model else None
        if cfg.actor_uses_model:  # SAC-SVG(H), MAAC: the actor loss expands through the model
            self.agent: Agent = PathwiseSAC(obs_space, act_space, _agent_config(cfg), targets or one_step_targets,
                                            seed=cfg.seed, imagination=imagination, horizon=cfg.horizon, ready=ready)
        else:
            self.agent = make_agent(cfg.agent_name, obs_space, act_space, _agent_config(cfg), targets, seed=cfg.seed)
        self.branched: BranchedRollouts | None = None
        if cfg.branched:  # MBPO: SAC on a real/model mix of branched rollouts
            spread = SpreadTracking(self.model) if _has_spread(self.model) else None
            branch_imagination = make_imagination(cfg, spread or self.model, self.learned)
            self.branched = BranchedRollouts(cfg.rollout_config(), branch_imagination, obs_space.shape[0],
                                             act_space.shape[0], cfg.model_fit_interval, spread)
        self.replay = Replay.empty(cfg.steps, obs_space.shape[0], act_space.shape[0], sim_dim)
        self.rng = np.random.default_rng(cfg.seed)
        self.state = checkpoint.Counters()
        self.obs: np.ndarray | None = None
        self.rec.define(obs_space.shape[0], act_space.shape[0], sim_dim, cfg.eval_episodes, cfg.critic_samples,
                        cfg.model_error_starts, cfg.model_error_horizon)
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._block = (-1, False)

    # -- resume ---------------------------------------------------------------------------

    def restore(self, ckpt: Path, replay_fields: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint; `replay_fields` are the store's replay rows after the
        store was rolled back to that checkpoint."""
        self.state, obs, sim = checkpoint.load(ckpt, self.agent, self.model, self.rng, self.learned, self._extras())
        self.replay.load(replay_fields)
        if self.model is not None and self.state.model_fit_step and not hasattr(self.model, "state_dict"):
            self._fit_model()  # models without saved weights are refitted on the same data
        elif self.model is not None and self.state.model_fit_step:
            mark_fitted(self.model)  # restored weights: the next fit is a (possibly capped) refit
        self.obs = obs
        if obs is not None and self.state.episode_step:  # mid-episode: put the simulator back
            self.env.reset(seed=self.cfg.seed + self.state.episode)
            if sim is not None and len(sim):
                self.set_sim(sim)
                _set_elapsed(self.env, self.state.episode_step)
            else:  # no simulator state to restore (non-MuJoCo): start the next episode
                self.state.episode += 1
                self.state.episode_step = 0
                self.state.episode_return = 0.0
                self.obs, _ = self.env.reset(seed=self.cfg.seed + self.state.episode)
        elif obs is not None:  # checkpointed right after an episode ended: redo its (seeded) reset
            self.obs, _ = self.env.reset(seed=self.cfg.seed + self.state.episode)

    # -- the loop -------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> None:
        """Collect until `cfg.steps`, recording and committing along the way."""
        cfg, s = self.cfg, self.state
        if self.obs is None:
            self.obs, _ = self.env.reset(seed=cfg.seed + s.episode)
            s.episode_step = 0
        while s.env_step < cfg.steps:
            self._collect_one()
            if s.env_step >= cfg.start_steps:
                for _ in range(cfg.updates_per_step):
                    self._update()
            if s.env_step % cfg.snapshot_interval == 0 or s.env_step == cfg.steps:
                self._snapshot()
            if self.model is not None and s.env_step >= cfg.model_start_steps and (
                s.model_fit_step == 0 or s.env_step % cfg.model_fit_interval == 0
            ):
                self._fit_model()
                if self.branched is not None:  # MBPO Alg. 2: fresh rollouts after every fit
                    self.branched.rollout(self.replay, self.agent, s.env_step, self.rng)
            self._after_step()
            if s.env_step % cfg.commit_interval == 0 or s.env_step == cfg.steps:
                self._commit()
            if progress:
                progress(s.env_step, s.last)
        if not self.writer.has_group("train"):  # no update happened (all steps random)
            self.writer.add_group("train", coords={})

    def _after_step(self) -> None:
        """Hook for studies that measure during training (Study 3); its records are
        committed, and checkpointed, with the step's."""

    def _collect_one(self) -> None:
        cfg, s = self.cfg, self.state
        sim_before = self.get_sim()
        if s.env_step < cfg.start_steps:
            # from the checkpointed generator (the action space's own RNG is unseeded), so a
            # run, resumed or not, is reproducible from its seed
            space = self.env.action_space
            action = self.rng.uniform(space.low, space.high).astype(space.dtype)
        else:
            action = self.agent.act(self.obs, deterministic=False)
        nxt, r, terminated, truncated, _ = self.env.step(action)
        row = {
            "obs": self.obs, "action": action, "reward": r, "next_obs": nxt, "terminated": terminated,
            "truncated": truncated, "episode": s.episode, "policy_version": s.policy_version,
            "holdout": self._holdout(s.env_step), "sim_state": sim_before, "next_sim_state": self.get_sim(),
        }
        self.replay.add(**row)  # reaches the store at the next commit
        s.env_step += 1
        s.episode_step += 1
        s.episode_return += float(r)
        self.obs = nxt
        if terminated or truncated:
            s.last["return"] = s.episode_return
            s.episode += 1
            s.episode_return = 0.0
            s.episode_step = 0
            self.obs, _ = self.env.reset(seed=cfg.seed + s.episode)
            self.agent.reset()

    def _holdout(self, step: int) -> bool:
        """Whether the block of `step` is held out: a pure function of (seed, block), so a
        resumed run decides the same."""
        block = step // self.cfg.holdout_block
        if self._block[0] != block:
            rng = np.random.default_rng((self.cfg.seed, 7919, block))
            self._block = (block, bool(rng.random() < self.cfg.holdout_fraction))
        return self._block[1]

    def _update(self) -> None:
        # the batch size is the agent's (a paper hyperparameter, e.g. MVE: 512, 32 with the oracle)
        size = self.agent.config.batch_size
        if self.branched is not None:
            batch = self.branched.batch(self.replay, size, self.rng)
            metrics = {**self.agent.update(batch), **self.branched.metrics(size)}
        else:
            metrics = self.agent.update(self.replay.sample(size, self.rng, with_sim=self.cfg.dynamics == "oracle"))
        for k, v in metrics.items():
            self._metrics[k].append(v)
        self.state.updates += 1
        if self.state.updates % self.cfg.log_interval == 0:
            row = {k: float(np.mean(v)) for k, v in self._metrics.items()}
            self.rec.train(self.state.updates, self.state.env_step, row)
            self.state.last.update({k: row[k] for k in ("critic_loss", "actor_loss") if k in row})
            self._metrics.clear()

    def _fit_model(self) -> None:
        data = self.replay.model_data()
        metrics = self.model.fit(data)
        for name, extra in self.learned.items():
            metrics.update({f"{name}_{k}": v for k, v in extra.fit(data).items()})
        self.state.model_fit_step = self.state.env_step
        self.state.last.update({f"model_{k}": v for k, v in metrics.items() if "loss" in k})

    def _snapshot(self) -> None:
        cfg, s = self.cfg, self.state
        result = evaluate(self.agent, self.eval_env, cfg.eval_episodes, cfg.eval_max_steps,
                          self.agent.gamma, cfg.critic_samples, seed=10_000 + 100 * s.snapshots)
        errors = self._model_error() if (self.model is not None and s.model_fit_step > 0) else None
        if errors is None:
            errors = _nan_errors(cfg, self.replay.obs.shape[1])
        self.rec.snapshot(s.snapshots, s.env_step, result, errors, s.model_fit_step)
        s.last["eval_return"] = float(result.returns.mean())
        if errors["start_step"].max() >= 0:
            s.last["model_err_h1"] = float(np.nanmean(errors["error"][1, :, 0]))
        s.snapshots += 1
        s.policy_version += 1

    def _model_error(self) -> dict[str, np.ndarray]:
        cfg, s = self.cfg, self.state
        H, n = cfg.model_error_horizon, cfg.model_error_starts
        std = self.replay.next_obs[: self.replay.size].std(0)
        starts = np.stack([
            choose(valid_starts(self.replay, H, holdout_only=True), n, self.rng),
            choose(valid_starts(self.replay, H, lo=s.model_fit_step), n, self.rng),
        ])  # (split, start)
        return snapshot_record([open_loop(self.model, self.replay, st, H, std) for st in starts], starts)

    def _commit(self) -> None:
        stored = self.writer.committed["replay"]
        if self.replay.size > stored:  # one append per commit, not per step
            rows = {k: v[stored:] for k, v in self.replay.fields().items()}
            self.rec.replay({"step": np.arange(stored, self.replay.size), **rows})
        self.writer.commit()
        ckpt = checkpoint.save(self.writer.path, self.state, self.writer.committed, self.agent, self.model, self.rng,
                               self.obs, self.get_sim() if self.state.episode_step else None, self.learned,
                               self._extras())
        checkpoint.prune(self.writer.path, keep=ckpt)

    def _extras(self) -> dict[str, BranchedRollouts]:
        # MBPO's model buffer is checkpointed (its rollouts came from earlier policies and models)
        return {"branched": self.branched} if self.branched is not None else {}


def _nan_errors(cfg: TrainConfig, obs_dim: int) -> dict[str, np.ndarray]:
    n = cfg.model_error_starts
    empty = OpenLoop.empty(n, cfg.model_error_horizon, obs_dim)
    return snapshot_record([empty, empty], np.full((2, n), -1, np.int64))


def _has_spread(model: Dynamics | None) -> bool:
    """Whether `model` is an ensemble with elites to disagree."""
    return isinstance(model, GaussianEnsemble) and len(model.elites) > 1


def _set_elapsed(env: gym.Env, steps: int) -> None:
    """Restore gymnasium's TimeLimit counter after putting the simulator back mid-episode."""
    e = env
    while hasattr(e, "env"):
        if hasattr(e, "_elapsed_steps"):
            e._elapsed_steps = steps
            return
        e = e.env


def _agent_config(cfg: TrainConfig):  # noqa: ANN202 - the preset's own config class
    from engine.agents import AGENTS

    _, config_cls = AGENTS[cfg.agent_name]
    base = config_cls()
    overrides = cfg.agent_overrides()
    return dataclasses.replace(base, **overrides) if overrides else base


def _model_config(name: str, cfg: TrainConfig):  # noqa: ANN202
    record_only = not cfg.agent_uses_model  # branched rollouts use it too: never cap those
    capped = record_only and cfg.record_model_updates is not None and name not in ("oracle", "linear-tv")
    if (not cfg.model_config and not capped) or name == "oracle":
        return None
    from engine.models import model_config_class

    model_cfg = dataclasses.replace(model_config_class(name)(), **cfg.model_config)
    if capped:  # Study 1's model only: a fixed refit budget (bench/README.md, docs/training.md)
        fit = dataclasses.replace(model_cfg.fit, max_updates=cfg.record_model_updates)
        model_cfg = dataclasses.replace(model_cfg, fit=fit)
    return model_cfg
