import torch

# The study's networks are tiny; more threads only contend with the other test processes.
torch.set_num_threads(1)
