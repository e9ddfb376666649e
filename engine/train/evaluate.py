"""Evaluation episodes and Study 2 samples: the critic's Q(s, a) vs the discounted return.

At a snapshot the current policy runs its deterministic (mean) action in a separate copy of the
real environment. Every visited pair gets the critic's prediction and the Monte-Carlo return
sum_k gamma^k r_{t+k} to the episode's end; pairs of an episode cut by the time limit (or by
`eval_max_steps`) are flagged `censored`: their return is a truncated sum, biased low for
positive rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from engine.agents.base import Agent


@dataclass(frozen=True)
class EvalResult:
    """Returns and lengths per episode, and (subsampled) critic samples."""

    returns: np.ndarray  # (episodes,)
    lengths: np.ndarray  # (episodes,)
    q_pred: np.ndarray  # (samples,) NaN-padded
    return_true: np.ndarray  # (samples,)
    t: np.ndarray  # (samples,) -1 pads
    episode: np.ndarray  # (samples,) -1 pads
    censored: np.ndarray  # (samples,) bool


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + gamma G_{t+1}, G_T = 0."""
    out = np.zeros(len(rewards), np.float64)
    acc = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        acc = rewards[i] + gamma * acc
        out[i] = acc
    return out


def evaluate(
    agent: Agent, env: gym.Env, episodes: int, max_steps: int, gamma: float, samples: int, seed: int
) -> EvalResult:
    """Run `episodes` deterministic episodes; keep `samples` evenly spaced critic samples."""
    rets, lens = [], []
    obs_l, act_l, g_l, t_l, ep_l, cens_l = [], [], [], [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        o_buf, a_buf, r_buf = [], [], []
        cut = False
        for _ in range(max_steps):
            action = agent.act(obs, deterministic=True)
            nxt, r, terminated, truncated, _ = env.step(action)
            o_buf.append(obs)
            a_buf.append(action)
            r_buf.append(r)
            obs = nxt
            if terminated or truncated:
                cut = bool(truncated and not terminated)
                break
        else:
            cut = True  # stopped by eval_max_steps
        rewards = np.asarray(r_buf, np.float64)
        rets.append(rewards.sum())
        lens.append(len(rewards))
        obs_l.append(np.asarray(o_buf, np.float32))
        act_l.append(np.asarray(a_buf, np.float32))
        g_l.append(discounted_returns(rewards, gamma))
        t_l.append(np.arange(len(rewards)))
        ep_l.append(np.full(len(rewards), ep))
        cens_l.append(np.full(len(rewards), cut))
    all_obs, all_act = np.concatenate(obs_l), np.concatenate(act_l)
    n = len(all_obs)
    pick = np.unique(np.linspace(0, n - 1, min(samples, n)).round().astype(int))
    with torch.no_grad():
        q = agent.q_value(torch.as_tensor(all_obs[pick]), torch.as_tensor(all_act[pick])).numpy()

    def pad(values: np.ndarray, fill: float | int | bool, dtype: type) -> np.ndarray:
        out = np.full(samples, fill, dtype)
        out[: len(values)] = values
        return out

    return EvalResult(
        returns=np.asarray(rets, np.float32), lengths=np.asarray(lens, np.int64),
        q_pred=pad(q, np.nan, np.float32), return_true=pad(np.concatenate(g_l)[pick], np.nan, np.float32),
        t=pad(np.concatenate(t_l)[pick], -1, np.int64), episode=pad(np.concatenate(ep_l)[pick], -1, np.int64),
        censored=pad(np.concatenate(cens_l)[pick], False, bool),
    )
