"""Save and restore the state of a gymnasium MuJoCo env so that stepping is bit-exact.

`set_state(qpos, qvel)` alone reproduces the next observation only to ~1e-14 on contact-rich
models (Hopper, Walker2d): MuJoCo's constraint solver starts from `qacc_warmstart`, the
acceleration of the previous step, and a different starting point converges to a slightly
different answer. So the stored "sim state" is

    [qpos (nq), qvel (nv), act (na), qacc_warmstart (nv)]      float64, size nq + 2 nv + na

which keeps qpos then qvel first (consumers that want only those slice `[:nq + nv]`) and is
bit-exact for every task here (tested). Sizes: HalfCheetah-v5 27, Hopper-v5 18, Walker2d-v5 27,
InvertedPendulum-v5 6 (none has actuator activations, na = 0). The rest of MuJoCo's
`mjSTATE_INTEGRATION` (time, ctrl, applied forces, mocap, userdata, plugins; 58-91 numbers
here) is either overwritten by `env.step` or unused by these models, so it is not stored.

A state of only qpos and qvel (size nq + nv) is also accepted: the warm start is then zeroed,
which makes the result independent of the env's history but only ~1e-14 exact.
"""

from __future__ import annotations

import warnings
from typing import Any

import mujoco
import numpy as np


def _model_data(env: Any) -> tuple[mujoco.MjModel, mujoco.MjData]:
    inner = getattr(env, "unwrapped", env)
    if not hasattr(inner, "model") or not isinstance(inner.model, mujoco.MjModel):
        raise TypeError(f"{type(inner).__name__} is not a MuJoCo env (no mujoco.MjModel at .model)")
    return inner.model, inner.data


def sim_state_size(env: Any) -> int:
    """Length of the vector `get_sim_state` returns for this env: nq + 2 nv + na."""
    m, _ = _model_data(env)
    return m.nq + 2 * m.nv + m.na


def get_sim_state(env: Any) -> np.ndarray:
    """The env's simulator state (see module doc), a fresh float64 array."""
    _, d = _model_data(env)
    return np.concatenate([d.qpos, d.qvel, d.act, d.qacc_warmstart]).astype(np.float64)


def set_sim_state(env: Any, state: np.ndarray) -> None:
    """Restore a state from `get_sim_state` (bit-exact) or a bare qpos+qvel (~1e-14)."""
    m, d = _model_data(env)
    state = np.asarray(state, dtype=np.float64)
    nq, nv, na = m.nq, m.nv, m.na
    if state.shape == (nq + 2 * nv + na,):
        act, warm = state[nq + nv:nq + nv + na], state[nq + nv + na:]
    elif state.shape == (nq + nv,):
        act, warm = np.zeros(na), np.zeros(nv)
    else:
        raise ValueError(
            f"sim state must have {nq + 2 * nv + na} (full) or {nq + nv} (qpos, qvel) entries, "
            f"got shape {state.shape}"
        )
    d.qpos[:] = state[:nq]
    d.qvel[:] = state[nq:nq + nv]
    d.act[:] = act
    # mj_forward makes positions-dependent quantities (xpos, contacts) consistent for anyone
    # reading data before the next step; it does not touch qacc_warmstart, set after it anyway.
    mujoco.mj_forward(m, d)
    d.qacc_warmstart[:] = warm


def _forward_warning(msg: str) -> None:
    # gymnasium's XML still uses `settotalmass`; mujoco 4 deprecates it on every env creation.
    if "settotalmass" not in msg:
        warnings.warn(f"MuJoCo: {msg.strip()}", RuntimeWarning, stacklevel=2)


def quiet_mujoco_warnings() -> None:
    """Route MuJoCo warnings to Python `warnings` instead of MUJOCO_LOG.TXT in the working
    directory, dropping the settotalmass deprecation notice (process-wide; idempotent)."""
    mujoco.set_mju_user_warning(_forward_warning)
