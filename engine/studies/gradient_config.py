"""Configuration of the gradient-error study (torch-free, so `--help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.envs.double_integrator import double_integrator_matrices

STATE = ["position", "velocity"]
ACTION = ["force"]


@dataclass(frozen=True)
class GradientErrorConfig:
    """Everything that determines a gradient-error study (saved in the store as JSON)."""

    seeds: int = 10
    """Number of seeds (independent data sets, models and critics)."""
    horizon_max: int = 30
    """Largest model horizon H; the study covers H = 0..horizon_max."""
    gamma: float = 0.9
    """Discount factor."""
    dt: float = 0.1
    """Integration step of the double integrator."""
    gain: tuple[float, float] = (-1.0, -1.5)
    """Policy gain K = [k_position, k_velocity] at which the gradient is taken."""
    q_diag: tuple[float, float] = (1.0, 1.0)
    """Diagonal of the state cost Q."""
    r: float = 0.1
    """Action cost R."""
    sigma0_diag: tuple[float, float] = (1.0, 1.0)
    """Diagonal of the initial-state covariance Sigma0."""
    data_size: int = 600
    """Transitions collected per seed to fit the model and the critic."""
    episode_length: int = 20
    """Length of the data-collection episodes (each starts from s0 ~ N(0, Sigma0))."""
    noise: float = 0.05
    """Process-noise standard deviation of the data (the objective J is noise-free)."""
    explore: float = 0.5
    """Standard deviation of the exploration noise added to K s in the data."""
    model: str = "mlp"
    """Learned dynamics class: "mlp" (state deltas, 2x64 tanh) or "linear" (least squares)."""
    critic: str = "mlp"
    """Critic class: "mlp" (fitted Q-evaluation) or "quadratic" (LSTD-Q on quadratic features)."""
    hidden: int = 64
    """Hidden width of the MLP model and critic."""
    model_steps: int = 600
    """Full-batch Adam steps to fit the MLP model."""
    critic_iterations: int = 40
    """Fitted-Q-evaluation iterations of the MLP critic."""
    critic_steps: int = 25
    """Adam steps per fitted-Q-evaluation iteration."""
    start_states: int = 512
    """Moment-matched samples of s0 for the expectation in J_H."""
    base_seed: int = 0
    """Seed i of the study uses base_seed + i."""

    def __post_init__(self) -> None:
        if self.model not in ("mlp", "linear"):
            raise ValueError(f"model must be 'mlp' or 'linear', not {self.model!r}")
        if self.critic not in ("mlp", "quadratic"):
            raise ValueError(f"critic must be 'mlp' or 'quadratic', not {self.critic!r}")
        if self.seeds < 1 or self.horizon_max < 0 or self.data_size < 10:
            raise ValueError("need seeds >= 1, horizon_max >= 0 and data_size >= 10")
        if not 0.0 < self.gamma < 1.0:
            raise ValueError("gamma must be in (0, 1)")

    def matrices(self) -> dict[str, np.ndarray]:
        """A, B, Q, R, K, Sigma0 of the problem."""
        A, B = double_integrator_matrices(self.dt)
        return {
            "A": A, "B": B, "Q": np.diag(self.q_diag), "R": np.array([[self.r]]),
            "K": np.array([self.gain], dtype=np.float64), "Sigma0": np.diag(self.sigma0_diag),
        }

    def params(self) -> list[str]:
        """Labels of the policy parameters, in K's row-major order."""
        return [f"K[{a},{s}]" for a in ACTION for s in STATE]
