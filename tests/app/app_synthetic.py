"""A small synthetic `gradient_error` store, written with the engine's own RunWriter.

The pure-function and library tests use it where they need a store they control (sizes, a
store with no seeds). The values only mimic the study's shape (true-dynamics error falling like
gamma^H, learned-dynamics error falling then rising); they are not a simulation.

Run as a script to write one: `python tests/app/app_synthetic.py OUT.zarr [--zip OUT.zarr.zip]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from engine.record import RunWriter, pack
from engine.record.schema import Var

PARAMS = ("K[force,position]", "K[force,velocity]")
STATE = ("position", "velocity")
ACTION = ("force",)


def write_store(
    path: Path, *, seeds: int = 5, horizons: int = 11, gamma: float = 0.9, rng_seed: int = 0
) -> Path:
    """Write a complete synthetic gradient_error store at `path` (a `.zarr` directory)."""
    rng = np.random.default_rng(rng_seed)
    dt = 0.1
    horizon = np.arange(horizons)
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([[dt**2 / 2], [dt]])
    c1 = (1.3 ** (horizon + 1) - 1) / 0.3 * horizon  # zero at H = 0: no model step
    c2 = gamma**horizon * 1.1**horizon
    static = {
        "A": A, "B": B, "Q": np.eye(2), "R": np.array([[0.1]]), "K": np.array([[-0.5, -1.0]]),
        "Sigma0": np.eye(2) * 0.5, "gamma": np.array(gamma), "bound_c1": c1, "bound_c2": c2,
    }
    m = "1"
    extra = {
        "A": Var(("state", "state_in"), "float64", m, "state transition matrix A"),
        "B": Var(("state", "action_in"), "float64", "s", "input matrix B"),
        "Q": Var(("state", "state_in"), "float64", m, "state cost Q"),
        "R": Var(("action", "action_in"), "float64", m, "action cost R"),
        "K": Var(("action", "state_in"), "float64", m, "policy gain K"),
        "Sigma0": Var(("state", "state_in"), "float64", m, "initial state covariance"),
        "gamma": Var((), "float64", m, "discount gamma"),
        "bound_c1": Var(("horizon",), "float64", m, "Lemma 4.1 coefficient c1(H)"),
        "bound_c2": Var(("horizon",), "float64", m, "Lemma 4.1 coefficient c2(H)"),
    }
    coords = {
        "dynamics": ["true", "learned"], "horizon": horizon, "param": list(PARAMS),
        "state": list(STATE), "state_in": list(STATE), "action": list(ACTION),
        "action_in": list(ACTION),
    }
    w = RunWriter.create(
        path, kind="gradient_error", env_id="DoubleIntegrator-v0", algorithm="maac-gradient-error",
        seed=0, config={"synthetic": True, "seeds": seeds, "horizons": horizons},
    )
    w.add_group("gradient_error", coords=coords, extra=extra, static=static)
    true_grad = np.array([-1.7, -0.8])
    for s in range(seeds):
        tg = true_grad + rng.normal(0, 0.02, size=2)
        eps_f = 0.05 + 0.01 * rng.random()
        eps_q = 0.4 + 0.1 * rng.random()
        q_err = rng.normal(0, eps_q, size=2)
        f_dir = rng.normal(0, 1, size=2)
        est = np.empty((2, horizons, 2))
        for h in horizon:
            est[0, h] = tg + q_err * gamma**h
            est[1, h] = tg + q_err * gamma**h + f_dir * eps_f * 0.02 * c1[h]
        l1 = np.abs(est - tg).sum(axis=-1)
        w.append(
            "gradient_error", seed=[s], true_grad=tg[None], est_grad=est[None], l1_error=l1[None],
            eps_f=[eps_f], eps_q=[eps_q],
        )
        w.commit()
    w.close()
    return path


def main() -> None:
    """Command line: write a synthetic store (and optionally its zip)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--zip", type=Path, default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--horizons", type=int, default=11)
    args = ap.parse_args()
    write_store(args.out, seeds=args.seeds, horizons=args.horizons)
    if args.zip:
        pack(args.out, args.zip)


if __name__ == "__main__":
    main()
