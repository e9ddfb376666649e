"""One imagined step = dynamics + reward + termination (what value expansion consumes).

`engine.train.mve.Imagination` asks for `step(state, action) -> (next state, reward (batch,),
done (batch,) as 0/1 floats)`. The oracle provides that itself (`step_with_reward`); a learned
model is combined with the env's known functions or with learned reward/termination models.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from engine.models.dynamics_base import Dynamics, ModelState
from engine.models.known import KnownFunctions

DoneFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""done(obs, action, next_obs) -> (batch,) probability or 0/1 float of termination"""


class ModelImagination:
    """A dynamics model with reward(obs, action, next_obs) and done(obs, action, next_obs)."""

    def __init__(self, dynamics: Dynamics, reward: Callable[[Tensor, Tensor, Tensor], Tensor], done: DoneFn) -> None:
        self.dynamics, self.reward, self.done = dynamics, reward, done

    @classmethod
    def with_known(cls, dynamics: Dynamics, known: KnownFunctions) -> ModelImagination:
        """Use the env's own reward and termination functions."""
        return cls(dynamics, known.reward, lambda obs, action, next_obs: known.terminated(next_obs).to(next_obs.dtype))

    def step(self, state: ModelState, action: Tensor) -> tuple[ModelState, Tensor, Tensor]:
        nxt = self.dynamics.step(state, action)
        return nxt, self.reward(state.obs, action, nxt.obs), self.done(state.obs, action, nxt.obs)
