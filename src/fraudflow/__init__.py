"""fraudflow: fraud detection end to end, exact to the Fraud Detection Handbook.

The Python API: every CLI command as a function, for notebooks and scripts. Each takes the lake as
a ``Lake`` or its URL or path (a local folder, ``s3://bucket/prefix``) and returns Arrow tables or
typed results::

    import fraudflow as ff

    ff.generate("lake", ff.WorldParams(n_customers=500, nb_days=60))   # -> SimulationSummary
    ff.ingest("my.parquet", "lake")                                    # -> IngestSummary
    ff.build_features("lake", ff.FRAUDFLOW)                            # -> FeatureSummary
    ff.read_features("lake", as_of=...)                                # -> pyarrow.Table
    ff.training_set("lake", start)                                     # -> pyarrow.Table
    ff.train("lake", start)                                            # -> TrainedModel
    ff.evaluate("lake")                                                # -> Evaluation
    ff.run_pipeline("lake")                                            # -> PipelineResult
    scorer = ff.Scorer.from_lake("lake")                               # online features + model
    scorer.score([ff.Transaction(...)])                                # -> list of answers
    ff.create_app(ff.Settings(data="lake"), scorer)                    # the FastAPI service

Only the errors are imported eagerly. The rest is imported on first use (PEP 562), so that
``import fraudflow`` and ``fraudflow --help`` load neither numba nor pyarrow, pandas or the
other heavy modules (tests/test_imports.py checks it).
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from fraudflow.errors import (
    ConfigError,
    CoverageError,
    FeatureError,
    FraudflowError,
    LakeError,
    SchemaError,
    SimulationError,
)

if TYPE_CHECKING:
    from fraudflow.features.batch import FeatureSummary, build_features
    from fraudflow.features.definitions import FRAUDFLOW, HANDBOOK, Feature, FeatureSet
    from fraudflow.features.registry import read_features
    from fraudflow.ingest import IngestSummary, ingest
    from fraudflow.lake import Lake
    from fraudflow.pipeline import PipelineResult, run_pipeline
    from fraudflow.records import Transaction
    from fraudflow.serving.app import create_app
    from fraudflow.serving.engine import Scorer
    from fraudflow.serving.settings import Settings
    from fraudflow.simulate.generate import SimulationSummary, generate
    from fraudflow.simulate.world import WorldParams
    from fraudflow.training.datasets import training_set
    from fraudflow.training.workflow import Evaluation, TrainedModel, evaluate, train

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported when the name is first read.
_LAZY = {
    "generate": "fraudflow.simulate.generate",
    "SimulationSummary": "fraudflow.simulate.generate",
    "WorldParams": "fraudflow.simulate.world",
    "ingest": "fraudflow.ingest",
    "IngestSummary": "fraudflow.ingest",
    "Lake": "fraudflow.lake",
    "build_features": "fraudflow.features.batch",
    "FeatureSummary": "fraudflow.features.batch",
    "Feature": "fraudflow.features.definitions",
    "FeatureSet": "fraudflow.features.definitions",
    "HANDBOOK": "fraudflow.features.definitions",
    "FRAUDFLOW": "fraudflow.features.definitions",
    "read_features": "fraudflow.features.registry",
    "training_set": "fraudflow.training.datasets",
    "train": "fraudflow.training.workflow",
    "TrainedModel": "fraudflow.training.workflow",
    "evaluate": "fraudflow.training.workflow",
    "Evaluation": "fraudflow.training.workflow",
    "run_pipeline": "fraudflow.pipeline",
    "PipelineResult": "fraudflow.pipeline",
    "Transaction": "fraudflow.records",
    "Scorer": "fraudflow.serving.engine",
    "Settings": "fraudflow.serving.settings",
    "create_app": "fraudflow.serving.app",
}

__all__ = [
    "FRAUDFLOW",
    "HANDBOOK",
    "ConfigError",
    "CoverageError",
    "Evaluation",
    "Feature",
    "FeatureError",
    "FeatureSet",
    "FeatureSummary",
    "FraudflowError",
    "IngestSummary",
    "Lake",
    "LakeError",
    "PipelineResult",
    "SchemaError",
    "Scorer",
    "Settings",
    "SimulationError",
    "SimulationSummary",
    "TrainedModel",
    "Transaction",
    "WorldParams",
    "__version__",
    "build_features",
    "create_app",
    "evaluate",
    "generate",
    "ingest",
    "read_features",
    "run_pipeline",
    "train",
    "training_set",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fraudflow' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps ``fraudflow.ingest`` the function once the module ``fraudflow.ingest`` is imported.

    Importing a submodule binds it on its package under its own name; the eager import this
    package used to do rebound the name to the function, and this does the same lazily.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
