"""The MAAC estimator, models and critics of Study 4 against exact answers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import engine.envs  # noqa: F401
from engine.studies import gradient_fit as fit
from engine.studies import lqr
from engine.studies.gradient_config import GradientErrorConfig
from engine.studies.gradient_error import critic_gradient_error, maac_gradients, model_jacobian_error

CFG = GradientErrorConfig()
M = CFG.matrices()
A, B, Q, R, K, S0 = (M[k] for k in ("A", "B", "Q", "R", "K", "Sigma0"))


def test_estimate_with_exact_dynamics_and_critic_is_the_truncated_series():
    W = lqr.q_hessian(A, B, Q, R, K, CFG.gamma)
    s0 = fit.moment_matched_normal(S0, 64, np.random.default_rng(3))
    est = maac_gradients(fit.linear_dynamics(A, B), fit.exact_critic(W), K, Q, R, s0, CFG.gamma, 30)
    for H in range(31):
        series = lqr.truncated_gradient(A, B, Q, R, K, S0, CFG.gamma, H).reshape(-1)
        np.testing.assert_allclose(est[H], series, rtol=1e-6, atol=1e-9)


def test_moment_matched_samples_have_exact_moments():
    s = fit.moment_matched_normal(S0, 100, np.random.default_rng(0))
    np.testing.assert_allclose(s.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.T @ s / len(s), S0, atol=1e-12)


def test_env_steps_the_linear_system_and_pays_the_quadratic_cost():
    env = gym.make("DoubleIntegrator-v0", dt=0.1, noise=0.0, max_episode_steps=3)
    s, _ = env.reset(seed=1)
    a = np.array([0.3])
    s2, r, term, trunc, _ = env.step(a)
    u = env.unwrapped
    np.testing.assert_allclose(s2, u.A @ s + u.B @ a, atol=1e-15)
    assert r == pytest.approx(-(s @ u.Q @ s + a @ u.R @ a))
    assert not term and not trunc
    env.step(a)
    assert env.step(a)[3]  # TimeLimit truncates at max_episode_steps


def test_noise_free_data_recovers_model_and_critic_exactly():
    env_kwargs = {"dt": CFG.dt, "Q": Q, "R": R, "noise": 0.0, "sigma0": S0}
    data = fit.collect(env_kwargs, K, 300, 20, 0.5, seed=0)
    s0 = fit.moment_matched_normal(S0, 64, np.random.default_rng(0))
    f = fit.fit_linear_dynamics(data)
    assert model_jacobian_error(f, A, B, K, s0, 5) < 1e-8
    critic = fit.fit_quadratic_critic(data, K, CFG.gamma)
    W = lqr.q_hessian(A, B, Q, R, K, CFG.gamma)
    assert critic_gradient_error(critic, W, K, s0) < 1e-6
    est = maac_gradients(f, critic, K, Q, R, s0, CFG.gamma, 10)
    true = lqr.analytic_gradient(A, B, Q, R, K, S0, CFG.gamma).reshape(-1)
    # exact model and critic: the estimate at every H is the truncated series, and with the
    # exact Q^K that series converges to the analytic gradient
    series = lqr.truncated_gradient(A, B, Q, R, K, S0, CFG.gamma, 10).reshape(-1)
    np.testing.assert_allclose(est[10], series, rtol=1e-5)
    assert np.abs(est[0] - true).sum() > np.abs(est[10] - true).sum()


def test_noisy_data_gives_measurable_model_and_critic_errors():
    env_kwargs = {"dt": CFG.dt, "Q": Q, "R": R, "noise": 0.05, "sigma0": S0}
    data = fit.collect(env_kwargs, K, 200, 20, 0.5, seed=0)
    s0 = fit.moment_matched_normal(S0, 64, np.random.default_rng(0))
    W = lqr.q_hessian(A, B, Q, R, K, CFG.gamma)
    assert model_jacobian_error(fit.fit_linear_dynamics(data), A, B, K, s0, 5) > 1e-4
    assert critic_gradient_error(fit.fit_quadratic_critic(data, K, CFG.gamma), W, K, s0) > 1e-3


def test_mlp_dynamics_fit_learns_the_system():
    env_kwargs = {"dt": CFG.dt, "Q": Q, "R": R, "noise": 0.0, "sigma0": S0}
    data = fit.collect(env_kwargs, K, 400, 20, 0.5, seed=0)
    f = fit.fit_mlp_dynamics(data, hidden=64, steps=600)
    s0 = fit.moment_matched_normal(S0, 64, np.random.default_rng(0))
    err = model_jacobian_error(f, A, B, K, s0, 1)
    assert err < 0.1  # ||[A B]||_2 is about 1.05: a 10 % Jacobian error at most
