"""The run-store schema, version 1: every group, variable, dimension, dtype and unit.

This module is the single source of truth for names. The writer creates arrays from it, the
reader validates against it, and `docs/store-schema.md` is generated from it (a test checks the
doc is current). Renaming anything here is a schema version change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA = "mbrl-workbench/run"
SCHEMA_VERSION = 1
KINDS = ("training", "gradient_error", "generalization", "model_comparison")
STATUSES = ("running", "complete", "failed")

#: Root attributes every store carries (the writer sets them all).
ROOT_ATTRS: dict[str, str] = {
    "schema": f'always "{SCHEMA}"',
    "schema_version": f"integer, {SCHEMA_VERSION} for this layout",
    "kind": "one of " + ", ".join(KINDS),
    "run_id": "unique id of the run (text)",
    "env_id": "gymnasium id of the environment",
    "algorithm": "preset or study name",
    "seed": "integer seed of the run",
    "config": "JSON text of the full, frozen config that produced the store",
    "status": "one of " + ", ".join(STATUSES),
    "created": "ISO 8601 UTC time the store was created",
    "updated": "ISO 8601 UTC time of the last commit",
    "engine_version": "version of mbrl-workbench that wrote the store",
    "commit": "commit counter: number of commits so far (the writer sets it last)",
    "committed": "JSON-like map group -> committed length along the group's append dim",
}


@dataclass(frozen=True)
class Var:
    """One stored variable."""

    dims: tuple[str, ...]
    """Dimension names, in storage order."""
    dtype: str
    """NumPy dtype string the writer stores ("float32", "int64", "bool", "str", ...)."""
    units: str
    """Physical units (CF style; "1" for dimensionless)."""
    long_name: str
    """Human-readable description, used as axis label."""
    allow_nan: bool = False
    """Whether NaN/inf values are legitimate (e.g. padding); otherwise the reader rejects them."""
    optional: bool = False
    """Whether a store may lack it: variables added within a schema version, so stores written
    before them stay valid (readers treat absence as "not recorded")."""


@dataclass(frozen=True)
class Group:
    """One store group: its dims, the dim records are appended along, and its variables."""

    append_dim: str
    """Records are appended along this dim; the commit counter tracks its length."""
    dims: tuple[str, ...]
    """Every dim of the group; each has a coordinate variable of the same name."""
    variables: dict[str, Var]
    """Required data variables (extra ones are allowed and must carry units/long_name)."""
    coords: dict[str, Var] = field(default_factory=dict)
    """Coordinate variables, one per dim."""
    chunk: int = 1024
    """Chunk length along the append dim."""
    doc: str = ""
    """One-paragraph description for the schema doc."""


def _idx(dim: str, what: str) -> Var:
    return Var((dim,), "int64", "1", what)


def _label(dim: str, what: str) -> Var:
    return Var((dim,), "str", "1", what)


_R = "reward"  # unit of rewards and returns: the environment's own reward unit

GROUPS: dict[str, Group] = {
    "replay": Group(
        append_dim="step",
        dims=("step", "obs_dim", "act_dim"),
        coords={
            "step": _idx("step", "environment step"),
            "obs_dim": _idx("obs_dim", "observation dimension"),
            "act_dim": _idx("act_dim", "action dimension"),
        },
        variables={
            "obs": Var(("step", "obs_dim"), "float32", "env", "observation"),
            "action": Var(("step", "act_dim"), "float32", "env", "action"),
            "reward": Var(("step",), "float32", _R, "reward"),
            "next_obs": Var(("step", "obs_dim"), "float32", "env", "next observation"),
            "terminated": Var(("step",), "bool", "1", "episode terminated (true terminal)"),
            "truncated": Var(("step",), "bool", "1", "episode cut by the time limit"),
            "episode": Var(("step",), "int64", "1", "episode index"),
            "policy_version": Var(
                ("step",), "int64", "1", "behaviour-policy snapshot that collected the step"
            ),
        },
        chunk=4096,
        doc="Every real transition, in collection order.",
    ),
    "eval": Group(
        append_dim="snapshot",
        dims=("snapshot", "episode"),
        coords={
            "snapshot": _idx("snapshot", "snapshot index"),
            "episode": _idx("episode", "evaluation episode"),
        },
        variables={
            "env_step": Var(("snapshot",), "int64", "1", "environment steps at the snapshot"),
            "return": Var(("snapshot", "episode"), "float32", _R, "evaluation return"),
            "length": Var(("snapshot", "episode"), "int64", "1", "evaluation episode length"),
        },
        chunk=64,
        doc="Returns of evaluation episodes with the deterministic/mean policy at each snapshot.",
    ),
    "train": Group(
        append_dim="update",
        dims=("update",),
        coords={"update": _idx("update", "gradient update")},
        variables={
            "env_step": Var(("update",), "int64", "1", "environment steps at the update"),
        },
        chunk=4096,
        doc="One row per logged update; every scalar the agent reports becomes a variable.",
    ),
    "model_error": Group(
        append_dim="snapshot",
        dims=("snapshot", "split", "start", "horizon", "obs_dim"),
        coords={
            "snapshot": _idx("snapshot", "snapshot index"),
            "split": _label("split", "start-state split (holdout, test)"),
            "start": _idx("start", "start state"),
            "horizon": _idx("horizon", "open-loop horizon"),
            # optional: only the predicted trajectories use it (stores before them lack it)
            "obs_dim": Var(("obs_dim",), "int64", "1", "observation dimension", optional=True),
        },
        variables={
            "env_step": Var(("snapshot",), "int64", "1", "environment steps at the snapshot"),
            "error": Var(
                ("snapshot", "split", "start", "horizon"), "float32", "env",
                "open-loop prediction error (L2 norm)", allow_nan=True,
            ),
            "error_normalized": Var(
                ("snapshot", "split", "start", "horizon"), "float32", "1",
                "open-loop prediction error, standardised per dimension", allow_nan=True,
            ),
            "disagreement": Var(
                ("snapshot", "split", "start", "horizon"), "float32", "env",
                "ensemble disagreement along the rollout (L2 norm of the elites' std of predicted "
                "means; NaN for other models)", allow_nan=True, optional=True,
            ),
            "prediction": Var(
                ("snapshot", "split", "start", "horizon", "obs_dim"), "float32", "env",
                "predicted observation (open loop from the start state)", allow_nan=True, optional=True,
            ),
            "prediction_spread": Var(
                ("snapshot", "split", "start", "horizon", "obs_dim"), "float32", "env",
                "ensemble spread of the prediction (elites' std of predicted means, per dimension; "
                "NaN for other models)", allow_nan=True, optional=True,
            ),
        },
        chunk=16,
        doc="Study 1: open-loop error of the current model vs horizon, at each snapshot, with the "
        "ensemble's own disagreement beside it (calibration). `prediction` is the trajectory the "
        "error measures (the true one is in `replay`: `next_obs` at rows `start_step + horizon - 1`); "
        "`prediction_spread` is the elites' per-dimension std of predicted means from the state the "
        "rollout reached, whose L2 norm over `obs_dim` is `disagreement`. `obs_dim`, `prediction` and "
        "`prediction_spread` are optional (stores written before them lack them); padded starts "
        "(`start_step` = -1) are NaN.",
    ),
    "critic": Group(
        append_dim="snapshot",
        dims=("snapshot", "sample"),
        coords={
            "snapshot": _idx("snapshot", "snapshot index"),
            "sample": _idx("sample", "evaluated state-action pair"),
        },
        variables={
            "env_step": Var(("snapshot",), "int64", "1", "environment steps at the snapshot"),
            "q_pred": Var(("snapshot", "sample"), "float32", _R, "predicted Q", allow_nan=True),
            "return_true": Var(
                ("snapshot", "sample"), "float32", _R, "discounted Monte-Carlo return",
                allow_nan=True,
            ),
            "t": Var(("snapshot", "sample"), "int64", "1", "time step within the episode"),
            "episode": Var(("snapshot", "sample"), "int64", "1", "evaluation episode"),
            "censored": Var(
                ("snapshot", "sample"), "bool", "1", "episode cut by the time limit"
            ),
        },
        chunk=16,
        doc="Study 2: critic prediction vs true discounted return on evaluation episodes.",
    ),
    "generalization": Group(
        append_dim="check",
        dims=("probe", "check"),
        coords={
            "probe": _idx("probe", "frozen probe"),
            "check": _idx("check", "check"),
        },
        variables={
            "data_size": Var(("probe",), "int64", "1", "replay size when the probe froze"),
            "env_step": Var(("check",), "int64", "1", "environment steps at the check"),
            "kl": Var(
                ("probe", "check"), "float32", "nat", "mean KL(pi || pi_D) over fresh states",
                allow_nan=True,
            ),
            "model_error": Var(
                ("probe", "check"), "float32", "env", "frozen model error on fresh data",
                allow_nan=True,
            ),
        },
        chunk=64,
        doc="Study 3: frozen model error vs policy KL (MBPO Fig. 1), one record per check. Every "
        "planned probe has a row from the start (`data_size` is the planned size, frozen exactly "
        "when the replay reaches it); `kl` and `model_error` are NaN for probes not yet frozen "
        "at a check. What each probe measured when it froze is in `generalization_probe`.",
    ),
    "generalization_probe": Group(
        append_dim="probe",
        dims=("probe",),
        coords={"probe": _idx("probe", "frozen probe")},
        variables={
            "env_step": Var(("probe",), "int64", "1", "environment steps when the probe froze"),
            "model_error_train": Var(
                ("probe",), "float32", "env", "frozen model error on its own holdout data"
            ),
            "n_holdout": Var(("probe",), "int64", "1", "holdout transitions of the probe's fit"),
            "fit_epochs": Var(("probe",), "int64", "1", "epochs of the probe's fit"),
        },
        chunk=64,
        doc="Study 3: one record per probe, appended when it freezes (its fit to convergence "
        "with holdout early stopping); `probe` matches the `generalization` group's.",
    ),
    "gradient_error": Group(
        append_dim="seed",
        dims=("seed", "dynamics", "horizon", "param"),
        coords={
            "seed": _idx("seed", "seed"),
            "dynamics": _label("dynamics", "dynamics used in the rollout (true, learned)"),
            "horizon": _idx("horizon", "model horizon H"),
            "param": _label("param", "policy parameter"),
        },
        variables={
            "true_grad": Var(("seed", "param"), "float64", "reward", "analytic policy gradient"),
            "est_grad": Var(
                ("seed", "dynamics", "horizon", "param"), "float64", "reward",
                "MAAC gradient estimate",
            ),
            "l1_error": Var(
                ("seed", "dynamics", "horizon"), "float64", "reward",
                "L1 error of the gradient estimate",
            ),
            "eps_f": Var(("seed",), "float64", "1", "model Jacobian error eps_f"),
            "eps_q": Var(("seed",), "float64", "reward", "critic gradient error eps_Q"),
        },
        chunk=16,
        doc="Study 4: MAAC policy-gradient error on the double integrator (MAAC Fig. 3).",
    ),
    "model_comparison": Group(
        append_dim="stage",
        dims=("model", "stage", "split", "horizon"),
        coords={
            "model": _label("model", "model class"),
            "stage": _idx("stage", "data stage"),
            "split": _label("split", "split (train, holdout, test)"),
            "horizon": _idx("horizon", "prediction horizon"),
        },
        variables={
            "n_episodes": Var(("stage",), "int64", "1", "episodes used for fitting"),
            "n_transitions": Var(("stage",), "int64", "1", "transitions used for fitting"),
            "n_starts": Var(("stage", "split"), "int64", "1", "start states the MSE averages over"),
            "fit_epochs": Var(("model", "stage"), "float64", "1", "epochs until early stopping",
                              allow_nan=True),
            "mse": Var(
                ("model", "stage", "split", "horizon"), "float32", "env^2",
                "multi-step mean squared error", allow_nan=True,
            ),
        },
        chunk=16,
        doc="Study 1b: model classes refitted on a recorded buffer in stages (SVG Fig. 3).",
    ),
}

#: Which groups a store of each kind must hold once complete.
REQUIRED_GROUPS: dict[str, tuple[str, ...]] = {
    "training": ("replay", "eval", "train"),
    "gradient_error": ("gradient_error",),
    "generalization": ("generalization", "generalization_probe"),
    "model_comparison": ("model_comparison",),
}


def all_vars(group: Group) -> dict[str, Var]:
    """Coordinates and data variables of a group, coordinates first."""
    return {**group.coords, **group.variables}
