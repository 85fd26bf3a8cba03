"""Simulate the Fraud Detection Handbook's transaction world, exactly and at any scale."""

from fraudflow.simulate.generate import Summary, World, generate
from fraudflow.simulate.world import WorldParams

__all__ = ["Summary", "World", "WorldParams", "generate"]
