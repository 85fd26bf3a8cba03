"""``--engine spark`` on the command line: generate, features, train on a small world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudflow import Lake
from fraudflow.cli import app
from fraudflow.training import model

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]
runner = CliRunner()


@pytest.mark.slow
def test_generate_features_train_with_the_spark_engine(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "lake")
    small = ["--customers", "300", "--terminals", "600", "--days", "36"]
    result = runner.invoke(app, ["generate", "--out", root, *small, "--engine", "spark", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    local = runner.invoke(app, ["generate", "--out", str(tmp_path / "local"), *small, "--json"])
    assert {k: v for k, v in summary.items() if "second" not in k} == {
        k: v for k, v in json.loads(local.output).items() if "second" not in k
    }
    result = runner.invoke(app, ["features", "--data", root, "--engine", "spark", "--feature-set", "fraudflow"])
    assert result.exit_code == 0, result.output
    assert "engine spark" in result.output
    result = runner.invoke(app, ["train", "--data", root, "--start", "2018-04-10", "--engine", "spark"])
    assert result.exit_code == 0, result.output
    lake = Lake(root)
    (model_id,) = model.list_models(lake)
    assert model.load(lake, model_id).metadata["engine"] == "spark"


def test_unknown_engines_exit_2_with_the_choices(spark, tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--days", "2", "--engine", "dask"])
    assert result.exit_code == 2 and "unknown simulation engine 'dask'" in result.output
    result = runner.invoke(app, ["features", "--data", str(tmp_path), "--engine", "dask"])
    assert result.exit_code == 2 and "unknown feature engine 'dask'" in result.output
