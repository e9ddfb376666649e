"""Agent tests: one torch thread, and a fixture over the three agents."""

from __future__ import annotations

import pytest
import torch

from agent_kit import SMALL

# Tiny networks; more threads would only contend with the other test processes on 2 cores.
torch.set_num_threads(1)


@pytest.fixture(params=sorted(SMALL))
def agent_name(request: pytest.FixtureRequest) -> str:
    return request.param
