"""Time-varying linear-Gaussian dynamics (NAF sec. 5.3): exact on a linear system's own rollouts,
equal to per-step least squares without a prior, newest episodes only, time index honoured."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import engine.envs  # noqa: F401  (registers DoubleIntegrator-v0)
from engine.models.dynamics_base import Transitions
from engine.models.linear_tv import LinearTVConfig, LinearTVDynamics


def _episodes(env: gym.Env, n: int, rng: np.random.Generator, seed: int = 0) -> Transitions:
    rows: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "next_obs", "terminated", "episode")}
    for e in range(n):
        obs, _ = env.reset(seed=seed + e)
        done = False
        while not done:
            a = rng.normal(size=env.action_space.shape)
            nxt, r, term, trunc, _ = env.step(a)
            for k, v in zip(rows, (obs, a, r, nxt, term, e), strict=True):
                rows[k].append(v)
            obs, done = nxt, term or trunc
    return Transitions(**{k: np.asarray(v) for k, v in rows.items()})


@pytest.mark.parametrize("prior_strength", [0.0, 1.0, 10.0])
def test_recovers_double_integrator_exactly(prior_strength: float) -> None:
    env = gym.make("DoubleIntegrator-v0", max_episode_steps=20)  # noise-free
    data = _episodes(env, 5, np.random.default_rng(0))
    # five samples in three dimensions: the plain per-step fit is exact only without the ridge
    ridge = 0.0 if prior_strength == 0 else LinearTVConfig.ridge
    model = LinearTVDynamics(2, 1, LinearTVConfig(prior_strength=prior_strength, ridge=ridge))
    model.fit(data)
    A, B = env.unwrapped.A, env.unwrapped.B
    assert model.horizon == 20
    for t in range(model.horizon):
        np.testing.assert_allclose(model.F[t][:, :2], A, atol=1e-6)
        np.testing.assert_allclose(model.F[t][:, 2:], B, atol=1e-6)
        np.testing.assert_allclose(model.f[t], 0.0, atol=1e-6)
        np.testing.assert_allclose(model.N[t], 0.0, atol=1e-6)


def _time_varying_data(n_episodes: int, T: int, noise: float, seed: int, shift: float = 0.0
                       ) -> tuple[Transitions, np.ndarray, np.ndarray]:
    """x' = A_t x + B_t u + c_t + noise, with A_t, B_t, c_t different at every t."""
    rng = np.random.default_rng(seed)
    A = np.eye(3) + 0.1 * rng.normal(size=(T, 3, 3)) + shift
    B = rng.normal(size=(T, 3, 2))
    c = rng.normal(size=(T, 3))
    obs, act, nxt, ep = [], [], [], []
    for e in range(n_episodes):
        x = rng.normal(size=3)
        for t in range(T):
            u = rng.normal(size=2)
            y = A[t] @ x + B[t] @ u + c[t] + noise * rng.normal(size=3)
            obs.append(x), act.append(u), nxt.append(y), ep.append(e)
            x = y
    n = len(obs)
    data = Transitions(np.array(obs), np.array(act), np.zeros(n), np.array(nxt), np.zeros(n, bool),
                       np.array(ep))
    return data, np.concatenate([A, B], axis=2), c


def test_without_prior_equals_per_step_least_squares() -> None:
    data, _, _ = _time_varying_data(n_episodes=40, T=6, noise=0.3, seed=1)
    model = LinearTVDynamics(3, 2, LinearTVConfig(episodes=40, prior_strength=0.0, ridge=0.0))
    model.fit(data)
    t = np.tile(np.arange(6), 40)
    for step in range(6):
        xu = np.concatenate([data.obs, data.action], axis=1)[t == step]
        design = np.concatenate([xu, np.ones((len(xu), 1))], axis=1)
        coef, *_ = np.linalg.lstsq(design, data.next_obs[t == step], rcond=None)
        np.testing.assert_allclose(model.F[step], coef[:5].T, atol=1e-9)
        np.testing.assert_allclose(model.f[step], coef[5], atol=1e-9)
        residual = data.next_obs[t == step] - design @ coef
        np.testing.assert_allclose(model.N[step], residual.T @ residual / len(xu), atol=1e-9)


def test_uses_the_newest_episodes_only() -> None:
    old, _, _ = _time_varying_data(n_episodes=8, T=4, noise=0.0, seed=2, shift=0.5)
    new, FB, c = _time_varying_data(n_episodes=8, T=4, noise=0.0, seed=3)
    data = Transitions(*(np.concatenate([getattr(old, k), getattr(new, k) + (8 if k == "episode" else 0)])
                         for k in ("obs", "action", "reward", "next_obs", "terminated", "episode")))
    model = LinearTVDynamics(3, 2, LinearTVConfig(episodes=8, prior_strength=0.0, ridge=0.0))
    model.fit(data)
    np.testing.assert_allclose(model.F, FB, atol=1e-6)
    np.testing.assert_allclose(model.f, c, atol=1e-6)


