"""Learned reward and termination models (SVG eqs. 12-13) on real data."""

from __future__ import annotations

import numpy as np
import torch
from modelkit import collect, t32

from engine.models.dynamics_base import ModelState, Transitions
from engine.models.extras import RewardModel, TerminationModel, TransitionModelConfig
from engine.models.imagination import ModelImagination
from engine.models.known import known_functions
from engine.models.training import FitConfig

FAST = FitConfig(max_epochs=30, batch_size=64)


def test_reward_model_learns_halfcheetah_rewards_from_transitions() -> None:
    # default observations (no x): an MLP fed raw x extrapolates badly to unseen positions
    short = {"max_episode_steps": 100}  # many short episodes: cover more of the start-state spread
    train, test = collect("HalfCheetah-v5", 2000, seed=0, **short), collect("HalfCheetah-v5", 500, seed=1, **short)
    model = RewardModel(17, 6, TransitionModelConfig(hidden=64, fit=FAST))
    metrics = model.fit(train)
    with torch.no_grad():
        pred = model(t32(test.obs), t32(test.action), t32(test.next_obs)).numpy()
    assert pred.shape == (500,)
    mse, variance = np.mean((pred - test.reward) ** 2), np.var(test.reward)
    assert mse < 0.1 * variance, (mse, variance, metrics)


def test_termination_model_learns_when_the_pendulum_falls(pendulum_data: tuple[Transitions, Transitions]) -> None:
    train, test = pendulum_data
    model = TerminationModel(4, 1, TransitionModelConfig(inputs="next_obs", hidden=32, fit=FAST))
    metrics = model.fit(train)
    with torch.no_grad():
        p = model(t32(test.obs), t32(test.action), t32(test.next_obs)).double().numpy()
    y = test.terminated.astype(np.float64)
    bce = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
    rate = y.mean()
    constant = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))  # best constant predictor
    assert 0.05 < rate < 0.5
    assert bce < 0.3 * constant, (bce, constant, metrics)
    assert np.mean((p > 0.5) == test.terminated) > 0.95


def test_imagination_combines_a_model_with_known_functions(pendulum_data: tuple[Transitions, Transitions]) -> None:
    _, test = pendulum_data

    class Exact:
        """Replays the recorded next observations: the imagined reward must be the env's."""

        differentiable = False

        def step(self, state: ModelState, action: torch.Tensor) -> ModelState:
            return ModelState(obs=torch.as_tensor(test.next_obs))

    imagine = ModelImagination.with_known(Exact(), known_functions("InvertedPendulum-v5"))
    nxt, reward, done = imagine.step(ModelState(obs=torch.as_tensor(test.obs)), torch.as_tensor(test.action))
    np.testing.assert_array_equal(reward.numpy(), test.reward)
    np.testing.assert_array_equal(done.numpy(), test.terminated.astype(np.float64))
