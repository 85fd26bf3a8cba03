"""Simulate the Fraud Detection Handbook's transaction world, exactly and at any scale."""

from fraudflow.simulate.changes import CompromisedTerminals, SpendingShift, UnderThresholdFrauds, WorldChange
from fraudflow.simulate.generate import SimulationSummary, World, generate, recorded_world
from fraudflow.simulate.world import WorldParams

__all__ = [
    "CompromisedTerminals",
    "SimulationSummary",
    "SpendingShift",
    "UnderThresholdFrauds",
    "World",
    "WorldChange",
    "WorldParams",
    "generate",
    "recorded_world",
]
