"""The command line: help, a small generate, errors as exit code 2 with the message."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fraudflow.cli import app
from tests.conftest import read_lake_table

runner = CliRunner()


def small_world(out: Path, *options: str) -> list[str]:
    """``fraudflow generate`` of a small world into ``out``, with more ``options``."""
    return ["generate", "--out", str(out), "--customers", "60", "--terminals", "80", "--radius", "15", *options]


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "generate",
        "ingest",
        "features",
        "training-set",
        "train",
        "evaluate",
        "report",
        "pipeline",
        "materialize",
        "serve",
        "replay",
        "consistency",
        "labels",
        "monitor",
        "operate",
        "models",
        "compact",
        "athena-ddl",
    ):
        assert command in result.output


def test_generate_prints_a_summary_and_writes_the_lake(tmp_path: Path) -> None:
    result = runner.invoke(app, small_world(tmp_path, "--days", "12", "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == read_lake_table(tmp_path).num_rows > 0
    assert summary["days"] == 12
    assert set(summary["frauds_by_scenario"]) == {"1", "2", "3"}


def test_generate_continues_a_world(tmp_path: Path) -> None:
    assert runner.invoke(app, small_world(tmp_path, "--days", "10")).exit_code == 0
    result = runner.invoke(app, small_world(tmp_path, "--days", "5", "--from-day", "10"))
    assert result.exit_code == 0, result.output
    ids = read_lake_table(tmp_path)["TRANSACTION_ID"].to_numpy()
    assert ids.tolist() == list(range(len(ids)))


def test_bad_arguments_exit_2_with_the_reason(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--customers", "0"])
    assert result.exit_code == 2
    assert "n_customers must be positive" in result.output
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--start-date", "April"])
    assert result.exit_code == 2 and "expected a date YYYY-MM-DD" in result.output


def test_ingest_error_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("TRANSACTION_ID,TX_DATETIME\n1,2018-04-01 00:00:00\n")
    result = runner.invoke(app, ["ingest", str(tmp_path / "t.csv"), "--out", str(tmp_path / "lake")])
    assert result.exit_code == 2
    assert "missing column(s)" in result.output
    assert not (tmp_path / "lake").exists()


def test_features_and_training_set_commands(tmp_path: Path) -> None:
    assert runner.invoke(app, small_world(tmp_path, "--days", "30", "--start-date", "2018-07-01")).exit_code == 0
    result = runner.invoke(app, ["features", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "30 days" in result.output
    out_file = tmp_path / "train.parquet"
    result = runner.invoke(
        app, ["training-set", "--data", str(tmp_path), "--start", "2018-07-05", "--out", str(out_file)]
    )
    assert result.exit_code == 0, result.output
    assert "train set 2018-07-05 .. 2018-07-11" in result.output and out_file.exists()
    result = runner.invoke(
        app, ["training-set", "--data", str(tmp_path), "--kind", "test", "--start", "2018-07-05", "--dialect", "athena"]
    )
    assert result.exit_code == 0 and "known_frauds" in result.output and "'2018-07-19'" in result.output
    result = runner.invoke(app, ["features", "--data", str(tmp_path), "--engine", "pandas"])
    assert result.exit_code == 2 and "unknown feature engine" in result.output
    result = runner.invoke(app, ["features", "--data", str(tmp_path), "--feature-set", "kaggle"])
    assert result.exit_code == 2 and "unknown feature set 'kaggle'" in result.output
    result = runner.invoke(app, ["training-set", "--data", str(tmp_path), "--dialect", "oracle"])
    assert result.exit_code == 2 and "unknown dialect 'oracle'" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "model")])
    assert result.exit_code == 2 and "expected a path like <root>/models/<id>" in result.output
