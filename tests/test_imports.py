"""Start-up: ``import fraudflow`` and ``fraudflow --help`` load none of the heavy modules.

Each check runs in a fresh interpreter (this test process has imported everything already) and
looks at ``sys.modules`` afterwards. Times are measured by benchmarks/cli_startup.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Modules a command may load when it needs them, never at import or for --help.
HEAVY = (
    "numba",
    "llvmlite",
    "pandas",
    "pyarrow",
    "pyarrow.dataset",
    "numpy",
    "xgboost",
    "fastapi",
    "uvicorn",
    "sklearn",
    "scipy",
    "duckdb",
    "matplotlib",
    "sqlglot",
    "fsspec",
)

IMPORT = "import fraudflow"
HELP = """
from fraudflow.cli import app
try:
    app(["--help"])
except SystemExit as exc:
    assert not exc.code, exc.code
"""
COMMAND_HELP = HELP.replace('"--help"', '"generate", "--help"')


def loaded_after(code: str) -> set[str]:
    """The modules a new interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("code", [IMPORT, HELP, COMMAND_HELP], ids=["import", "help", "generate-help"])
def test_start_up_loads_no_heavy_module(code: str) -> None:
    heavy = sorted(loaded_after(code) & set(HEAVY))
    assert heavy == [], f"loaded at start-up: {heavy}"


def test_help_still_lists_the_commands() -> None:
    script = HELP.replace("from fraudflow.cli import app", "from fraudflow.cli import app\nimport sys")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "generate" in out.stdout and "features" in out.stdout


def test_public_names_still_import_lazily() -> None:
    """The lazy package gives the same objects as the modules that define them."""
    import fraudflow
    from fraudflow.ingest import ingest
    from fraudflow.lake import Lake
    from fraudflow.simulate import SimulationSummary, WorldParams, generate

    assert (fraudflow.Lake, fraudflow.WorldParams, fraudflow.SimulationSummary) == (
        Lake,
        WorldParams,
        SimulationSummary,
    )
    assert fraudflow.generate is generate
    assert fraudflow.ingest is ingest  # the function, although the module fraudflow.ingest is imported
    assert set(fraudflow.__all__) <= set(dir(fraudflow))
    with pytest.raises(AttributeError):
        _ = fraudflow.no_such_name
