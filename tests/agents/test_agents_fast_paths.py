"""The speed-motivated paths equal what they replace: stacked twin critics vs separate critics,
SAC's temperature on the actor loss's own draw, the numpy act path vs the torch policy."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from agent_kit import ACT_SPACE, OBS_SPACE, SMALL, random_batch
from engine.agents import DDPG, SAC
from engine.agents.common import polyak_update
from engine.agents.sac import tanh_gaussian_log_prob
from engine.agents.stacked import StackedMLP
from engine.models.mlp import mlp


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_stacked_mlp_equals_separate_networks_in_value_and_gradients(activation: str) -> None:
    torch.manual_seed(0)
    nets = [mlp(7, 1, 32, 2, activation).double() for _ in range(2)]
    stacked = StackedMLP(copy.deepcopy(nets))
    x = torch.randn(50, 7, dtype=torch.float64, requires_grad=True)
    x_sep = x.detach().clone().requires_grad_(True)
    out = stacked(x)  # (2, 50, 1)
    sep = torch.stack([n(x_sep) for n in nets])
    torch.testing.assert_close(out, sep, rtol=0, atol=1e-12)
    # a loss that weighs the two heads differently, so that mixed-up members would show
    w = torch.tensor([1.0, -3.0], dtype=torch.float64)[:, None, None]
    (w * out.pow(2)).sum().backward()
    (w * sep.pow(2)).sum().backward()
    torch.testing.assert_close(x.grad, x_sep.grad, rtol=0, atol=1e-10)
    linears = [[m for m in n if isinstance(m, torch.nn.Linear)] for n in nets]
    for k, (wk, bk) in enumerate(zip(stacked.weights, stacked.biases)):
        for i in range(2):
            torch.testing.assert_close(wk.grad[i], linears[i][k].weight.grad.T, rtol=0, atol=1e-10)
            torch.testing.assert_close(bk.grad[i, 0], linears[i][k].bias.grad, rtol=0, atol=1e-10)


def test_stacked_mlp_in_float32_matches_to_1e_6_and_member_copies_back() -> None:
    torch.manual_seed(1)
    nets = [mlp(20, 1, 256, 2) for _ in range(2)]
    stacked = StackedMLP(nets)
    x = torch.randn(256, 20)
    with torch.no_grad():
        out = stacked(x).squeeze(-1)
        for i, n in enumerate(nets):
            torch.testing.assert_close(out[i], n(x).squeeze(-1), rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(stacked.member(i)(x).squeeze(-1), out[i], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="identical layer sizes"):
        StackedMLP([mlp(20, 1, 256, 2), mlp(20, 1, 128, 2)])


def test_sac_critics_start_as_two_mlps_and_polyak_moves_every_member() -> None:
    agent = SAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=0)
    assert agent.critics.members == 2
    target = copy.deepcopy(agent.critic_target)
    online = [p.detach().clone() for p in agent.critics.parameters()]
    polyak_update(target, agent.critics, 0.25)
    for t0, t1, p in zip(agent.critic_target.parameters(), target.parameters(), online):
        torch.testing.assert_close(t1, 0.75 * t0 + 0.25 * p, rtol=0, atol=1e-7)


def test_temperature_and_entropy_use_the_actor_losss_own_sample() -> None:
    # The update draws a' at next_obs (target), then a at obs for the actor loss; the alpha
    # loss reuses that draw's log-probs (Haarnoja et al.'s code, SB3) instead of a third one.
    agent = SAC(OBS_SPACE, ACT_SPACE, SMALL["sac"], seed=0)
    batch = random_batch(seed=4)
    replay = copy.deepcopy(agent)
    log_alpha0 = agent.log_alpha.item()
    metrics = agent.update(batch)
    with torch.no_grad():
        replay.sample(batch.next_obs)  # the target's draw
        mean, log_std = replay.policy_dist(batch.obs)
        u = mean + log_std.exp() * torch.randn(mean.shape, generator=replay.generator)
        log_prob = tanh_gaussian_log_prob(u, mean, log_std)
    # (float32 rounding: `sample` sums the log-density's terms in another order; another draw
    # would differ by about 0.1)
    assert metrics["entropy"] == pytest.approx(-log_prob.mean().item(), abs=1e-5)
    # the first Adam step moves log alpha by lr against the sign of its gradient
    # d/dlog_alpha mean(alpha (-log pi - H)) = alpha * (entropy - H)
    grad = torch.exp(torch.tensor(log_alpha0)) * (-log_prob.mean() - agent.target_entropy)
    expected = log_alpha0 - SMALL["sac"].alpha_lr * torch.sign(grad).item()
    assert agent.log_alpha.item() == pytest.approx(expected, abs=1e-6)
    # nothing else drew from the generator after the actor loss's sample
    assert torch.equal(agent.generator.get_state(), replay.generator.get_state())


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_numpy_act_path_equals_the_torch_policy(activation: str) -> None:
    sac = SAC(OBS_SPACE, ACT_SPACE, dataclasses.replace(SMALL["sac"], activation=activation), seed=0)
    ddpg = DDPG(OBS_SPACE, ACT_SPACE, dataclasses.replace(SMALL["ddpg"], activation=activation), seed=0)
    low, high = torch.as_tensor(ACT_SPACE.low), torch.as_tensor(ACT_SPACE.high)
    for k in range(5):
        obs = (3.0 * torch.randn(3, generator=torch.Generator().manual_seed(k))).numpy()
        o = torch.as_tensor(obs)[None]
        with torch.no_grad():
            mean, log_std = sac.policy_dist(o)
            det = sac.scale.to_env(torch.tanh(mean))[0]
            state = sac.generator.get_state()
            u = mean + log_std.exp() * torch.randn(mean.shape, generator=sac.generator)
            sac.generator.set_state(state)
            noisy = torch.minimum(torch.maximum(sac.scale.to_env(torch.tanh(u))[0], low), high)
            mu = ddpg.scale.to_env(torch.tanh(ddpg.actor(o)))[0]
        torch.testing.assert_close(torch.as_tensor(sac.act(obs, deterministic=True)), det, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(torch.as_tensor(sac.act(obs)), noisy, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(torch.as_tensor(ddpg.act(obs, deterministic=True)), mu, rtol=1e-5, atol=1e-6)
