"""Study 3: model generalization vs policy KL (MBPO section 4.3, Fig. 1).

SAC trains as in a training run (same Trainer, same replay/eval/train groups). When the replay
reaches each data size a probe freezes (`generalization_probe`: one record per probe); at each
check step fresh transitions are collected with the current policy and every probe frozen so
far reports KL(pi || pi_D) and its model's error on them (`generalization`: one record per
check, NaN for probes not frozen yet). A check also runs at each freeze, so every probe's curve
starts at KL = 0. Records are committed and checkpointed with the training run's; a probe's
model and actor are saved beside the checkpoints when it freezes, so `--resume` reloads the
probes the store has committed and continues.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.envs.factory import make_env
from engine.models import make_dynamics
from engine.models.dynamics_base import Dynamics, Transitions
from engine.record import RunWriter
from engine.studies import generalization_probe as gp
from engine.studies.generalization_config import GeneralizationConfig
from engine.train import checkpoint
from engine.train.loop import Trainer
from engine.train.run import open_trainer

Progress = Callable[[int, dict[str, float]], None]


class GeneralizationTrainer(Trainer):
    """The SAC run with probes frozen and checked along the way."""

    def __init__(self, study: GeneralizationConfig, writer: RunWriter) -> None:
        super().__init__(study.train_config(), writer)
        self.study = study
        self.check_at = study.check_steps_at()  # (check,) env steps
        self.probes: list[gp.Probe] = []
        self.check_env = make_env(study.env_id, self.cfg.fully_observable)
        sizes = np.asarray(study.data_sizes, np.int64)
        if not writer.has_group("generalization"):
            writer.add_group("generalization", coords={"probe": np.arange(len(sizes))}, static={"data_size": sizes})
        if not writer.has_group("generalization_probe"):
            writer.add_group("generalization_probe", coords={})

    # -- resume ---------------------------------------------------------------------------

    def restore(self, ckpt: Path, replay_fields: dict[str, np.ndarray]) -> None:
        """The training state, then the probes the store has committed."""
        super().restore(ckpt, replay_fields)
        for i in range(self.writer.committed["generalization_probe"]):
            saved = torch.load(self._probe_path(i), weights_only=True)
            model = self._new_model(i)
            model.load_state_dict(saved["model"])
            if hasattr(model, "step_mode"):
                model.step_mode = "mean"
            self.probes.append(gp.Probe(model, gp.frozen_copy(self.agent, saved["actor"])))

    # -- the measurements -----------------------------------------------------------------

    def _after_step(self) -> None:
        step = self.state.env_step
        sizes = self.study.data_sizes
        if len(self.probes) < len(sizes) and self.replay.size == sizes[len(self.probes)]:
            self._freeze()
        if step in self.check_at:
            self._check(int(np.searchsorted(self.check_at, step)))

    def _new_model(self, index: int) -> Dynamics:
        settings = dataclasses.replace(self.study.model_settings(), seed=self.study.seed + 1000 * (index + 1))
        return make_dynamics(self.study.model, self.env.observation_space, self.env.action_space,
                             self.study.env_id, settings)

    def _freeze(self) -> None:
        i = len(self.probes)
        f = self.replay.fields()
        data = Transitions(obs=f["obs"], action=f["action"], reward=f["reward"], next_obs=f["next_obs"],
                           terminated=f["terminated"], episode=f["episode"])
        probe, record = gp.freeze(self._new_model(i), self.agent, data)
        path = self._probe_path(i)  # saved before its record can be committed
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"model": probe.model.state_dict(), "actor": probe.policy.actor.state_dict()}, tmp)
        os.replace(tmp, path)
        self.probes.append(probe)
        self.writer.append("generalization_probe", probe=[i], env_step=[self.state.env_step],
                           **{k: [v] for k, v in record.items()})
        self.state.last["model_error_train"] = record["model_error_train"]

    def _check(self, index: int) -> None:
        n = len(self.study.data_sizes)
        kl = np.full(n, np.nan, np.float32)
        err = np.full(n, np.nan, np.float32)
        if self.probes:
            fresh = gp.collect(self.agent, self.check_env, self.study.check_steps,
                               seed=self.study.seed * 100_003 + 7 * index + 1)
            for p, probe in enumerate(self.probes):
                kl[p] = gp.policy_kl(self.agent, probe.policy, fresh.obs)
                err[p] = gp.one_step_errors(probe.model, fresh.obs, fresh.action, fresh.next_obs).mean()
            self.state.last["kl_first"] = float(kl[0])
        self.writer.append("generalization", check=[index], env_step=[self.state.env_step],
                           kl=kl[None], model_error=err[None])

    def _probe_path(self, index: int) -> Path:
        return checkpoint.ckpt_dir(self.writer.path) / f"probe-{index:03d}.pt"


def run_study(study: GeneralizationConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
              progress: Progress | None = None) -> Path:
    """Run Study 3 into the store `out` (a new one, or continue it with `resume`)."""
    out = Path(out)
    writer, trainer = open_trainer(out, study.full(), lambda w: GeneralizationTrainer(study, w),
                                   kind="generalization", env_id=study.env_id, algorithm="sac",
                                   seed=study.seed, resume=resume, overwrite=overwrite)
    with writer:
        trainer.run(progress)
    return out
