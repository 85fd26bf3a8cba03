"""``evaluate``'s previous model (issue 16's "today's"): the test folds fraudflow beats it on, and the
command's rows and lines, on judged folds made up here (the real run: tests/training/test_evaluate.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fraudflow import Lake, WorldParams, cli, generate
from fraudflow.cli import app
from fraudflow.errors import FeatureError
from fraudflow.features import HANDBOOK, build_features
from fraudflow.training import workflow
from fraudflow.training.evaluation import FoldResults, Selection
from fraudflow.training.metrics import Performance
from fraudflow.training.protocol import TEST_START, Plan, fold_starts

PLAN = Plan.of("handbook", "folds", dt.date(2018, 9, 30), tune=True)
DAYS = fold_starts(TEST_START)  # 2018-08-15, 08-08, 08-01, 07-25
#: per test fold (DAYS' order): AUC, AP, CP@100. fraudflow beats the previous model on 3 of 4 folds
#: for each metric: AUC loses the last, AP ties the second (a tie is no win), CP@100 loses the third.
NEW = [(0.90, 0.75, 0.31), (0.88, 0.70, 0.30), (0.86, 0.72, 0.29), (0.80, 0.70, 0.30)]
OLD = [(0.85, 0.70, 0.30), (0.87, 0.70, 0.29), (0.85, 0.71, 0.30), (0.84, 0.65, 0.28)]
OBSERVABLE = 0.317


def folds(figures: list[tuple[float, float, float]], params: dict[str, Any], reverse: bool = False) -> FoldResults:
    """FoldResults of ``figures`` by fold day (inserted oldest first with ``reverse``)."""
    rows = [
        (day, Performance(auc, ap, cp, 0.419, [cp], [0.419], 100, OBSERVABLE))
        for day, (auc, ap, cp) in zip(DAYS, figures, strict=True)
    ]
    return FoldResults(params, dict(reversed(rows) if reverse else rows))


def selection(figures: list[tuple[float, float, float]], params: dict[str, Any]) -> Selection:
    judged = folds(figures, params)
    return Selection("average_precision", judged, judged, [judged])


def test_fold_wins_counts_strict_wins_fold_by_fold() -> None:
    new, old = folds(NEW, workflow.FRAUDFLOW_PARAMS), folds(OLD, workflow.PREVIOUS_PARAMS, reverse=True)
    # matched by day, not position: the previous model's folds are held in the other order
    wins = {"auc_roc": 3, "average_precision": 3, "card_precision_at_100": 3}
    assert workflow.fold_wins(new, old) == wins
    assert workflow.fold_wins(old, new) == {"auc_roc": 1, "average_precision": 0, "card_precision_at_100": 1}
    with pytest.raises(ValueError, match="not judged on the same folds"):
        workflow.fold_wins(new, FoldResults({}, dict(list(old.folds.items())[:3])))


def evaluation(previous: bool = True) -> workflow.Evaluation:
    return workflow.Evaluation(
        PLAN,
        selection(NEW, workflow.FRAUDFLOW_PARAMS),
        None,
        selection(OLD, workflow.PREVIOUS_PARAMS) if previous else None,
        {"fraudflow": 12.3, **({"previous model": 101.9} if previous else {})},
    )


def test_evaluate_prints_the_previous_model_and_the_folds_fraudflow_beats_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []

    def judged(lake: object, *, with_previous: bool, **options: object) -> workflow.Evaluation:
        asked.append(with_previous)
        return evaluation(with_previous)

    monkeypatch.setattr(workflow, "ensure_features", lambda lake, say=None: None)
    monkeypatch.setattr(workflow, "evaluate", judged)
    monkeypatch.setattr(cli, "out", Console(width=80))  # piped, as in CI: rows and lines still whole
    runner = CliRunner()
    out = runner.invoke(app, ["evaluate", "--data", str(tmp_path), "--protocol", "handbook", "--no-reproduce"])
    assert out.exit_code == 0, out.output
    assert "fraudflow (fraudflow-4, 36 inputs, hist trees)" in out.stdout
    assert "previous model (16 inputs, exact trees)" in out.stdout
    (row,) = [line for line in out.stdout.splitlines() if "previous model (16 inputs" in line]
    assert "0.690 ± 0.023" in row and "0.292 ± 0.008" in row  # OLD's AP and CP@100: mean ± population sd
    shares = f"fraudflow {0.30 / OBSERVABLE:.1%}, previous {0.2925 / OBSERVABLE:.1%}"
    assert f"the models' share of it: {shares}" in out.stdout
    assert "folds where fraudflow beats the previous model: AUC 3/4, AP 3/4, CP@100 3/4" in out.stdout
    assert "selection time (validation grid and test folds): fraudflow 12.3 s, previous model 101.9 s" in out.stdout

    out = runner.invoke(app, ["evaluate", "--data", str(tmp_path), "--protocol", "handbook", "--json"])
    got = json.loads(out.stdout)
    assert got["folds_beating_previous"] == {
        "auc_roc": 3,
        "average_precision": 3,
        "card_precision_at_100": 3,
        "folds": 4,
    }
    before = got["previous_model"]
    assert before["params"] == workflow.PREVIOUS_PARAMS
    assert [f["start"] for f in before["folds"]] == [d.isoformat() for d in DAYS]
    assert round(before["average_precision"], 4) == 0.69
    assert before["observable_share"] == pytest.approx(0.2925 / OBSERVABLE)

    out = runner.invoke(app, ["evaluate", "--data", str(tmp_path), "--no-previous"])
    assert out.exit_code == 0, out.output
    assert "previous" not in out.stdout and asked == [True, True, False]


def test_the_previous_model_is_selected_as_before_fraudflow_4() -> None:
    """docs/MODEL.md section 3: FRAUDFLOW's 16 inputs, exact trees, base score 0.5, its 8-setting grid."""
    assert workflow.PREVIOUS_FEATURES.name == "fraudflow" and len(workflow.PREVIOUS_FEATURES.names) == 16
    assert workflow.PREVIOUS_SPACE == {"max_depth": [3, 6], "n_estimators": [50, 100], "learning_rate": [0.1, 0.3]}
    assert workflow.PREVIOUS_BASE == {"tree_method": "exact", "base_score": 0.5}
    chosen = {**workflow.PREVIOUS_BASE, "max_depth": 3, "n_estimators": 100, "learning_rate": 0.1}
    assert workflow.PREVIOUS_PARAMS == chosen
    assert set(workflow.PREVIOUS_FEATURES.names) <= set(workflow.FRAUDFLOW_FEATURES.names)


def test_a_lake_without_the_previous_models_inputs_is_one_clear_error_before_any_selection(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    generate(lake, WorldParams(n_customers=60, n_terminals=80, nb_days=10, radius=15.0))
    build_features(lake, HANDBOOK)  # the handbook's 15: not the previous model's ratio
    with pytest.raises(FeatureError, match=r"previous model's inputs \(fraudflow's\) are not all in .* 'handbook'"):
        workflow.evaluate(lake)  # 10 days: the coverage error would come first without the early check
    with pytest.raises(FeatureError, match="missing AMOUNT_TO_CUSTOMER_AVG_30DAY"):
        workflow.previous(Lake(lake), PLAN)
