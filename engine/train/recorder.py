"""What a training run writes into its store: the schema-v1 groups replay, eval, train,
model_error and critic, plus documented extras (simulator states, holdout flags, start indices).

Everything goes through the crash-safe `RunWriter`: records are buffered and become visible at
`commit()`. `train` is created at the first log row, when the agent's metric names are known.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.record import RunWriter
from engine.record.schema import Var
from engine.train.evaluate import EvalResult

SPLITS = ("holdout", "test")


class TrainRecorder:
    """Appends a training run's records to its store."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer

    def define(self, obs_dim: int, act_dim: int, sim_dim: int, eval_episodes: int, critic_samples: int,
               starts: int, horizon: int) -> None:
        """Create every fixed-size group (idempotent on resume)."""
        w = self.writer
        if not w.has_group("replay"):
            w.add_group(
                "replay",
                coords={"obs_dim": np.arange(obs_dim), "act_dim": np.arange(act_dim), "sim_dim": np.arange(sim_dim)},
                extra={
                    "sim_state": Var(("step", "sim_dim"), "float64", "1",
                                     "simulator state before the step (qpos, qvel, act, qacc_warmstart)"),
                    "next_sim_state": Var(("step", "sim_dim"), "float64", "1", "simulator state after the step"),
                    "holdout": Var(("step",), "bool", "1", "held out from dynamics-model fitting"),
                },
            )
        if not w.has_group("eval"):
            w.add_group("eval", coords={"episode": np.arange(eval_episodes)})
        if not w.has_group("critic"):
            w.add_group("critic", coords={"sample": np.arange(critic_samples)})
        if not w.has_group("model_error"):
            w.add_group(
                "model_error",
                coords={"split": list(SPLITS), "start": np.arange(starts), "horizon": np.arange(1, horizon + 1),
                        "obs_dim": np.arange(obs_dim)},
                extra={
                    "start_step": Var(("snapshot", "split", "start"), "int64", "1",
                                      "replay step of the start state (-1: no valid start)"),
                    "model_fit_step": Var(("snapshot",), "int64", "1",
                                          "environment steps when the model was last fitted"),
                },
            )

    def replay(self, rows: Mapping[str, np.ndarray]) -> None:
        """Buffer transitions (leading axis = step)."""
        self.writer.append("replay", **rows)

    def train(self, update: int, env_step: int, metrics: Mapping[str, float]) -> None:
        """One row of averaged agent/model metrics."""
        if not self.writer.has_group("train"):
            extra = {k: Var(("update",), "float32", "1", k.replace("_", " ")) for k in metrics}
            self.writer.add_group("train", coords={}, extra=extra)
        known = self._train_vars()
        row = {k: np.array([metrics.get(k, np.nan)], np.float32) for k in known}
        self.writer.append("train", update=[update], env_step=[env_step], **row)

    def _train_vars(self) -> list[str]:
        # a metric first reported after the group was created is not stored (schema is fixed
        # at creation); one missing in a row is stored as NaN
        return [v for v in self.writer.appended_variables("train") if v not in ("update", "env_step")]

    def snapshot(self, index: int, env_step: int, result: EvalResult, model_error: dict[str, np.ndarray] | None,
                 model_fit_step: int) -> None:
        """Evaluation returns, critic samples and (if a model exists) open-loop errors and
        predictions (`model_error`: arrays by variable name, each (split, start, ...))."""
        w = self.writer
        w.append("eval", snapshot=[index], env_step=[env_step], **{"return": result.returns[None]},
                 length=result.lengths[None])
        w.append("critic", snapshot=[index], env_step=[env_step], q_pred=result.q_pred[None],
                 return_true=result.return_true[None], t=result.t[None], episode=result.episode[None],
                 censored=result.censored[None])
        if model_error is not None:
            # the group's own variables: a resumed store written before `prediction` existed lacks it
            stored = set(w.appended_variables("model_error")) - {"snapshot", "env_step", "model_fit_step"}
            w.append("model_error", snapshot=[index], env_step=[env_step], model_fit_step=[model_fit_step],
                     **{k: model_error[k][None] for k in stored})
