"""fraudflow: fraud detection end to end, exact to the Fraud Detection Handbook.

The public API is small: simulate a world into a lake, load a table into it, and the errors.

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
    FeatureError,
    FraudflowError,
    LakeError,
    SchemaError,
    SimulationError,
)

if TYPE_CHECKING:
    from fraudflow.ingest import ingest
    from fraudflow.lake import Lake
    from fraudflow.simulate.generate import Summary, generate
    from fraudflow.simulate.world import WorldParams

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported when the name is first read.
_LAZY = {
    "ingest": "fraudflow.ingest",
    "Lake": "fraudflow.lake",
    "Summary": "fraudflow.simulate",
    "WorldParams": "fraudflow.simulate",
    "generate": "fraudflow.simulate",
}

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
