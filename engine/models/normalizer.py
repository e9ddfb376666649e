"""Per-dimension standardisation fitted on data, kept as module buffers (saved with the model)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """x -> (x - mean) / std per dimension; identity until `fit` is called."""

    def __init__(self, dim: int, min_std: float = 1e-6) -> None:
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: np.ndarray | Tensor) -> Normalizer:
        """Statistics of `x` (n, dim), computed in float64 so large offsets lose nothing."""
        x64 = torch.as_tensor(np.asarray(x, dtype=np.float64))
        mean, std = x64.mean(0), x64.std(0, correction=0)
        # A constant feature (e.g. a coordinate the data never moved) would divide by ~0:
        # leave it unscaled, as MBPO's StandardScaler does.
        std = torch.where(std < self.min_std, torch.ones_like(std), std)
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))
        return self

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, z: Tensor) -> Tensor:
        return z * self.std + self.mean

    def scale(self, z: Tensor) -> Tensor:
        """Only the std part: maps standardised variances/differences back to data units."""
        return z * self.std