def test_rollout_follows_the_time_index() -> None:
    data, FB, c = _time_varying_data(n_episodes=8, T=5, noise=0.0, seed=4)
    model = LinearTVDynamics(3, 2, LinearTVConfig(episodes=8, prior_strength=0.0, ridge=0.0))
    model.fit(data)
    rng = np.random.default_rng(5)
    x0, u = rng.normal(size=(4, 3)), rng.normal(size=(4, 3, 2))  # start at t = 1, 3 steps
    pred = model.rollout(model.initial_state(torch.as_tensor(x0), 1), torch.as_tensor(u)).numpy()
    x = x0
    for k in range(3):
        x = np.einsum("ij,bj->bi", FB[1 + k], np.concatenate([x, u[:, k]], axis=1)) + c[1 + k]
        np.testing.assert_allclose(pred[:, k], x, atol=1e-6)
    # past the last fitted step, the last step's model
    late = model.step(model.initial_state(torch.as_tensor(x0), 99), torch.as_tensor(u[:, 0])).obs.numpy()
    expected = np.einsum("ij,bj->bi", FB[4], np.concatenate([x0, u[:, 0]], axis=1)) + c[4]
    np.testing.assert_allclose(late, expected, atol=1e-6)


def test_sample_mode_has_the_fitted_noise() -> None:
    data, _, _ = _time_varying_data(n_episodes=400, T=2, noise=0.5, seed=6)
    model = LinearTVDynamics(3, 2, LinearTVConfig(episodes=400, prior_strength=0.0, step_mode="sample"))
    model.fit(data)
    n = 40_000
    state = model.initial_state(torch.zeros(n, 3, dtype=torch.float64), 0)
    out = model.step(state, torch.zeros(n, 2, dtype=torch.float64)).obs.numpy()
    np.testing.assert_allclose(out.mean(0), model.f[0], atol=0.02)
    np.testing.assert_allclose(np.cov(out.T), model.N[0], atol=0.02)
    np.testing.assert_allclose(model.N[0], 0.25 * np.eye(3), atol=0.05)  # the data's own noise


def test_gradients_flow_through_step() -> None:
    data, FB, _ = _time_varying_data(n_episodes=8, T=3, noise=0.0, seed=7)
    model = LinearTVDynamics(3, 2, LinearTVConfig(episodes=8, prior_strength=0.0, ridge=0.0))
    model.fit(data)
    u = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    model.step(model.initial_state(torch.zeros(1, 3, dtype=torch.float64), 2), u).obs.sum().backward()
    np.testing.assert_allclose(u.grad.numpy()[0], FB[2][:, 3:].sum(0), atol=1e-6)


def test_step_before_fit_is_an_error() -> None:
    model = LinearTVDynamics(2, 1)
    with pytest.raises(RuntimeError, match="before fit"):
        model.step(model.initial_state(torch.zeros(1, 2)), torch.zeros(1, 1))


def test_fit_indexes_by_the_given_step_across_removed_rows() -> None:
    # the replay's model_data drops held-out blocks and renumbers what is left as segments: the
    # time index must come from `step`, not from positions within the segments
    data, FB, c = _time_varying_data(n_episodes=8, T=6, noise=0.0, seed=8)
    t = np.tile(np.arange(6), 8)
    keep = ~np.isin(np.arange(len(t)) // 2, [1, 9, 12, 19])  # holes: ep 0 t 2-3, 3 and 4 t 0-1, 6 t 2-3
    rows = np.flatnonzero(keep)
    # as Replay.model_data: a new segment id at every episode change and after every hole
    segment = np.cumsum(np.r_[True, (np.diff(rows) > 1) | (np.diff(data.episode[rows]) != 0)])
    gappy = Transitions(*(getattr(data, k)[keep] for k in ("obs", "action", "reward", "next_obs", "terminated")),
                        episode=segment, step=t[keep])
    model = LinearTVDynamics(3, 2, LinearTVConfig(episodes=8, prior_strength=0.0, ridge=0.0))
    model.fit(gappy)
    np.testing.assert_allclose(model.F, FB, atol=1e-6)
    np.testing.assert_allclose(model.f, c, atol=1e-6)
    # the newest `episodes` episodes are counted where the step fails to rise, not by segment
    newest = LinearTVDynamics(3, 2, LinearTVConfig(episodes=3))
    metrics = newest.fit(gappy)
    assert metrics["n_train"] == keep[-18:].sum() == 16  # episodes 5-7's kept rows (the newest 3
    # segments, 6a, 6b and 7, have 10)
