"""Replay.sample: the batch is the replay's rows at uniformly drawn indices, as float32 tensors."""

from __future__ import annotations

import numpy as np
import torch

from engine.train.replay import Replay


def test_sample_returns_the_rows_at_the_drawn_indices() -> None:
    rng = np.random.default_rng(0)
    replay = Replay.empty(50, 3, 2, 4)
    for k in range(40):
        replay.add(obs=rng.normal(size=3), action=rng.normal(size=2), reward=rng.normal(), next_obs=rng.normal(size=3),
                   terminated=k % 7 == 0, sim_state=rng.normal(size=4), next_sim_state=rng.normal(size=4))
    batch = replay.sample(16, np.random.default_rng(3), with_sim=True)
    idx = np.random.default_rng(3).integers(0, replay.size, 16)  # the same draw
    for name in ("obs", "action", "reward", "next_obs"):
        got = getattr(batch, name)
        assert got.dtype == torch.float32 and torch.equal(got, torch.as_tensor(getattr(replay, name)[idx]))
    assert batch.terminated.dtype == torch.float32
    assert torch.equal(batch.terminated, torch.as_tensor(replay.terminated[idx]).float()) and batch.terminated.any()
    np.testing.assert_array_equal(batch.sim_state, replay.next_sim_state[idx])
    assert replay.sample(8, rng).sim_state is None
