"""The double integrator of MAAC Fig. 3: a point mass pushed by a force, linear-quadratic.

    s' = A s + B a + w,   A = [[1, dt], [0, 1]],  B = [[dt^2/2], [dt]],  w ~ N(0, noise^2 I)
    r  = -(s^T Q s + a^T R a)

`A`, `B`, `Q`, `R` and `Sigma0` (covariance of the initial state) are exposed for analytic work.
Episode length is gymnasium's: `gym.make("DoubleIntegrator-v0", max_episode_steps=N)` (default 100).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def double_integrator_matrices(dt: float) -> tuple[np.ndarray, np.ndarray]:
    """`A` (2x2) and `B` (2x1) of the exactly discretised double integrator with step `dt`."""
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([[0.5 * dt * dt], [dt]])
    return A, B


class DoubleIntegratorEnv(gym.Env[np.ndarray, np.ndarray]):
    """State (position, velocity), action (force,); quadratic cost as negative reward."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        dt: float = 0.1,
        Q: Any = ((1.0, 0.0), (0.0, 1.0)),
        R: Any = ((0.1,),),
        noise: float = 0.0,
        sigma0: Any = ((1.0, 0.0), (0.0, 1.0)),
        state_bound: float = 100.0,
        action_bound: float = 100.0,
    ) -> None:
        self.dt = float(dt)
        self.A, self.B = double_integrator_matrices(self.dt)
        self.Q = np.asarray(Q, dtype=np.float64)
        self.R = np.asarray(R, dtype=np.float64)
        self.Sigma0 = np.asarray(sigma0, dtype=np.float64)
        self.noise = float(noise)
        if self.Q.shape != (2, 2) or self.R.shape != (1, 1) or self.Sigma0.shape != (2, 2):
            raise ValueError("Q and sigma0 must be 2x2 and R 1x1")
        self._chol0 = np.linalg.cholesky(self.Sigma0)
        # Bounds only describe the spaces; the dynamics are unconstrained (linear system).
        self.observation_space = spaces.Box(-state_bound, state_bound, shape=(2,), dtype=np.float64)
        self.action_space = spaces.Box(-action_bound, action_bound, shape=(1,), dtype=np.float64)
        self._state = np.zeros(2)

    def reward(self, state: np.ndarray, action: np.ndarray) -> float:
        """r(s, a) = -(s^T Q s + a^T R a)."""
        return float(-(state @ self.Q @ state + action @ self.R @ action))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "state" in options:
            self._state = np.asarray(options["state"], dtype=np.float64).copy()
        else:
            self._state = self._chol0 @ self.np_random.standard_normal(2)
        return self._state.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(1)
        r = self.reward(self._state, a)
        w = self.noise * self.np_random.standard_normal(2) if self.noise > 0 else 0.0
        self._state = self.A @ self._state + self.B @ a + w
        # Episode length is gymnasium's TimeLimit: gym.make(..., max_episode_steps=N).
        return self._state.copy(), r, False, False, {}
