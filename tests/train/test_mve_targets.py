"""MVE critic targets (MVE Alg. 1) against explicit sums on a system we can step by hand."""

from __future__ import annotations

import numpy as np
import torch

from engine.agents.base import Batch, one_step_targets
from engine.models.dynamics_base import ModelState
from engine.train.mve import MVETargets


class _LinearWorld:
    """s' = 0.9 s + a, r = -s^2 - a^2 (per sample), terminal when s > 5."""

    def step(self, state: ModelState, action: torch.Tensor):
        nxt = 0.9 * state.obs + action
        r = -(state.obs**2).sum(1) - (action**2).sum(1)
        return ModelState(nxt), r, (nxt[:, 0] > 5.0).float()


class _Agent:
    """Target policy a = -0.5 s with entropy bonus 0.1, target value V(s) = -2 s^2."""

    gamma = 0.9

    def target_action(self, obs):
        return -0.5 * obs, torch.full((len(obs),), 0.1)

    def target_value(self, obs):
        return -2.0 * (obs**2).sum(1) + 0.1


def _batch(n=6, seed=0, terminated=None):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 1, generator=g)
    act = torch.randn(n, 1, generator=g)
    nxt = 0.9 * obs + act
    term = torch.zeros(n) if terminated is None else terminated
    return Batch(obs, act, -(obs**2).sum(1) - (act**2).sum(1), nxt, term)


def test_horizon_zero_is_the_one_step_target():
    b, agent = _batch(), _Agent()
    for tdk in (True, False):
        mve = MVETargets(_LinearWorld(), horizon=0, tdk=tdk)(b, agent)
        one = one_step_targets(b, agent)
        torch.testing.assert_close(mve.target, one.target)
        torch.testing.assert_close(mve.obs, b.obs)


def _explicit(s0, r_real, H, gamma=0.9):
    """y for the real pair and each imagined pair, by summing the expansion directly."""
    s = float(s0)
    states, rewards = [], []
    for _ in range(H):
        a = -0.5 * s
        states.append(s)
        rewards.append(-(s**2) - a**2)
        s = 0.9 * s + a
    v_end = -2.0 * s**2 + 0.1
    ys = []
    for t in range(H):  # pair t: sum_{k>=t} gamma^{k-t}(r_k + bonus_{k+1}) + gamma^{H-t} V
        y = 0.0
        for k in range(t, H):
            y += gamma ** (k - t) * rewards[k]
            if k + 1 < H:
                y += gamma ** (k - t + 1) * 0.1
        ys.append(y + gamma ** (H - t) * v_end)
    y_real = r_real + gamma * ((ys[0] + 0.1) if H else v_end)
    return y_real, ys, states


def test_tdk_targets_equal_explicit_sums_and_cover_imagined_states():
    b, agent, H = _batch(n=4), _Agent(), 3
    out = MVETargets(_LinearWorld(), horizon=H, tdk=True)(b, agent)
    assert len(out.target) == 4 * (H + 1)
    for i in range(4):
        y_real, ys, states = _explicit(b.next_obs[i, 0], float(b.reward[i]), H)
        assert np.isclose(float(out.target[i]), y_real, rtol=1e-5)
        for t in range(H):
            j = 4 * (t + 1) + i
            assert np.isclose(float(out.target[j]), ys[t], rtol=1e-5)
            assert np.isclose(float(out.obs[j, 0]), states[t], rtol=1e-6)


def test_naive_variant_trains_only_on_real_pairs_with_the_h_step_target():
    b, agent, H = _batch(n=5), _Agent(), 4
    out = MVETargets(_LinearWorld(), horizon=H, tdk=False)(b, agent)
    assert len(out.target) == 5
    for i in range(5):
        y_real, _, _ = _explicit(b.next_obs[i, 0], float(b.reward[i]), H)
        assert np.isclose(float(out.target[i]), y_real, rtol=1e-5)


def test_terminal_real_transition_does_not_bootstrap_and_drops_imagined_pairs():
    term = torch.tensor([1.0, 0.0])
    b, agent = _batch(n=2, terminated=term), _Agent()
    out = MVETargets(_LinearWorld(), horizon=2, tdk=True)(b, agent)
    assert np.isclose(float(out.target[0]), float(b.reward[0]))
    assert len(out.target) == 2 + 2  # only the live sample's imagined pairs


def test_targets_stay_one_step_until_the_model_is_ready():
    b, agent = _batch(), _Agent()
    fitted = []
    mve = MVETargets(_LinearWorld(), horizon=3, tdk=True, ready=lambda: bool(fitted))
    torch.testing.assert_close(mve(b, agent).target, one_step_targets(b, agent).target)
    fitted.append(True)
    assert len(mve(b, agent).target) == 4 * len(b.reward)
