"""fraudflow's exceptions: one root, one subclass per stage.

    FraudflowError
    ├── ConfigError          invalid parameters or settings (CLI flags, world.json, events)
    ├── LakeError            reading or writing the lake (missing world, partial partition, I/O)
    ├── CoverageError        the lake does not hold the days a stage reads (too few, or not the protocol's)
    ├── SchemaError          a table does not have the expected columns, types or values
    ├── SimulationError      the simulator was asked something it cannot do
    └── FeatureError         feature definitions, registry version mismatch

Third-party errors are translated at the boundary with ``raise ... from``.
"""

from __future__ import annotations


class FraudflowError(Exception):
    """Root of every error fraudflow raises on purpose."""


class ConfigError(FraudflowError, ValueError):
    """Invalid parameters or settings."""


class LakeError(FraudflowError):
    """A lake could not be read or written as expected."""


class CoverageError(FraudflowError):
    """The lake does not hold the days a stage reads: too few of them, or not the protocol's."""


class SchemaError(FraudflowError, ValueError):
    """A table does not have the expected columns, types or values."""


class SimulationError(FraudflowError):
    """The simulator was asked for something it cannot do."""


class FeatureError(FraudflowError):
    """Feature definitions or their registry are inconsistent."""
