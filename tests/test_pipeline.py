"""End to end on a small world: the pipeline, and the evaluate/train/report commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudflow import WorldParams
from fraudflow.cli import app
from fraudflow.features import FRAUDFLOW4, registry
from fraudflow.lake import Lake
from fraudflow.pipeline import run_pipeline

SMALL = WorldParams(n_customers=500, n_terminals=1000, nb_days=183)
runner = CliRunner()


@pytest.fixture(scope="module")
def piped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("pipeline")
    steps: list[str] = []
    result = run_pipeline(root, SMALL, step=steps.append)
    assert steps == ["generate", "features", "tune", "train + evaluate", "report"]
    return root, result


@pytest.mark.slow
def test_the_pipeline_leaves_a_model_its_metrics_and_report(piped: tuple[Path, object]) -> None:
    root, result = piped
    folder = root / "models" / result.model_id  # type: ignore[attr-defined]
    assert {p.name for p in folder.iterdir()} == {"model.ubj", "metadata.json", "metrics.json", "report.html"}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert len(metrics["folds"]) == 4
    assert 0.5 < metrics["auc_roc"] <= 1
    assert metrics["card_precision_at_100"] <= metrics["card_precision_at_100_bound"] + 1e-12
    assert registry.registered(Lake(root)) == FRAUDFLOW4  # the default feature set (docs/MODEL.md section 4)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["features"] == FRAUDFLOW4.names and meta["selected_on"] == "validation folds"
    assert meta["params"]["tree_method"] == "hist" and meta["params"]["max_bin"] == 8192


@pytest.mark.slow
def test_evaluate_json_and_report_commands(piped: tuple[Path, object]) -> None:
    root, result = piped
    out = runner.invoke(
        app, ["evaluate", "--data", str(root), "--protocol", "handbook", "--json", "--no-reproduce", "--no-previous"]
    )
    assert out.exit_code == 0, out.output
    figures = json.loads(out.stdout)
    for key in ("auc_roc", "average_precision", "card_precision_at_100", "card_precision_at_100_bound"):
        assert 0 <= figures[key] <= 1
    assert "previous_model" not in figures
    model_dir = root / "models" / result.model_id  # type: ignore[attr-defined]
    (model_dir / "report.html").unlink()
    out = runner.invoke(app, ["report", str(model_dir)])
    assert out.exit_code == 0, out.output
    assert (model_dir / "report.html").stat().st_size > 10_000
    assert runner.invoke(app, ["evaluate", "--data", str(root), "--protocol", "kaggle"]).exit_code == 2


@pytest.mark.slow
def test_train_command_on_one_split(piped: tuple[Path, object]) -> None:
    root, _ = piped
    out = runner.invoke(app, ["train", "--data", str(root), "--start", "2018-07-25"])
    assert out.exit_code == 0, out.output
    assert "report:" in out.output and "single split 2018-07-25" in out.output
