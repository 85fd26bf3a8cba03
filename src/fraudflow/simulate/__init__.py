"""Simulate the Fraud Detection Handbook's transaction world, exactly and at any scale."""

from fraudflow.simulate.generate import SimulationSummary, World, generate
from fraudflow.simulate.world import WorldParams

__all__ = ["SimulationSummary", "World", "WorldParams", "generate"]
