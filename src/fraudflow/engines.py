"""Which engine runs a stage: a registry of names to ``"module:attr"`` strings, imported on demand.

The stages (simulate, features, training) define the interface their engines implement and ask
this registry for the one named (``--engine``); they never import an engine's module themselves,
so the Spark engines in ``fraudflow.distributed`` sit on top of the stages and plug in from there.
An engine's module is imported only when it is resolved: the local engines never load pyspark.

Stdlib only: the CLI validates names and writes its help from here without loading a stage.
"""

from __future__ import annotations

import importlib
from typing import Any

from fraudflow.errors import ConfigError

#: stage -> engine name -> ``"module:attr"`` of the callable implementing the stage's interface
#: (``SimulationEngine`` in simulate.generate, ``FeatureEngine`` in features.batch,
#: ``TrainingEngine`` in training.engine). Order: the default first, as the help lists them.
REGISTRY: dict[str, dict[str, str]] = {
    "simulate": {
        "local": "fraudflow.simulate.local:simulate",
        "spark": "fraudflow.distributed.simulate:simulate",
    },
    "features": {
        "compiled": "fraudflow.features.batch:build_local",
        "duckdb": "fraudflow.features.batch:build_local",
        "spark": "fraudflow.distributed.features:run",
    },
    "training": {
        "local": "fraudflow.training.engine:local_fitter",
        "spark": "fraudflow.distributed.train:split_fitter",
    },
}

#: how each stage's messages name its engines ("unknown feature engine 'x'; ...")
_LABELS = {"simulate": "simulation", "features": "feature", "training": "training"}


def names(stage: str) -> tuple[str, ...]:
    """The engines registered for ``stage``, the default first."""
    return tuple(_stage(stage))


def check(stage: str, name: str) -> None:
    """Raise ``ConfigError`` unless ``name`` is an engine of ``stage``."""
    if name not in _stage(stage):
        raise ConfigError(f"unknown {_LABELS[stage]} engine {name!r}; expected one of {names(stage)}")


def resolve(stage: str, name: str) -> Any:
    """The callable of engine ``name`` for ``stage``, its module imported now (``ConfigError`` if unknown)."""
    check(stage, name)
    module, _, attr = _stage(stage)[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def _stage(stage: str) -> dict[str, str]:
    try:
        return REGISTRY[stage]
    except KeyError:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {tuple(REGISTRY)}") from None
