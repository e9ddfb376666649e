"""Small pieces the three agents share: action scaling, target networks, exploration noise, Adam.

Networks work in a *unit* action space [-1, 1]^act_dim (tanh outputs, critic inputs) so that
learning rates and noise scales mean the same thing on every task; everything the agents take
or return through their public methods is in the env's own action units.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

M = TypeVar("M", bound=nn.Module)

NOISE_KINDS = ("gaussian", "ou")


class ActionScale:
    """Affine map between the unit box [-1, 1]^d and the env's action Box [low, high]."""

    def __init__(self, act_space: spaces.Box) -> None:
        low = np.asarray(act_space.low, dtype=np.float64)
        high = np.asarray(act_space.high, dtype=np.float64)
        if low.ndim != 1 or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("agents need a 1-D action Box with finite bounds")
        if not np.all(high > low):
            raise ValueError("agents need an action Box with high > low in every dimension")
        self.low = low.astype(np.float32)
        self.high = high.astype(np.float32)
        self.center = torch.as_tensor((high + low) / 2.0, dtype=torch.float32)
        self.half_range = torch.as_tensor((high - low) / 2.0, dtype=torch.float32)
        # the MuJoCo locomotion boxes are [-1, 1]: then both maps are the identity, and skipping
        # their two ops (and autograd nodes) per call is exact (bench/README.md)
        self.identity = bool(np.all(self.low == -1.0) and np.all(self.high == 1.0))

    @property
    def dim(self) -> int:
        """act_dim."""
        return int(self.low.shape[0])

    def to_env(self, unit: Tensor) -> Tensor:
        """(..., d) in [-1, 1] -> env units."""
        if self.identity:
            return unit
        return self.center + self.half_range * unit

    def to_env_np(self, unit: np.ndarray) -> np.ndarray:
        """`to_env` for a numpy action (d,), as float32 and clipped to the Box."""
        if self.identity:
            return self.clip(unit)
        return self.clip(self.center.numpy() + self.half_range.numpy() * unit)

    def to_unit(self, action: Tensor) -> Tensor:
        """(..., d) env units -> [-1, 1] (no clipping: the critic may be asked off the box)."""
        if self.identity:
            return action
        return (action - self.center) / self.half_range

    def clip(self, action: np.ndarray) -> np.ndarray:
        """Clip a numpy action to the Box, as float32."""
        return np.clip(action, self.low, self.high).astype(np.float32)


def check_spaces(obs_space: spaces.Space, act_space: spaces.Space) -> int:
    """Validate the spaces and return obs_dim (agents handle flat Box observations only)."""
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"agents need a flat Box observation space, got {obs_space}")
    if not isinstance(act_space, spaces.Box) or len(act_space.shape) != 1:
        raise ValueError(f"agents need a flat Box action space, got {act_space}")
    return int(obs_space.shape[0])


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Deterministic network initialisation without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def target_copy(net: M) -> M:
    """A frozen copy of `net` to serve as its target network."""
    target = copy.deepcopy(net)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def polyak_update(target: nn.Module | Sequence[nn.Module], online: nn.Module | Sequence[nn.Module], tau: float) -> None:
    """theta' <- (1 - tau) theta' + tau theta = lerp(theta', theta, tau) (buffers copied).

    One multi-tensor `lerp` for all parameters (of all the pairs, given sequences of modules
    such as DDPG's (actor', critic') and (actor, critic)) instead of two ops per parameter.
    """
    targets = [target] if isinstance(target, nn.Module) else list(target)
    onlines = [online] if isinstance(online, nn.Module) else list(online)
    tp = [p for m in targets for p in m.parameters()]
    op = [p for m in onlines for p in m.parameters()]
    if len(tp) != len(op) or len(targets) != len(onlines):
        raise ValueError("target and online networks differ in their parameters")
    torch._foreach_lerp_(tp, op, tau)
    for t, o in zip(targets, onlines, strict=True):
        for tb, b in zip(t.buffers(), o.buffers(), strict=True):
            tb.copy_(b)


