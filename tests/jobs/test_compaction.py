"""`fraudflow compact`: each day of the prediction log and the labels rewritten as one file, rows as read before."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fraudflow.cli import app
from fraudflow.lake import Lake
from fraudflow.records import Transaction, TxColumns
from fraudflow.store import labels, predictions
from fraudflow.store.predictions import PredictionBatch, PredictionLog

START = dt.datetime(2018, 4, 1, 20)


def answered(lake: Lake, first: int, n: int) -> None:
    """``n`` answers from TRANSACTION_ID ``first`` (one every 10 minutes from 20:00), committed as one file a day."""
    txs = [
        Transaction(i, START + dt.timedelta(minutes=10 * i), i % 7, i % 11, 10.0 + i) for i in range(first, first + n)
    ]
    scores = (np.arange(first, first + n) % 10) / 10
    with PredictionLog(lake) as log:
        log.append(PredictionBatch(TxColumns.of(txs), scores, 0.5, "m1", ["TX_AMOUNT"], scores[:, None], START))


def files_by_day(lake: Lake, table: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in sorted(Path(lake.root, table).glob("*/part-*.parquet")):
        counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
    return counts


def test_every_day_becomes_one_file_and_readers_see_the_same_rows(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for first in range(0, 300, 30):
        answered(lake, first, 40)  # overlapping: copies of 10 answers in each next file
    for hour in range(6):
        labels.record(lake, {hour: 1, 100 + hour: 0}, label_time=START + dt.timedelta(hours=hour * 5), source="api")
    log_before, labels_before = predictions.read(lake), labels.read(lake)
    assert files_by_day(lake, "predictions") == {
        "tx_date=2018-04-01": 1,
        "tx_date=2018-04-02": 6,
        "tx_date=2018-04-03": 5,
    }
    assert files_by_day(lake, "labels") == {"label_date=2018-04-01": 1, "label_date=2018-04-02": 5}

    result = CliRunner().invoke(app, ["compact", "--data", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert "predictions: 3 days, 2 rewritten (11 files now 2)" in result.output
    assert "labels: 2 days, 1 rewritten (5 files now 1)" in result.output
    assert set(files_by_day(lake, "predictions").values()) == {1}
    assert set(files_by_day(lake, "labels").values()) == {1}
    assert predictions.read(lake).equals(log_before)
    assert labels.read(lake).equals(labels_before)


def test_through_a_day_and_one_table(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for first in range(0, 300, 30):
        answered(lake, first, 40)
    labels.record(lake, {1: 1}, label_time=START)
    labels.record(lake, {2: 1}, label_time=START)

    result = CliRunner().invoke(
        app, ["compact", "--data", str(tmp_path), "--table", "predictions", "--through", "2018-04-02"]
    )

    assert result.exit_code == 0, result.output
    assert files_by_day(lake, "predictions") == {
        "tx_date=2018-04-01": 1,
        "tx_date=2018-04-02": 1,
        "tx_date=2018-04-03": 5,  # after --through: left as it was
    }
    assert files_by_day(lake, "labels") == {"label_date=2018-04-01": 2}  # not asked for
    again = CliRunner().invoke(
        app, ["compact", "--data", str(tmp_path), "--table", "predictions", "--through", "2018-04-02"]
    )
    assert "predictions: 2 days, 0 rewritten" in again.output


def test_an_unknown_table_or_day_is_refused_and_an_empty_lake_has_nothing_to_do(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["compact", "--data", str(tmp_path), "--table", "alerts"])
    assert bad.exit_code == 2 and "unknown table 'alerts'" in bad.output
    bad_day = runner.invoke(app, ["compact", "--data", str(tmp_path), "--through", "yesterday"])
    assert bad_day.exit_code != 0 and "--through" in bad_day.output
    empty = runner.invoke(app, ["compact", "--data", str(tmp_path)])
    assert empty.exit_code == 0 and "predictions: 0 days, 0 rewritten" in empty.output
