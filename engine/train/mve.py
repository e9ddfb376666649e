"""Model-based value expansion critic targets (MVE, Feinberg et al. 2018, Alg. 1).

From a real transition (s_{-1}, a_{-1}, r_{-1}, s_0) imagine H steps with the *target* policy:
a_t = pi'(s_t), s_{t+1} = f(s_t, a_t), r_t = r(s_t, a_t, s_{t+1}). The k-step MVE target of
the pair (s_t, a_t) is

    y_t = r_t + gamma (1 - d_{t+1}) G_{t+1},   G_t = y_t + b_t,   G_H = V'(s_H),

where b_t is the policy's entropy bonus (-alpha log pi, zero for DDPG) and V' the target value.
With TD-k the critic regresses on every (s_t, a_t), t = -1..H-1 (imagined states cover the
fixed-point distribution nu of MVE section 3.1); the naive variant only on the real pair with
its H-step target. H = 0 is the ordinary 1-step target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from engine.agents.base import Batch, CriticData, TargetSource
from engine.models.dynamics_base import ModelState


class Imagination(Protocol):
    """One imagined step: next state, reward (batch,), termination (batch,) as 0/1 floats."""

    def step(self, state: ModelState, action: Tensor) -> tuple[ModelState, Tensor, Tensor]: ...


@dataclass(frozen=True)
class MVETargets:
    """Critic targets with an H-step model expansion; callable as a `CriticTargets`."""

    imagination: Imagination
    horizon: int
    tdk: bool = True
    ready: Callable[[], bool] = field(default=lambda: True)
    """Whether the model can be used yet; until then targets are 1-step (an unfitted model's
    imagined rewards would only add noise)."""

    def __call__(self, batch: Batch, agent: TargetSource) -> CriticData:
        with torch.no_grad():
            return self._targets(batch, agent, self.horizon if self.ready() else 0)

    def _targets(self, batch: Batch, agent: TargetSource, H: int) -> CriticData:
        gamma = agent.gamma
        state = ModelState(batch.next_obs, batch.sim_state)
        alive = 1.0 - batch.terminated  # (batch,) whether s_0 is not terminal
        obs, acts, rewards, bonuses, alives = [], [], [], [], [alive]
        for _ in range(H):
            a, bonus = agent.target_action(state.obs)
            nxt, r, done = self.imagination.step(state, a)
            obs.append(state.obs)
            acts.append(a)
            rewards.append(r)
            bonuses.append(bonus)
            # once an imagined episode ends, nothing after it counts
            alive = alive * (1.0 - done)
            alives.append(alive)
            state = nxt
        G = agent.target_value(state.obs)  # (batch,) V'(s_H)
        targets = []
        for t in range(H - 1, -1, -1):
            y = rewards[t] + gamma * alives[t + 1] * G
            targets.append(y)
            G = y + bonuses[t]
        y_real = batch.reward + gamma * alives[0] * G
        if not self.tdk or H == 0:
            return CriticData(batch.obs, batch.action, y_real)
        targets.reverse()  # targets[t] belongs to (obs[t], acts[t])
        # an imagined state at or after a termination is not a state of the MDP: drop its pair
        keep = torch.cat([torch.ones_like(batch.reward, dtype=torch.bool)] + [alives[t] > 0 for t in range(H)])
        all_obs = torch.cat([batch.obs, *obs])
        all_act = torch.cat([batch.action, *acts])
        all_y = torch.cat([y_real, *targets])
        return CriticData(all_obs[keep], all_act[keep], all_y[keep])