class FusedAdam(torch.optim.Adam):
    """`torch.optim.Adam(fused=True)` with less Python per step; the same update, bit for bit.

    `Adam.step` spends 0.1-0.3 ms per call in Python (group set-up, checks, per-device
    grouping) around a 0.1-0.2 ms kernel: 3-4 % of a 2x256 SAC or DDPG update
    (bench/README.md). Once every parameter with a gradient has its state, `step` calls the
    kernel `Adam` itself calls (`torch._fused_adam_`, one call per parameter group) on the
    group's lists; anything else (first step, closures, amsgrad, maximize, tensor lr, sparse or
    complex parameters, several devices or dtypes) takes `Adam.step`. Hooks still run (the class's step is wrapped
    by `Optimizer` as usual). A test checks parameters and state against `Adam(fused=True)`.
    """

    def __init__(self, params, **kwargs) -> None:  # noqa: ANN001 - what torch.optim.Adam takes
        super().__init__(params, fused=True, **kwargs)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - Optimizer.step's signature
        plan = self._fast_plan() if closure is None else None
        if plan is None:  # Adam.step itself, without the hook wrapper Optimizer may have put on it
            adam_step = torch.optim.Adam.step
            return (adam_step.__wrapped__ if getattr(adam_step, "hooked", False) else adam_step)(self, closure)
        for group, params, states in plan:
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(
                params, [p.grad for p in params], [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states], [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                grad_scale=None, found_inf=None,
            )
        return None

    def _fast_plan(self) -> list[tuple[dict, list[Tensor], list[dict]]] | None:
        """Per group: (group, params with a gradient, their states), or None if a case needs `Adam.step`."""
        plan, kinds = [], set()
        for group in self.param_groups:
            if (group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"]
                    or group.get("decoupled_weight_decay") or isinstance(group["lr"], Tensor)):
                return None
            params = [p for p in group["params"] if p.grad is not None]
            states = [self.state.get(p) for p in params]
            if not all(states) or any(p.grad.is_sparse or p.is_complex() for p in params):
                return None  # first step (state made lazily by Adam.step), sparse or complex
            kinds.update((p.device, p.dtype) for p in params)
            if len(kinds) > 1:  # Adam.step groups by device and dtype
                return None
            if params:
                plan.append((group, params, states))
        return plan

    def zero_grad(self, set_to_none: bool = True) -> None:
        """`Optimizer.zero_grad` without its per-call profiler scope and checks, for set_to_none."""
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None
        return None


def relu_in_place(net: nn.Sequential) -> None:
    """Make the ReLUs of an `engine.models.mlp` net work in place on their Linear's output.

    Exact (addmm's backward does not need its output, ReLU's needs only its own): one
    (batch, hidden) allocation and write fewer per layer (bench/README.md: about 4 % of a DDPG
    update at 2x256). Only ReLUs that follow a Linear are changed, so no input is overwritten.
    """
    prev: nn.Module | None = None
    for m in net:
        if isinstance(m, nn.ReLU) and isinstance(prev, nn.Linear):
            m.inplace = True
        prev = m


def mlp_row(net: nn.Sequential, obs: np.ndarray) -> np.ndarray:
    """`net` (Linear, ReLU, Tanh modules) on one observation (obs_dim,) -> (out,), in numpy.

    The act path: on one row a 2x256 MLP is microseconds of arithmetic but about 15 torch ops
    of 5-15 us dispatch each; numpy on views of the parameters (no copy: always the current
    weights) does the same row several times faster (bench/README.md). The views are made once
    per net and kept while every parameter keeps its storage (in-place updates: Adam, Polyak,
    `load_state_dict`); a parameter given new storage (`.to(...)`, `.data = ...`) rebuilds
    them. Making the views each call cost as much as the arithmetic (35 of 65 us per 2x256 row).
    """
    plan = _ROW_PLANS.get(net)
    if plan is None or not plan.current(net):
        plan = _RowPlan(net)
        _ROW_PLANS[net] = plan
    x = np.asarray(obs, dtype=np.float32)
    for weight, bias, activation in plan.layers:
        if weight is not None:
            x = weight @ x + bias
        elif activation is _RELU:
            x = np.maximum(x, 0.0)
        else:
            x = np.tanh(x)
    return x


_RELU, _TANH = "relu", "tanh"


class _RowPlan:
    """Numpy views of a net's parameters for `mlp_row`, and what they were made from."""

    def __init__(self, net: nn.Sequential) -> None:
        self.layers: list[tuple[np.ndarray | None, np.ndarray | None, str | None]] = []
        self.params: list[tuple[dict, Tensor, Tensor, int, int]] = []
        for m in net:
            if isinstance(m, nn.Linear):
                self.layers.append((m.weight.detach().numpy(), m.bias.detach().numpy(), None))
                self.params.append((m._parameters, m.weight, m.bias, m.weight.data_ptr(), m.bias.data_ptr()))
            elif isinstance(m, (nn.ReLU, nn.Tanh)):
                self.layers.append((None, None, _RELU if isinstance(m, nn.ReLU) else _TANH))
            else:
                raise TypeError(f"mlp_row handles Linear, ReLU and Tanh modules, not {type(m).__name__}")
        self.modules = list(net)  # never the net itself: the weak key of `_ROW_PLANS` must die with it

    def current(self, net: nn.Sequential) -> bool:
        """Whether the views still show `net`'s parameters: the same modules and Parameters, each
        on the storage it was viewed on (a view keeps that storage alive, so no new storage can
        take its address). About 3 us, against 35 us for making the views."""
        if list(net) != self.modules:
            return False
        for registered, weight, bias, weight_ptr, bias_ptr in self.params:
            if (registered["weight"] is not weight or registered["bias"] is not bias
                    or weight.data_ptr() != weight_ptr or bias.data_ptr() != bias_ptr):
                return False
        return True


_ROW_PLANS: weakref.WeakKeyDictionary[nn.Sequential, _RowPlan] = weakref.WeakKeyDictionary()


def obs_tensor(obs: np.ndarray) -> Tensor:
    """One numpy observation (obs_dim,) -> float32 tensor (1, obs_dim)."""
    return torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(1, -1)


class ExplorationNoise:
    """Additive noise on unit-box actions: i.i.d. Gaussian, or Ornstein-Uhlenbeck.

    The OU process is the discretisation used by Lillicrap et al. (dt = 1):
    x <- x - theta x + sigma N(0, I); it is temporally correlated, which helps when actions are
    torques (NAF paper, sec. 8.2). Draws come from the agent's generator so a checkpoint
    restores them too.
    """

    def __init__(self, kind: str, sigma: float, theta: float, dim: int, generator: torch.Generator) -> None:
        if kind not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}, not {kind!r}")
        self.kind, self.sigma, self.theta = kind, sigma, theta
        self.generator = generator
        self.state = torch.zeros(dim)
        """OU state (dim,); unused for Gaussian noise."""

    def sample(self) -> Tensor:
        """The next noise vector (dim,)."""
        eps = torch.randn(self.state.shape, generator=self.generator)
        if self.kind == "gaussian":
            return self.sigma * eps
        self.state = self.state - self.theta * self.state + self.sigma * eps
        return self.state.clone()

    def reset(self) -> None:
        """Start a new episode: the OU process restarts from 0."""
        self.state = torch.zeros_like(self.state)


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator for the agent's own sampling (exploration, policy samples)."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g
