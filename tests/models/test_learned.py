"""Deterministic MLP and GRU dynamics on real InvertedPendulum-v5 data; the training helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modelkit import one_step_errors, t32

from engine.models import DYNAMICS, make_dynamics, model_config_class
from engine.models.deterministic import MLPDynamics, MLPDynamicsConfig
from engine.models.dynamics_base import ModelState, Transitions
from engine.models.gru import GRUDynamics, GRUDynamicsConfig, sequence_starts
from engine.models.training import FitConfig, episode_positions, fit_early_stopping, holdout_mask, mark_fitted

# tests pick the fitted models by name (getfixturevalue): one xdist worker builds them once
pytestmark = pytest.mark.xdist_group("test_learned")

FAST = FitConfig(max_epochs=30, batch_size=64)


@pytest.fixture(scope="module")
def fitted_mlp(pendulum_data: tuple[Transitions, Transitions]) -> tuple[MLPDynamics, dict[str, float]]:
    train, _ = pendulum_data
    model = MLPDynamics(4, 1, MLPDynamicsConfig(hidden=64, layers=2, fit=FAST))
    return model, model.fit(train)


@pytest.fixture(scope="module")
def fitted_gru(pendulum_data: tuple[Transitions, Transitions]) -> tuple[GRUDynamics, dict[str, float]]:
    train, _ = pendulum_data
    model = GRUDynamics(4, 1, GRUDynamicsConfig(seq_len=3, hidden=48, mlp_hidden=48, mlp_layers=1, fit=FAST))
    return model, model.fit(train)


@pytest.mark.parametrize("which", ["fitted_mlp", "fitted_gru"])
def test_one_step_error_is_far_below_predicting_no_change(which: str, request: pytest.FixtureRequest,
                                                         pendulum_data: tuple[Transitions, Transitions]) -> None:
    model, metrics = request.getfixturevalue(which)
    train, test = pendulum_data
    err, baseline = one_step_errors(model, train, test)
    assert err < 0.05 * baseline, (err, baseline, metrics)
    assert metrics["holdout_loss"] < 0.1  # standardised units: a fitted model, not a mean predictor


@pytest.mark.parametrize("which", ["fitted_mlp", "fitted_gru"])
def test_rollout_equals_repeated_steps_and_is_differentiable(which: str, request: pytest.FixtureRequest,
                                                            pendulum_data: tuple[Transitions, Transitions]) -> None:
    model, _ = request.getfixturevalue(which)
    _, test = pendulum_data
    obs = t32(test.obs[:8])
    actions = torch.randn(8, 6, 1, generator=torch.Generator().manual_seed(0)).requires_grad_()
    traj = model.rollout(ModelState(obs=obs), actions)
    assert traj.shape == (8, 6, 4)
    state = ModelState(obs=obs)
    for t in range(6):
        state = model.step(state, actions[:, t])
        assert torch.equal(state.obs, traj[:, t])
    traj[:, -1].sum().backward()
    assert model.differentiable and actions.grad is not None and actions.grad[:, 0].abs().sum() > 0


def test_gru_carries_its_hidden_state(fitted_gru: tuple[GRUDynamics, dict[str, float]],
                                      pendulum_data: tuple[Transitions, Transitions]) -> None:
    model, _ = fitted_gru
    _, test = pendulum_data
    obs, action = t32(test.obs[:5]), t32(test.action[:5])
    with torch.no_grad():
        first = model.step(ModelState(obs=obs), action)
        assert first.hidden is not None and first.hidden.shape == (5, 2, 48)  # (batch, layers, width)
        again = model.step(ModelState(obs=first.obs, hidden=first.hidden), action)
        fresh = model.step(ModelState(obs=first.obs), action)
    assert not torch.equal(again.obs, fresh.obs)


def marked_episodes(lengths: list[int]) -> Transitions:
    """Episodes whose every observation holds the episode id in column 0 (and 1000 x id in
    column 1), so any window mixing two episodes is visible in its tensors."""
    ep = np.concatenate([np.full(n, i) for i, n in enumerate(lengths)])
    t = np.concatenate([np.arange(n) for n in lengths]).astype(np.float64)
    obs = np.stack([ep, 1000.0 * ep, t], axis=1).astype(np.float64)
    nxt = obs + np.array([0.0, 0.0, 1.0])
    term = np.concatenate([np.arange(n) == n - 1 for n in lengths]) & (ep % 2 == 0)  # some end by time
    rng = np.random.default_rng(0)
    return Transitions(obs, rng.normal(size=(len(ep), 1)), np.zeros(len(ep)), nxt, term, ep)


def test_gru_multi_step_loss_never_crosses_an_episode_end(monkeypatch: pytest.MonkeyPatch) -> None:
    lengths = [int(n) for n in np.random.default_rng(1).integers(1, 12, size=60)]
    data = marked_episodes(lengths)
    k = 4
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    model = GRUDynamics(3, 1, GRUDynamicsConfig(seq_len=k, hidden=8, mlp_hidden=8, mlp_layers=1,
                                                fit=FitConfig(max_epochs=2, batch_size=16)))
    original = GRUDynamics._sequence_loss

    def spy(self: GRUDynamics, obs0: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seen.append((obs0.detach().clone(), targets.detach().clone()))
        return original(self, obs0, actions, targets)

    monkeypatch.setattr(GRUDynamics, "_sequence_loss", spy)
    metrics = model.fit(data)
    assert seen and metrics["n_train_windows"] > 0
    for obs0, targets in seen:
        assert targets.shape[1] == k
        assert torch.all(targets[:, :, 0] == obs0[:, None, 0])  # every target from obs0's episode
        # consecutive steps: step counter goes t+1, ..., t+k from the window's start t
        assert torch.all(targets[:, :, 2] == obs0[:, None, 2] + torch.arange(1, k + 1))
    windows = sum(max(0, n - k + 1) for n in lengths)
    assert metrics["n_train_windows"] + metrics["n_holdout_windows"] <= windows


def test_sequence_starts_and_holdout_blocks() -> None:
    episode = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    terminated = np.zeros(10, dtype=bool)
    everything = np.ones(10, dtype=bool)
    assert sequence_starts(episode, terminated, 3, everything).tolist() == [0, 3, 4, 7]
    # a termination inside an episode id (bad data) still cuts windows
    terminated[4] = True
    assert sequence_starts(episode, terminated, 3, everything).tolist() == [0, 7]
    assert episode_positions(episode).tolist() == [0, 1, 2, 0, 1, 2, 3, 0, 1, 2]
    big = np.repeat(np.arange(40), 25)
    mask = holdout_mask(big, 0.2, 5000, 5, np.random.default_rng(0))
    assert 200 <= mask.sum() < 205
    blocks = mask.reshape(-1, 5)  # aligned blocks of 5 inside each 25-step episode
    assert np.all(blocks.all(1) | ~blocks.any(1))
    assert holdout_mask(big, 0.2, 30, 1, np.random.default_rng(0)).sum() == 30


def test_factory_builds_each_dynamics_and_keeps_mlp_importable() -> None:
    from gymnasium import spaces

    from engine.models import mlp

    assert mlp(3, 2).__class__.__name__ == "Sequential"
    obs, act = spaces.Box(-1, 1, shape=(11,)), spaces.Box(-1, 1, shape=(3,))
    kinds = {name: type(make_dynamics(name, obs, act, "Hopper-v5")).__name__ for name in DYNAMICS}
    assert kinds == {"mlp": "MLPDynamics", "ensemble": "GaussianEnsemble", "gru": "GRUDynamics",
                     "linear-tv": "LinearTVDynamics", "oracle": "OracleDynamics"}
    with pytest.raises(ValueError, match="unknown dynamics"):
        make_dynamics("linear", obs, act, "Hopper-v5")
    assert model_config_class("gru") is GRUDynamicsConfig
    with pytest.raises(TypeError, match="MLPDynamicsConfig"):
        make_dynamics("mlp", obs, act, "Hopper-v5", GRUDynamicsConfig())


def test_early_stopping_restores_the_weights_best_on_the_holdout() -> None:
    # training pulls w to 5, the holdout prefers w = 1: the kept w is the epoch nearest 1
    module = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(module.weight)
    w = module.weight
    seen: list[float] = []

    def value() -> float:
        return float(w.detach())

    def holdout() -> float:
        seen.append(value())
        return (value() - 1.0) ** 2

    cfg = FitConfig(lr=0.05, batch_size=1, max_epochs=500, patience=3, min_improvement=0.0)
    metrics = fit_early_stopping(module, lambda idx: (w.sum() - 5.0) ** 2, holdout, 1, cfg, torch.Generator())
    best = min(seen, key=lambda v: (v - 1.0) ** 2)
    assert value() == best and abs(best - 1.0) < 0.06
    assert metrics["holdout_loss"] == (best - 1.0) ** 2
    assert metrics["epochs"] < 100  # stopped after `patience` epochs of no improvement


def test_max_updates_caps_refits_only_and_a_restored_model_counts_as_fitted(
        pendulum_data: tuple[Transitions, Transitions]) -> None:
    train, test = pendulum_data
    cfg = MLPDynamicsConfig(hidden=32, layers=2, fit=FitConfig(max_epochs=8, batch_size=64, patience=100,
                                                               min_improvement=0.0, max_updates=7))
    model = MLPDynamics(4, 1, cfg)
    first = model.fit(train)
    n_batches = -(-int(first["n_train"]) // 64)
    assert first["updates"] == 8 * n_batches > 7  # the first fit is not capped
    refit = model.fit(train)
    assert refit["updates"] == 7 and refit["epochs"] == 1  # the refit is cut inside its first epoch
    assert refit["holdout_loss"] < 0.1  # still the fitted model (the refit continued from its weights)
    restored = MLPDynamics(4, 1, cfg)
    restored.load_state_dict(model.state_dict())
    mark_fitted(restored)
    assert restored.fit(train)["updates"] == 7
    with pytest.raises(ValueError, match="max_updates"):
        FitConfig(max_updates=0)
