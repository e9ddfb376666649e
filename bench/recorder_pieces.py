"""Section 3b of `train_throughput.py`: the recorder's pieces outside the timed window (snapshot,
Study 1 model fit and refits, commit, train row), timed on a Trainer fed random steps.

Reaches into the Trainer's private methods (_commit, _snapshot, _collect_one): update this file
if engine/train/loop.py renames them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import tempfile
from pathlib import Path

from update_cost import BATCH, ENV_ID, HIDDEN, LAYERS, stamp

from engine.record import RunWriter
from engine.train import loop as train_loop
from engine.train.config import TrainConfig


def snapshot_and_write(tr: train_loop.Trainer) -> None:
    """A snapshot and the store write of its records (eval, critic, model_error groups), which in
    a run ride on the next commit: timed here, a commit's median leaves them out (one commit in
    five carries them at the defaults). The extra root-attribute write makes it a slight
    over-count."""
    tr._snapshot()
    tr.writer.commit()


def recorder_pieces(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each recording piece on a Trainer fed uniformly random steps.

    Collects `pieces` steps (committing every 1000 and writing a train row every 100 as the loop
    does), snapshots, fits the Study 1 model, snapshots again (now with model errors), collects
    as many again and refits copies of the fitted model at each cap in `--refit-caps` and the
    default, twice, interleaved (continuing from the fitted weights and capped at
    `record_model_updates` minibatches, as in a run).
    """
    n = args.pieces
    cfg = TrainConfig(algo="sac", env_id=ENV_ID, steps=2 * n, seed=0, start_steps=2 * n, torch_threads=args.threads,
                      agent={"hidden": HIDDEN, "layers": LAYERS, "batch_size": BATCH})
    out: dict[str, list[tuple[float, float]]] = {"commit": [], "train_row": []}
    fits: dict[str, float] = {}
    refits: dict[int, list[tuple[float, float]]] = {}

    def timed(fn, *a):  # noqa: ANN001, ANN202
        t0 = stamp()
        res = fn(*a)
        t1 = stamp()
        return (t1[0] - t0[0], t1[1] - t0[1]), res

    with tempfile.TemporaryDirectory() as tmp:
        writer = RunWriter.create(Path(tmp) / "pieces.zarr", kind="training", env_id=ENV_ID, algorithm="sac",
                                  seed=0, config=cfg.full())
        with writer:
            tr = train_loop.Trainer(cfg, writer)
            tr.obs, _ = tr.env.reset(seed=0)
            metrics = dict.fromkeys(("critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "target_entropy",
                                     "q_mean"), 0.0)

            def collect(k: int) -> None:
                for _ in range(k):
                    tr._collect_one()
                    s = tr.state.env_step
                    if s % cfg.log_interval == 0:
                        out["train_row"].append(timed(tr.rec.train, s, s, metrics)[0])
                    if s % cfg.commit_interval == 0:
                        out["commit"].append(timed(tr._commit)[0])

            collect(n)
            snap = timed(snapshot_and_write, tr)[0]
            fit, m1 = timed(tr.model.fit, tr.replay.model_data())
            tr.state.model_fit_step = tr.state.env_step
            snap_err = timed(snapshot_and_write, tr)[0]
            collect(n)
            data = tr.replay.model_data()
            caps = sorted({cfg.record_model_updates, *args.refit_caps})
            for r in range(2):  # each cap refits a copy of the same fitted model, twice, interleaved
                for cap in caps if r == 0 else caps[::-1]:
                    model = copy.deepcopy(tr.model)
                    model.config = dataclasses.replace(model.config,
                                                       fit=dataclasses.replace(model.config.fit, max_updates=cap))
                    t, m2 = timed(model.fit, data)
                    refits.setdefault(cap, []).append(t)
                    fits[f"refit_updates_{cap}"], fits[f"refit_epochs_{cap}"] = m2["updates"], m2["epochs"]
            default = cfg.record_model_updates
            fits.update({"fit_epochs": m1["epochs"], "refit_epochs": fits[f"refit_epochs_{default}"],
                         "fit_updates": m1["updates"], "refit_updates": fits[f"refit_updates_{default}"]})

    def med(v: list[tuple[float, float]]) -> tuple[float, float]:
        if not v:  # fewer pieces than one interval
            return float("nan"), float("nan")
        return statistics.median(w for w, _ in v), statistics.median(c for _, c in v)

    return {"snapshot": snap, "snapshot_model_err": snap_err, "fit": fit,
            "refit": med(refits[cfg.record_model_updates]), **{f"refit_{c}": med(v) for c, v in refits.items()},
            "commit": med(out["commit"]), "train_row": med(out["train_row"]),
            **{k: (v, v) for k, v in fits.items()}}
