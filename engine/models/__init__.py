"""Learned function approximators shared by agents and studies (torch)."""

from engine.models.mlp import mlp

__all__ = ["mlp"]
