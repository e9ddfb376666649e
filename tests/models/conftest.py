import pytest
import torch

from engine.envs.mujoco_state import quiet_mujoco_warnings
from modelkit import collect

# The models here are small; more threads only contend with the other test processes.
torch.set_num_threads(1)
# mujoco 4 would otherwise write MUJOCO_LOG.TXT into the working directory on every env.
quiet_mujoco_warnings()


@pytest.fixture(scope="session")
def pendulum_data():
    """InvertedPendulum-v5 with random actions: (train, test) from different seeds."""
    return collect("InvertedPendulum-v5", 3000, seed=0), collect("InvertedPendulum-v5", 1000, seed=1)
