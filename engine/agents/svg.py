"""SAC with a pathwise actor through a differentiable model: SAC-SVG(H) and MAAC.

SAC-SVG (Amos et al. 2021, eq. 10, Alg. 1) and MAAC (Clavera et al. 2020, section 4.1) replace
SAC's actor loss by an H-step entropy-regularised value expansion through a learned model,

    J(theta) = -E_{s_0 ~ D} [ sum_{t<H} gamma^t c_t (r_t - alpha log pi(a_t|s_t))
                             + gamma^H c_H (min_i Q_i(s_H, a_H) - alpha log pi(a_H|s_H)) ],

with a_t ~ pi(.|s_t) reparameterised, s_{t+1} = f(s_t, a_t) the model's (differentiable) step,
r_t the imagination's reward (known or learned) and c_t = prod_{k<t} (1 - d_k) the continuation.
With H = 0 it is SAC's actor loss (SVG section 4.1), computed by the same expression. The
gradient flows through the policy's samples, the model, the reward and the critics; the model's
and the critics' own parameters are frozen during the actor's backward. The two methods differ
only in the model (SVG: deterministic; MAAC: a probabilistic ensemble stepping a random elite
with a reparameterised Gaussian sample) and in the critic targets (SVG: 1-step; MAAC: MVE),
which the caller composes.
"""

from __future__ import annotations

from collections.abc import Callable

from gymnasium import spaces
from torch import Tensor, nn

from engine.agents.base import Batch, CriticTargets, one_step_targets
from engine.agents.sac import SAC, SACConfig
from engine.models.dynamics_base import ModelState


class PathwiseSAC(SAC):
    """SAC whose actor loss expands `horizon` steps through `imagination` once `ready()`.

    `imagination.step(state, action) -> (next state, reward (batch,), done (batch,))` must be
    differentiable in `state.obs` and `action` (a learned model; the oracle simulator is not).
    """

    def __init__(
        self,
        obs_space: spaces.Box,
        act_space: spaces.Box,
        config: SACConfig | None = None,
        targets: CriticTargets = one_step_targets,
        seed: int = 0,
        *,
        imagination=None,  # noqa: ANN001 - engine.train.mve.Imagination
        horizon: int = 0,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(obs_space, act_space, config, targets, seed=seed)
        if horizon < 0:
            raise ValueError("horizon must be >= 0")
        if horizon > 0 and imagination is None:
            raise ValueError("a horizon > 0 needs an imagination (a differentiable model)")
        self.imagination, self.horizon, self.ready = imagination, horizon, ready

    def actor_loss(self, obs: Tensor, first: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """SVG eq. 10 / MAAC's objective (negated, averaged over `obs`); SAC's loss until the
        model is ready. `first`: the draw at `obs` to start from, as in `SAC.actor_loss`."""
        if self.horizon > 0 and not self.ready():
            return super().actor_loss(obs, first)
        return self.expanded_actor_loss(obs, self.horizon, first)

    def expanded_actor_loss(self, obs: Tensor, horizon: int, first: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """The H-step pathwise loss for an explicit `horizon` (H = 0: SAC's loss, exactly)."""
        alpha, gamma = self.alpha, self.gamma
        state = ModelState(obs)
        a, log_prob = self.sample(obs) if first is None else first
        value: Tensor | None = None  # sum_t gamma^t c_t (r_t - alpha log pi_t), (batch,)
        weight: Tensor | None = None  # gamma^t c_t of the current step, (batch,)
        for _ in range(horizon):
            nxt, r, done = self.imagination.step(state, a)
            step = r - alpha * log_prob
            if weight is not None:
                step = weight * step
            value = step if value is None else value + step
            cont = gamma * (1.0 - done)
            weight = cont if weight is None else weight * cont
            state = nxt
            a, log_prob = self.sample(state.obs)
        q = self._twin_q(self.critics, state.obs, a).min(dim=0).values
        loss = alpha * log_prob - q  # minus the soft value at s_H
        if weight is not None:
            loss = weight * loss
        if value is not None:
            loss = loss - value
        return loss.mean()

    def _model_params(self) -> list[nn.Parameter]:
        mods = [self.imagination] + [getattr(self.imagination, k, None) for k in ("dynamics", "reward", "done")]
        params = {id(p): p for m in mods if isinstance(m, nn.Module) for p in m.parameters() if p.requires_grad}
        return list(params.values())

    def update(self, batch: Batch) -> dict[str, float]:
        # the actor's gradient flows through the model but must not fill the model's grads
        frozen = self._model_params()
        for p in frozen:
            p.requires_grad_(False)
        try:
            return super().update(batch)
        finally:
            for p in frozen:
                p.requires_grad_(True)
