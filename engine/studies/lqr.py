"""Closed-form quantities of a discounted linear-quadratic problem with a linear policy a = K s.

Conventions (STUDIES.md, Study 4): s' = A s + B a, r = -(s^T Q s + a^T R a), M = A + B K,
J(K) = E_{s0 ~ N(0, Sigma0)} [sum_t gamma^t r_t] = -tr(P_K Sigma0) with

    P_K     = Q + K^T R K + gamma M^T P_K M
    Sigma_K = Sigma0 + gamma M Sigma_K M^T
    dJ/dK   = -2 [(R + gamma B^T P_K B) K + gamma B^T P_K A] Sigma_K

All functions are numpy/scipy only, so the tests can check them against finite differences.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_discrete_lyapunov


def closed_loop(A: np.ndarray, B: np.ndarray, K: np.ndarray) -> np.ndarray:
    """M = A + B K."""
    return A + B @ K


def check_stable(A: np.ndarray, B: np.ndarray, K: np.ndarray, gamma: float) -> None:
    """Raise if the discounted closed loop diverges (J would be infinite)."""
    rho = max(abs(np.linalg.eigvals(closed_loop(A, B, K))))
    if gamma * rho**2 >= 1.0:
        raise ValueError(
            f"policy gain K={K.tolist()} gives closed-loop spectral radius {rho:.3f}; "
            f"gamma * rho^2 = {gamma * rho**2:.3f} >= 1, so the discounted return diverges"
        )


def value_matrix(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, K: np.ndarray, gamma: float) -> np.ndarray:
    """P_K: V^K(s) = -s^T P_K s (for noise-free dynamics)."""
    M = closed_loop(A, B, K)
    return solve_discrete_lyapunov(np.sqrt(gamma) * M.T, Q + K.T @ R @ K)


def state_weighting(A: np.ndarray, B: np.ndarray, K: np.ndarray, Sigma0: np.ndarray, gamma: float) -> np.ndarray:
    """Sigma_K = sum_t gamma^t M^t Sigma0 M^t^T (discounted state second moment)."""
    M = closed_loop(A, B, K)
    return solve_discrete_lyapunov(np.sqrt(gamma) * M, Sigma0)


def objective(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, K: np.ndarray, Sigma0: np.ndarray, gamma: float) -> float:
    """J(K) = -tr(P_K Sigma0)."""
    return float(-np.trace(value_matrix(A, B, Q, R, K, gamma) @ Sigma0))


def gain_error_matrix(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, K: np.ndarray, gamma: float) -> np.ndarray:
    """E_K = (R + gamma B^T P B) K + gamma B^T P A, so that dQ^K/da at a = K s is -2 E_K s."""
    P = value_matrix(A, B, Q, R, K, gamma)
    return (R + gamma * B.T @ P @ B) @ K + gamma * B.T @ P @ A


def analytic_gradient(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, K: np.ndarray, Sigma0: np.ndarray, gamma: float) -> np.ndarray:
    """dJ/dK, same shape as K."""
    E = gain_error_matrix(A, B, Q, R, K, gamma)
    return -2.0 * E @ state_weighting(A, B, K, Sigma0, gamma)


def truncated_gradient(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, K: np.ndarray, Sigma0: np.ndarray, gamma: float, H: int) -> np.ndarray:
    """-2 E_K sum_{t<=H} gamma^t M^t Sigma0 M^t^T: the MAAC estimate with exact f and Q^K."""
    E = gain_error_matrix(A, B, Q, R, K, gamma)
    M = closed_loop(A, B, K)
    S = np.zeros_like(Sigma0)
    Mt = np.eye(len(A))
    for t in range(H + 1):
        S += gamma**t * Mt @ Sigma0 @ Mt.T
        Mt = M @ Mt
    return -2.0 * E @ S


def q_hessian(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, K: np.ndarray, gamma: float) -> np.ndarray:
    """W such that Q^K(s, a) = -x^T W x + const, x = (s, a) (constant only with noise)."""
    P = value_matrix(A, B, Q, R, K, gamma)
    F = np.hstack([A, B])
    n, m = B.shape
    blocks = np.zeros((n + m, n + m))
    blocks[:n, :n] = Q
    blocks[n:, n:] = R
    return blocks + gamma * F.T @ P @ F


def lemma_bound_coefficients(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, K: np.ndarray, gamma: float, H_max: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """c1(H), c2(H) of MAAC Lemma 4.1 (proof in its appendix A.1), for H = 0..H_max.

        c1(H) = gamma^H L_Q Kg^H (L^H - 1)/(L - 1) + sum_{t<H} gamma^t L_r Kg^t (L^{t+1} - 1)/(L - 1)
        c2(H) = gamma^H Kg^H

    with the constants taken from the true system: L_f = ||[A B]||_2, L_pi = ||K||_2,
    L = L_f (1 + L_pi), Kg = max(1, ||M||_2) (growth of d x_t / d theta), L_Q = ||2 W||_2 (W the
    Hessian of -Q^K), L_r = ||2 blockdiag(Q, R)||_2. The bound is loose; only its shape is
    meaningful, so the app scales it to the measured error at H = 0.
    """
    n, m = B.shape
    L_f = np.linalg.norm(np.hstack([A, B]), 2)
    L_pi = np.linalg.norm(K, 2)
    L = L_f * (1.0 + L_pi)
    Kg = max(1.0, float(np.linalg.norm(closed_loop(A, B, K), 2)))
    L_Q = float(np.linalg.norm(2.0 * q_hessian(A, B, Q, R, K, gamma), 2))
    blocks = np.zeros((n + m, n + m))
    blocks[:n, :n], blocks[n:, n:] = Q, R
    L_r = float(np.linalg.norm(2.0 * blocks, 2))

    def geo(k: int) -> float:  # (L^k - 1)/(L - 1) = sum_{i<k} L^i, finite at L = 1
        return float(sum(L**i for i in range(k)))

    c1 = np.zeros(H_max + 1)
    c2 = np.zeros(H_max + 1)
    for H in range(H_max + 1):
        c2[H] = (gamma * Kg) ** H
        model_terms = sum(gamma**t * L_r * Kg**t * geo(t + 1) for t in range(H))
        c1[H] = (gamma * Kg) ** H * L_Q * geo(H) + model_terms
    consts = {"L_f": float(L_f), "L_pi": float(L_pi), "L": float(L), "K_growth": Kg, "L_Q": L_Q, "L_r": L_r}
    return c1, c2, consts
