"""Probabilistic ensemble on real InvertedPendulum-v5 data: batching, NLL, elites, stepping."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from modelkit import one_step_errors, t32

from engine.models.dynamics_base import ModelState, Transitions
from engine.models.ensemble import EnsembleConfig, GaussianEnsemble
from engine.models.training import FitConfig

CONFIG = EnsembleConfig(members=5, elites=3, hidden=64, layers=2, fit=FitConfig(max_epochs=30, batch_size=64))


@pytest.fixture(scope="module")
def fitted(pendulum_data: tuple[Transitions, Transitions]) -> tuple[GaussianEnsemble, dict[str, float], torch.Tensor]:
    train, _ = pendulum_data
    model = GaussianEnsemble(4, 1, CONFIG)
    # NLL of the untrained members on the training data, with the normalisers the fit will use
    model.in_norm.fit(np.concatenate([train.obs, train.action], axis=1))
    model.out_norm.fit(train.next_obs - train.obs)
    with torch.no_grad():
        before = model.nll(t32(train.obs), t32(train.action), t32(train.next_obs))
    return model, model.fit(train), before


def test_batched_forward_equals_a_loop_over_members() -> None:
    model = GaussianEnsemble(4, 1, CONFIG)
    x = torch.randn(CONFIG.members, 33, 5, generator=torch.Generator().manual_seed(0))
    mu, logvar = model.forward_normalized(x)
    assert mu.shape == logvar.shape == (CONFIG.members, 33, 4)
    for m in range(CONFIG.members):
        h = x[m]
        for layer in model.layers[:-1]:
            h = torch.nn.functional.silu(h @ layer.weight[m] + layer.bias[m])
        last = model.layers[-1]
        out = h @ last.weight[m] + last.bias[m]
        assert torch.equal(out[:, :4], mu[m])
        raw_logvar = out[:, 4:]
        hi, lo = model.max_logvar[m], model.min_logvar[m]
        bounded = lo + torch.nn.functional.softplus(hi - torch.nn.functional.softplus(hi - raw_logvar) - lo)
        # the bounds are elementwise, not batched: softplus on other shapes may round differently
        torch.testing.assert_close(bounded, logvar[m], rtol=1e-6, atol=1e-6)
        assert torch.all(logvar[m] < hi) and torch.all(logvar[m] > lo)


def test_nll_decreases_and_fit_beats_no_change(fitted: tuple[GaussianEnsemble, dict[str, float], torch.Tensor],
                                               pendulum_data: tuple[Transitions, Transitions]) -> None:
    model, metrics, before = fitted
    train, test = pendulum_data
    with torch.no_grad():
        after = model.nll(t32(train.obs), t32(train.action), t32(train.next_obs))
    assert after.shape == (CONFIG.members,)
    assert torch.all(after < before - 1.0), (before, after)
    model.step_mode = "mean"
    err, baseline = one_step_errors(model, train, test)
    assert err < 0.05 * baseline, (err, baseline, metrics)
    assert metrics["holdout_mse"] <= metrics["holdout_mse_all"]


def test_elites_are_the_best_members_on_the_holdout(fitted: tuple[GaussianEnsemble, dict[str, float], torch.Tensor],
                                                    pendulum_data: tuple[Transitions, Transitions]) -> None:
    model, _, _ = fitted
    assert len(model.elites) == CONFIG.elites == len(set(model.elites))
    _, test = pendulum_data
    mean, var = model.predict_members(t32(test.obs), t32(test.action))
    assert mean.shape == var.shape == (CONFIG.members, len(test.obs), 4)
    assert torch.all(var > 0)
    # members disagree (independent inits and bootstraps): the disagreement metric is informative
    assert mean.var(0).mean() > 0


@pytest.mark.parametrize("mode", ["member", "sample"])
def test_random_member_stepping_uses_only_elites(mode: str, fitted: tuple[GaussianEnsemble, dict[str, float], torch.Tensor],
                                                 pendulum_data: tuple[Transitions, Transitions]) -> None:
    model = copy.deepcopy(fitted[0])
    # move member m's mean by 10 m standardised units so every draw names its member
    with torch.no_grad():
        model.layers[-1].bias[:, 0, :4] += 10.0 * torch.arange(CONFIG.members, dtype=torch.float32)[:, None]
    _, test = pendulum_data
    obs, action = t32(test.obs[:1]).expand(600, -1), t32(test.action[:1]).expand(600, -1)
    model.step_mode = mode
    with torch.no_grad():
        mean, var = model.predict_members(obs, action)  # (members, 600, obs_dim), same batch as step
        nxt = model.step(ModelState(obs=obs), action).obs  # (600, obs_dim)
    z = ((nxt[None] - mean) ** 2 / var).sum(-1)  # (members, 600) squared standardised distance
    nearest = z.min(0).values
    if mode == "member":
        assert torch.all(nearest == 0)  # exactly one member's mean
    else:
        assert torch.all(nearest > 0) and torch.all(nearest < 60)  # a draw from it (chi2, 4 dof)
    assert set(z.argmin(0).tolist()) == set(model.elites)  # every elite is used, nothing else


def test_mean_mode_is_deterministic_and_rollouts_have_the_right_shape(
        fitted: tuple[GaussianEnsemble, dict[str, float], torch.Tensor], pendulum_data: tuple[Transitions, Transitions]) -> None:
    model, _, _ = fitted
    _, test = pendulum_data
    model.step_mode = "mean"
    state, actions = ModelState(obs=t32(test.obs[:7])), torch.zeros(7, 5, 1)
    with torch.no_grad():
        a, b = model.rollout(state, actions), model.rollout(state, actions)
        mean, _ = model.predict_members(state.obs, actions[:, 0])
    assert a.shape == (7, 5, 4) and torch.equal(a, b)
    torch.testing.assert_close(a[:, 0], mean[model.elites].mean(0))


def test_each_member_keeps_its_best_holdout_weights(fitted: tuple[GaussianEnsemble, dict[str, float], torch.Tensor],
                                                    pendulum_data: tuple[Transitions, Transitions]) -> None:
    model, metrics, _ = fitted
    train, _ = pendulum_data
    held = model.held_out
    assert held is not None and held.shape == (len(train.obs),) and 0.15 < held.mean() < 0.25
    with torch.no_grad():
        mean, _ = model.predict_members(t32(train.obs[held]), t32(train.action[held]))
    # per-member holdout MSE of the final weights, standardised like the fit's
    mse = (((mean - t32(train.next_obs[held])) / model.out_norm.std) ** 2).mean(dim=(1, 2))
    np.testing.assert_allclose(float(mse.mean()), metrics["holdout_mse_all"], rtol=1e-3)
    np.testing.assert_allclose(float(mse[model.elites].mean()), metrics["holdout_mse"], rtol=1e-3)
    assert sorted(model.elites) == sorted(torch.argsort(mse)[: CONFIG.elites].tolist())


@pytest.mark.parametrize("mode", ["sample", "member", "mean"])
def test_step_computes_only_what_it_uses_with_the_results_of_all_members(
        mode: str, fitted: tuple[GaussianEnsemble, dict[str, float], torch.Tensor],
        pendulum_data: tuple[Transitions, Transitions]) -> None:
    """`step` runs the elites ("mean") or each sample's drawn elite only; the reference runs every
    member on every sample and picks with the same draws: same values and same input gradients."""
    model = copy.deepcopy(fitted[0])
    model.step_mode = mode
    _, test = pendulum_data
    n = 257
    obs, action = t32(test.obs[:n]).requires_grad_(), t32(test.action[:n])
    rows_in: list[int] = []
    model.layers[0].register_forward_hook(lambda _m, args, _out: rows_in.append(args[0].shape[0] * args[0].shape[1]))
    draws = model._step_gen.get_state()
    got = model.step(ModelState(obs=obs), action).obs
    (grad_got,) = torch.autograd.grad(got.pow(2).sum(), obs)
    model._step_gen.set_state(draws)
    mean, var = model.predict_members(obs, action)  # (members, n, obs_dim): all of them, the reference
    elites = model.elite_idx
    if mode == "mean":
        want = mean[elites].mean(0)
    else:
        pick, rows = elites[torch.randint(len(elites), (n,), generator=model._step_gen)], torch.arange(n)
        want = mean[pick, rows]
        if mode == "sample":
            want = want + var[pick, rows].sqrt() * torch.randn(want.shape, generator=model._step_gen)
    (grad_want,) = torch.autograd.grad(want.pow(2).sum(), obs)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_got, grad_want, rtol=1e-4, atol=1e-5)
    assert rows_in[1] == CONFIG.members * n  # the reference
    if mode == "mean":
        assert rows_in[0] == CONFIG.elites * n
    else:  # elites x the largest group of samples that drew the same elite
        assert n <= rows_in[0] < 1.5 * n
