import torch

# tiny networks and a shared 2-core machine: extra threads only contend
torch.set_num_threads(1)
