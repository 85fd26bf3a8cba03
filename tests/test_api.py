"""The Python API: the names ``fraudflow`` exports, each documented, one per CLI command."""

from __future__ import annotations

import inspect

import fraudflow

#: The public names. A name added or removed is a change of the API: update this list with it.
EXPORTED = {
    # the stages, one function per CLI command
    "generate",
    "ingest",
    "build_features",
    "read_features",
    "training_set",
    "train",
    "evaluate",
    "run_pipeline",
    "Scorer",
    "create_app",
    # what they take and return
    "Lake",
    "WorldParams",
    "Feature",
    "FeatureSet",
    "HANDBOOK",
    "FRAUDFLOW",
    "Transaction",
    "Settings",
    "SimulationSummary",
    "IngestSummary",
    "FeatureSummary",
    "TrainedModel",
    "Evaluation",
    "PipelineResult",
    # errors
    "FraudflowError",
    "ConfigError",
    "CoverageError",
    "FeatureError",
    "LakeError",
    "SchemaError",
    "SimulationError",
    "__version__",
}

#: Each CLI command and the function that does its work in the API.
COMMANDS = {
    "generate": "generate",
    "ingest": "ingest",
    "features": "build_features",
    "training-set": "training_set",
    "train": "train",
    "evaluate": "evaluate",
    "pipeline": "run_pipeline",
    "serve": "create_app",
}


def test_the_exported_names_are_the_api() -> None:
    assert set(fraudflow.__all__) == EXPORTED
    for name in EXPORTED - {"__version__"}:
        value = getattr(fraudflow, name)
        assert value is not None, name
        if inspect.isfunction(value) or inspect.isclass(value):
            assert (value.__doc__ or "").strip(), f"fraudflow.{name} has no docstring"


def test_every_command_has_its_function() -> None:
    from typer.main import get_command

    from fraudflow.cli import app

    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    assert set(COMMANDS) <= commands
    for function in COMMANDS.values():
        assert callable(getattr(fraudflow, function))


def test_functions_take_the_lake_by_url() -> None:
    """Every stage takes the lake as a Lake or its URL or path (its first parameter)."""
    for name in ("generate", "build_features", "read_features", "training_set", "train", "evaluate", "run_pipeline"):
        first = next(iter(inspect.signature(getattr(fraudflow, name)).parameters.values()))
        assert "str" in str(first.annotation) and "Lake" in str(first.annotation), (name, first.annotation)
