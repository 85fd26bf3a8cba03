"""fraudflow: fraud detection end to end, exact to the Fraud Detection Handbook.

The public API is small: simulate a world into a lake, load a table into it, and the errors.
"""

from __future__ import annotations

from fraudflow.errors import (
    ConfigError,
    FeatureError,
    FraudflowError,
    LakeError,
    SchemaError,
    SimulationError,
)
from fraudflow.ingest import ingest
from fraudflow.lake import Lake
from fraudflow.simulate import Summary, WorldParams, generate

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "FeatureError",
    "FraudflowError",
    "Lake",
    "LakeError",
    "SchemaError",
    "SimulationError",
    "Summary",
    "WorldParams",
    "__version__",
    "generate",
    "ingest",
]
