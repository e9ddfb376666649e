"""NAF: the quadratic advantage puts the argmax of Q at mu(s), and Q is concave in the action."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch.autograd.functional import hessian

from agent_kit import ACT_SPACE, OBS_SPACE, SMALL
from engine.agents import NAF, NAFConfig

# A 3-D action Box makes L's off-diagonal entries matter.
ACT3 = spaces.Box(np.array([-1.0, -3.0, 0.0], np.float32), np.array([1.0, 1.0, 2.0], np.float32))


def random_naf(seed: int, act_space: spaces.Box = ACT3) -> NAF:
    agent = NAF(OBS_SPACE, act_space, NAFConfig(hidden=16), seed=seed)
    # Larger random output weights than the default init: P far from a multiple of I and mu
    # away from the centre, so the checks below are not passed by a near-trivial network.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for head in (agent.net.mean, agent.net.entries):
            head[-1].weight.copy_(torch.randn(head[-1].weight.shape, generator=g))
    return agent


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_argmax_of_q_is_mu_by_dense_sampling_and_zero_gradient(seed: int) -> None:
    agent = random_naf(seed)
    g = torch.Generator().manual_seed(100 + seed)
    obs = torch.randn(4, 3, generator=g)
    mu = agent.policy(obs)  # (4, 3) env units
    low, high = torch.as_tensor(ACT3.low), torch.as_tensor(ACT3.high)
    assert torch.all(mu >= low) and torch.all(mu <= high)
    for i in range(len(obs)):
        s = obs[i : i + 1]
        candidates = low + (high - low) * torch.rand(20_000, 3, generator=g)
        with torch.no_grad():
            q_candidates = agent.q_value(s.expand(len(candidates), -1), candidates)
            q_mu = agent.q_value(s, mu[i : i + 1])[0]
        assert q_candidates.max() <= q_mu + 1e-5
        # The best sample is also the nearest to mu among those with high Q: it approaches mu.
        best = candidates[q_candidates.argmax()]
        assert torch.linalg.norm((best - mu[i]) / (high - low)) < 0.15

        a = mu[i : i + 1].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(agent.q_value(s, a).sum(), a)
        torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-5, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_newton_step_from_anywhere_in_the_box_lands_on_mu(seed: int) -> None:
    # Q is quadratic in the action, so a* = a - H^-1 grad Q(a) is its exact maximiser from any
    # a; with autograd's gradient and Hessian this finds the argmax without trusting mu's code.
    agent = random_naf(seed)
    g = torch.Generator().manual_seed(7 + seed)
    low, high = torch.as_tensor(ACT3.low), torch.as_tensor(ACT3.high)
    for _ in range(4):
        s = torch.randn(1, 3, generator=g)
        a0 = low + (high - low) * torch.rand(3, generator=g)
        a = a0.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(agent.q_value(s, a[None]).sum(), a)
        H = hessian(lambda x: agent.q_value(s, x[None]).sum(), a0)
        a_star = a0 - torch.linalg.solve(H, grad)
        torch.testing.assert_close(a_star, agent.policy(s)[0].detach(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_is_concave_in_the_action_with_hessian_minus_p(seed: int) -> None:
    agent = random_naf(seed)
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(1, 3, generator=g)
    P = agent.net.precision(s)[0].detach()  # (3, 3) in unit-box coordinates
    D = torch.diag(1.0 / agent.scale.half_range)  # d(unit action)/d(env action)
    for _ in range(2):  # the same Hessian at two actions: Q is exactly quadratic in u
        a0 = torch.randn(3, generator=g)
        H = hessian(lambda a: agent.q_value(s, a[None]).sum(), a0)
        torch.testing.assert_close(H, -D @ P @ D, rtol=1e-4, atol=1e-5)
        assert torch.linalg.eigvalsh(H).max() < 0.0
    assert torch.linalg.eigvalsh(P).min() > 0.0


def test_cholesky_factor_is_lower_triangular_with_positive_diagonal() -> None:
    agent = random_naf(3)
    L = agent.net.cholesky(torch.randn(16, 3))
    torch.testing.assert_close(L.triu(1), torch.zeros_like(L))
    assert torch.all(L.diagonal(dim1=-2, dim2=-1) > 0)


def test_target_is_the_target_networks_value_and_mu() -> None:
    agent = NAF(OBS_SPACE, ACT_SPACE, SMALL["naf"], seed=0)
    with torch.no_grad():  # make target and online differ
        for p in agent.net_target.parameters():
            p.add_(0.1)
    s = torch.randn(5, 3)
    a, bonus = agent.target_action(s)
    torch.testing.assert_close(bonus, torch.zeros(5))
    torch.testing.assert_close(a, agent.scale.to_env(torch.tanh(agent.net_target.mean(s))))
    v = agent.target_value(s)
    torch.testing.assert_close(v, agent.net_target.value(s).squeeze(-1))
    # V' is the max of the target Q': Q'(s, mu'(s)) = V'(s).
    torch.testing.assert_close(agent.net_target.q(s, agent.net_target.mu(s)), v)
    assert not torch.allclose(v, agent.net.v(s))


def test_naf_has_no_actor_and_acts_with_noise_around_mu() -> None:
    agent = NAF(OBS_SPACE, ACT_SPACE, NAFConfig(hidden=16, noise="gaussian", noise_sigma=0.05), seed=0)
    assert not hasattr(agent, "actor")
    obs = np.zeros(3, np.float32)
    greedy = agent.act(obs, deterministic=True)
    np.testing.assert_allclose(greedy, agent.policy(torch.zeros(1, 3))[0].detach().numpy(), atol=1e-6)
    noisy = np.stack([agent.act(obs) for _ in range(200)])
    assert noisy.std(0).min() > 0.0
    np.testing.assert_allclose(np.median(noisy, 0), greedy, atol=0.05)
