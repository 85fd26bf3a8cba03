"""Any data, any calendar: the days derive from the lake, too little data is one line, unfinished models are never used.

A second world on its own calendar (from 2019-01-01, 120 days) trains and evaluates with the days
the rule derives from its last day; the handbook's protocol keeps the published days and says so
when a lake does not hold them; a model whose training stopped before its metrics is invisible.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fraudflow import Lake, WorldParams, generate
from fraudflow.cli import app
from fraudflow.errors import CoverageError, LakeError
from fraudflow.features import build_features
from fraudflow.serving.engine import Scorer
from fraudflow.training import evaluation, model, workflow
from fraudflow.training.protocol import (
    DELAY_DAYS,
    SINGLE_SPLIT_START,
    TEST_START,
    Plan,
    fold_starts,
    newest_mature_start,
    split_days,
)

SECOND = WorldParams(n_customers=300, n_terminals=600, nb_days=120, start_date=dt.date(2019, 1, 1), radius=10.0)
FIRST_DAY, LAST_DAY = dt.date(2019, 1, 1), dt.date(2019, 4, 30)
#: the rule on the second world: the newest split whose test week ends DELAY_DAYS before the last day
NEWEST = dt.date(2019, 4, 3)
runner = CliRunner()


def world(root: Path, params: WorldParams) -> Path:
    generate(root, params)
    build_features(root, workflow.FRAUDFLOW_FEATURES)  # the model's: the commands compute nothing more
    return root


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return world(tmp_path_factory.mktemp("second") / "lake", SECOND)


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 days: enough for one split (28), not for an evaluation (84)."""
    return world(tmp_path_factory.mktemp("short") / "lake", WorldParams(200, 400, 40, dt.date(2019, 1, 1), 10.0))


