"""Where the handbook's files are missing, oracle tests skip on a clone but fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

#: An oracle test whose first step (the handbook_lake fixture) reads the handbook's transactions.
ORACLE_TEST = "tests/features/test_oracle.py::test_every_feature_of_every_row_equals_the_handbook"


def run_oracle_test(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    env["FRAUDFLOW_HANDBOOK"] = str(tmp_path / "no-handbook-here")
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # a quicker start: this run needs no plugin
    if ci is not None:
        env["CI"] = ci
    cmd = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q", "-rfEs", ORACLE_TEST]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_missing_handbook_fails_the_run_under_ci(tmp_path: Path) -> None:
    run = run_oracle_test(tmp_path, "true")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 error" in run.stdout, run.stdout
    assert "no-handbook-here/transactions.parquet not present, and CI=true" in run.stdout, run.stdout


def test_a_missing_handbook_skips_outside_ci(tmp_path: Path) -> None:
    run = run_oracle_test(tmp_path, None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout and "no-handbook-here/transactions.parquet not present" in run.stdout, run.stdout
