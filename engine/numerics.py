"""Process-wide torch numerics that every engine entry point sets before it computes: the
trainer, the gradient-error study (and its worker processes) and the model-comparison study."""

from __future__ import annotations

import torch


def set_process_numerics(threads: int) -> None:
    """Use `threads` intra-op torch threads and flush denormal floats to zero, process-wide."""
    torch.set_num_threads(threads)
    # Dead ReLU units get zero gradients, so their Adam moments decay into denormal floats and
    # stick there: after 10k Hopper steps 20-35 % of the hidden layers' moments were denormal,
    # Adam's kernel ran x31 slower on them and took a fifth of an MBPO step (bench/README.md,
    # denormals.py). Flushing them to zero (as TensorFlow's CPU kernels do) changes nothing
    # above 1.2e-38.
    torch.set_flush_denormal(True)
