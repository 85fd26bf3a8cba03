"""Replay the world's next day into a live service, then prove served features equal batch ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudflow.cli import app
from tests.serving.conftest import start_server

runner = CliRunner()


@pytest.mark.slow
def test_replay_then_consistency_finds_no_mismatch(served_lake: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    shutil.copytree(served_lake, root)
    server = start_server(root)
    try:
        out = runner.invoke(
            app,
            [
                "replay",
                "--data",
                str(root),
                "--url",
                server.url,
                "--days",
                "2",
                "--rate",
                "2000",
                "--concurrency",
                "1",
                "--json",
            ],
        )
        assert out.exit_code == 0, out.output
        summary = json.loads(out.stdout)
        assert summary["answered"] == summary["transactions"] > 500 and summary["errors"] == 0
        assert 0 <= summary["p99_ms"] and 0 <= summary["auc_roc"] <= 1
    finally:
        server.stop()
    out = runner.invoke(app, ["consistency", "--data", str(root)])
    assert out.exit_code == 0, out.output
    assert f"{summary['answered']:,} of {summary['answered']:,} served" in out.output
    # and every feature reports zero mismatches
    rows = [line for line in out.output.splitlines() if "WINDOW" in line or "TX_" in line]
    assert rows and all(line.rstrip().rstrip("│").split()[-1] == "0" for line in rows)
