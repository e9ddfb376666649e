"""The analytic side of Study 4, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.envs import double_integrator_matrices
from engine.studies import lqr

Q = np.diag([1.0, 0.5])
R = np.array([[0.1]])
S0 = np.array([[1.0, 0.2], [0.2, 0.5]])


def _fd_gradient(A, B, K, gamma, h=1e-5):
    g = np.zeros_like(K)
    for idx in np.ndindex(K.shape):
        e = np.zeros_like(K)
        e[idx] = h
        g[idx] = (lqr.objective(A, B, Q, R, K + e, S0, gamma) - lqr.objective(A, B, Q, R, K - e, S0, gamma)) / (2 * h)
    return g


@settings(max_examples=25, deadline=None)
@given(
    k_pos=st.floats(-2.0, -0.2), k_vel=st.floats(-2.5, -0.3), gamma=st.floats(0.5, 0.99),
    dt=st.sampled_from([0.05, 0.1, 0.2]),
)
def test_analytic_gradient_matches_central_differences(k_pos, k_vel, gamma, dt):
    A, B = double_integrator_matrices(dt)
    K = np.array([[k_pos, k_vel]])
    rho = max(abs(np.linalg.eigvals(A + B @ K)))
    if gamma * rho**2 > 0.995:  # too close to divergence for finite differences
        return
    g = lqr.analytic_gradient(A, B, Q, R, K, S0, gamma)
    fd = _fd_gradient(A, B, K, gamma)
    assert np.linalg.norm(g - fd) / np.linalg.norm(fd) < 1e-6


def test_objective_equals_discounted_sum_of_rewards():
    """-tr(P Sigma0) against summing gamma^t r_t over a long horizon (Sigma0 via its square root)."""
    A, B = double_integrator_matrices(0.1)
    K = np.array([[-0.5, -1.0]])
    gamma = 0.95
    M = A + B @ K
    L = np.linalg.cholesky(S0)
    total = 0.0
    for col in L.T:  # E[s^T W s] = sum over columns of chol(Sigma0)
        s = col.copy()
        for t in range(2000):
            a = K @ s
            total += gamma**t * -(s @ Q @ s + a @ R @ a)
            s = M @ s
    assert lqr.objective(A, B, Q, R, K, S0, gamma) == pytest.approx(total, rel=1e-10)


def test_truncated_series_tends_to_the_analytic_gradient():
    A, B = double_integrator_matrices(0.1)
    K = np.array([[-0.5, -1.0]])
    g = lqr.analytic_gradient(A, B, Q, R, K, S0, 0.95)
    far = lqr.truncated_gradient(A, B, Q, R, K, S0, 0.95, 2000)
    near = lqr.truncated_gradient(A, B, Q, R, K, S0, 0.95, 3)
    np.testing.assert_allclose(far, g, rtol=1e-10)
    assert np.abs(near - g).sum() > 1e-3  # truncation matters at short H


def test_unstable_gain_is_refused():
    A, B = double_integrator_matrices(0.1)
    with pytest.raises(ValueError, match="diverges"):
        lqr.check_stable(A, B, np.array([[1.0, 1.0]]), 0.95)


def test_lemma_coefficients_follow_the_appendix_recursion():
    A, B = double_integrator_matrices(0.1)
    K = np.array([[-0.5, -1.0]])
    gamma = 0.95
    c1, c2, c = lqr.lemma_bound_coefficients(A, B, Q, R, K, gamma, 5)
    # H = 0: no model step, the error is the critic's alone.
    assert c1[0] == 0.0 and c2[0] == 1.0
    # H = 1 by hand: gamma Kg L_Q (L - 1)/(L - 1) + L_r (L - 1)/(L - 1)
    assert c1[1] == pytest.approx(gamma * c["K_growth"] * c["L_Q"] + c["L_r"])
    assert c2[3] == pytest.approx((gamma * c["K_growth"]) ** 3)
    assert np.all(np.diff(c1) > 0)