def one_line_error(result: Result) -> str:
    """The refusal, checked to be one line, exit code 1, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_the_rule_and_the_handbooks_days() -> None:
    # the newest split whose test labels are mature: its test week ends DELAY_DAYS before the last day
    assert NEWEST == newest_mature_start(LAST_DAY)
    assert split_days(NEWEST, "test")[1] == LAST_DAY - dt.timedelta(days=DELAY_DAYS)
    assert newest_mature_start(dt.date(2018, 9, 30)) == dt.date(2018, 9, 3)
    folds = Plan.of("lake", "folds", LAST_DAY, tune=True)
    assert folds.judged == tuple(fold_starts(NEWEST)) and folds.validation == dt.date(2019, 2, 27)
    assert folds.days() == (dt.date(2019, 2, 6), dt.date(2019, 4, 23))  # 77 days, then 7 for the labels: 84
    # the handbook's published days, whatever the lake's last day
    handbook = Plan.of("handbook", "folds", LAST_DAY, tune=True)
    assert handbook.judged == tuple(fold_starts(TEST_START)) and handbook.validation == dt.date(2018, 7, 11)
    split = Plan.of("handbook", "split", LAST_DAY, tune=True)
    assert split.judged == (SINGLE_SPLIT_START,) and split.validation == dt.date(2018, 7, 11)
    assert Plan.of("lake", "split", LAST_DAY, tune=False).days() == (NEWEST, dt.date(2019, 4, 23))


def test_train_and_training_set_take_their_split_from_the_lake(second: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(second)])
    assert result.exit_code == 0, result.output
    assert f"single split {NEWEST} (the newest" in result.output
    model_id = model.latest_model(Lake(second))
    meta = json.loads((second / "models" / model_id / "metadata.json").read_text())
    assert (meta["train_start"], meta["train_end"], meta["test_starts"]) == ("2019-04-03", "2019-04-09", ["2019-04-03"])
    result = runner.invoke(app, ["training-set", "--data", str(second), "--kind", "test"])
    assert result.exit_code == 0, result.output
    assert "test set 2019-04-17 .. 2019-04-23" in result.output


@pytest.mark.slow
def test_evaluate_derives_its_folds_from_the_lake(second: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--data", str(second), "--no-reproduce", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["protocol"] == "lake" and got["cp_gap_closed"] is None  # the handbook's figures are for its days
    assert [f["start"] for f in got["folds"]] == ["2019-04-03", "2019-03-27", "2019-03-20", "2019-03-13"]
    assert got["validation_starts"] == ["2019-02-27", "2019-02-20", "2019-02-13", "2019-02-06"]
    for key in ("auc_roc", "average_precision", "card_precision_at_100"):
        assert 0 < got[key] <= 1
    assert got["auc_roc"] > 0.7
    print({k: round(got[k], 3) for k in ("auc_roc", "average_precision", "card_precision_at_100")})
    # the previous model, selected on the same validation folds, judged on the same test folds
    before = got["previous_model"]
    assert [f["start"] for f in before["folds"]] == [f["start"] for f in got["folds"]]
    assert before["params"]["tree_method"] == "exact" and 0 < before["average_precision"] <= 1
    wins = got["folds_beating_previous"]
    assert wins.pop("folds") == 4 and set(wins) == {"auc_roc", "average_precision", "card_precision_at_100"}
    assert set(got["selection_seconds"]) == {"fraudflow", "previous model"}


def test_too_little_data_is_one_line_with_the_days_needed(short: Path) -> None:
    line = one_line_error(runner.invoke(app, ["evaluate", "--data", str(short)]))
    assert "too little data: evaluation needs 84 days" in line
    assert "the lake has 40 days (2019-01-01 .. 2019-02-09)" in line
    line = one_line_error(runner.invoke(app, ["train", "--data", str(short), "--tune"]))
    assert "training needs 63 days" in line and "the lake has 40 days" in line
    with pytest.raises(CoverageError, match="needs 84 days"):
        workflow.evaluate(short)
    assert model.list_models(Lake(short)) == []


def test_pipeline_refuses_a_short_world_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    small = ["--customers", "50", "--terminals", "100"]
    line = one_line_error(runner.invoke(app, ["pipeline", "--out", str(out), *small, "--days", "60"]))
    assert "needs 84 days" in line and "the lake has 60 days (2018-04-01 .. 2018-05-30)" in line
    args = ["pipeline", "--out", str(out), *small, "--start-date", "2019-01-01", "--protocol", "handbook"]
    assert "handbook's protocol" in one_line_error(runner.invoke(app, args))
    assert not out.exists()


def test_the_handbook_protocol_says_when_the_lake_lacks_its_days(second: Path) -> None:
    line = one_line_error(runner.invoke(app, ["evaluate", "--data", str(second), "--protocol", "handbook"]))
    assert "the handbook's protocol reads its published days 2018-06-20 .. 2018-09-04" in line
    assert "(2019-01-01 .. 2019-04-30) does not cover" in line
    line = one_line_error(runner.invoke(app, ["train", "--data", str(second), "--protocol", "handbook"]))
    assert "2018-07-25 .. 2018-08-14" in line
    line = one_line_error(runner.invoke(app, ["train", "--data", str(second), "--start", "2018-07-25"]))
    assert "reads 2018-07-25 .. 2018-08-14; the lake has 120 days (2019-01-01 .. 2019-04-30)" in line


def test_features_catch_up_with_new_days(tmp_path: Path) -> None:
    """Days generated after the features get theirs before training, and the split moves with the last day."""
    root = world(tmp_path / "lake", WorldParams(200, 400, 40, dt.date(2019, 1, 1), 10.0))
    generate(root, WorldParams(200, 400, 50, dt.date(2019, 1, 1), 10.0), from_day=40)
    result = runner.invoke(app, ["train", "--data", str(root)])
    assert result.exit_code == 0, result.output
    assert "the 10 day(s) without them, from 2019-02-10" in result.output
    assert f"single split {newest_mature_start(dt.date(2019, 2, 19))}" in result.output


def test_a_model_that_did_not_finish_is_never_listed_loaded_or_served(
    second: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(second)
    small = {"n_estimators": 10, "max_depth": 2}
    finished = workflow.train(lake, params=small).model_id
    before = sorted(p.name for p in (second / "models").iterdir())
    # a crash while judging the folds: nothing saved
    with monkeypatch.context() as m:
        m.setattr(evaluation.metrics, "performance", lambda *a, **k: [][0])
        with pytest.raises(IndexError):
            workflow.train(lake, params=small)
    assert sorted(p.name for p in (second / "models").iterdir()) == before
    # a crash after the model was written, before its metrics: a folder, never used
    with monkeypatch.context() as m:
        m.setattr(model, "save_metrics", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError):
            workflow.train(lake, params=small)
    (unfinished,) = {p.name for p in (second / "models").iterdir()} - set(before)
    assert unfinished > finished and {"model.ubj", "metadata.json"} <= {
        p.name for p in (second / "models" / unfinished).iterdir()
    }
    assert unfinished not in model.list_models(lake) and model.latest_model(lake) != unfinished
    with pytest.raises(LakeError, match="not a finished model"):
        model.load(lake, unfinished)
    scorer = Scorer.from_lake(lake, online="memory://")
    assert scorer.model_id == model.latest_model(lake) == finished
    with pytest.raises(LakeError, match="not a finished model"):
        Scorer.from_lake(lake, unfinished, online="memory://")
