"""Study 3 measurements against independent computations: KL by Monte Carlo through the tanh
squash, and the frozen model's error on pi_D's own fresh data vs its holdout error."""

from __future__ import annotations

import numpy as np
import torch

from engine.agents.sac import SAC, tanh_gaussian_log_prob
from engine.envs.factory import make_env
from engine.models import make_dynamics
from engine.models.ensemble import EnsembleConfig
from engine.studies import generalization_probe as gp

ENV = "InvertedPendulum-v5"


def _agents() -> tuple:
    env = make_env(ENV, True)
    pi = SAC(env.observation_space, env.action_space, seed=1)
    pi_d = SAC(env.observation_space, env.action_space, seed=2)
    last = [m for m in pi_d.actor.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # move pi_D's mean and shrink its std: a KL of order 1 nat
        last.bias += torch.tensor([0.5, 0.0])
    return env, pi, pi_d


def test_closed_form_kl_matches_monte_carlo_through_the_squash() -> None:
    env, pi, pi_d = _agents()
    obs = np.stack([env.observation_space.sample() * 0.5 for _ in range(4)]).astype(np.float32)
    gen = torch.Generator().manual_seed(0)
    for s in obs:
        closed = gp.policy_kl(pi, pi_d, s[None])
        with torch.no_grad():
            o = torch.as_tensor(s[None])
            m1, l1 = (x.double() for x in pi.policy_dist(o))
            m2, l2 = (x.double() for x in pi_d.policy_dist(o))
        u = m1 + l1.exp() * torch.randn((100_000, m1.shape[1]), generator=gen, dtype=torch.float64)
        a = torch.tanh(u)  # the squashed action both densities are evaluated at
        back = torch.atanh(a)  # pi_D's pre-image of a (the shared bijection's inverse)
        mc = (tanh_gaussian_log_prob(u, m1, l1) - tanh_gaussian_log_prob(back, m2, l2)).mean().item()
        assert closed > 0.5  # a KL worth checking
        assert abs(mc - closed) < 0.01 * closed, (mc, closed)


def test_kl_of_a_policy_with_its_copy_is_exactly_zero() -> None:
    env, pi, _ = _agents()
    obs = np.stack([env.observation_space.sample() for _ in range(64)])
    assert gp.policy_kl(pi, gp.frozen_copy(pi), obs) == 0.0


def test_error_on_pi_d_fresh_data_equals_holdout_error() -> None:
    """A probe fitted on data that pi_D alone collected: its error on new pi_D data is its
    holdout error up to sampling error (both are samples of the same distribution)."""
    env, pi_d, _ = _agents()
    data = gp.collect(pi_d, env, 4000, seed=1)
    cfg = EnsembleConfig(members=3, elites=2, hidden=64, layers=2, seed=3)
    model = make_dynamics("ensemble", env.observation_space, env.action_space, ENV, cfg)
    probe, record = gp.freeze(model, pi_d, data.transitions())
    held = model.held_out
    e_hold = gp.one_step_errors(probe.model, data.obs[held], data.action[held], data.next_obs[held])
    assert record["model_error_train"] == np.float64(e_hold.mean()) and record["n_holdout"] == held.sum()
    fresh = gp.collect(probe.policy, make_env(ENV, True), 4000, seed=2)
    e_new = gp.one_step_errors(probe.model, fresh.obs, fresh.action, fresh.next_obs)
    se = np.sqrt(e_hold.var(ddof=1) / len(e_hold) + e_new.var(ddof=1) / len(e_new))
    assert abs(e_new.mean() - e_hold.mean()) < 3 * se, (e_new.mean(), e_hold.mean(), se)
