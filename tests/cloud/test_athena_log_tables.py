"""Athena DDL of the prediction log and the labels: parsed by sqlglot, columns equal to the written files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import sqlglot
from typer.testing import CliRunner

from fraudflow import WorldParams, generate
from fraudflow.cli import app
from fraudflow.features import build_features
from fraudflow.lake import Lake
from fraudflow.store import labels, predictions
from fraudflow.store.predictions import PredictionLog
from fraudflow.training.datasets import connect, training_set
from tests.cloud.test_athena import declared_tables
from tests.store.test_predictions import batch

runner = CliRunner()


def test_log_tables_ddl_matches_their_files_and_the_view_dedupes(tmp_path: Path) -> None:
    generate(tmp_path, WorldParams(n_customers=100, n_terminals=200, nb_days=10, radius=20.0))
    build_features(tmp_path)
    lake = Lake(tmp_path)
    with PredictionLog(lake) as log:
        log.append(batch(0, 200))
    with PredictionLog(lake) as log:
        log.append(batch(0, 50))  # copies: the view keeps each transaction once
    labels.record(lake, {1: 1, 2: 0}, label_time=dt.datetime(2018, 4, 3, 8), source="chargeback")
    out = runner.invoke(app, ["athena-ddl", "--data", str(tmp_path), "--start", "2018-04-01"])
    assert out.exit_code == 0, out.output
    statements = [s.rstrip(";\n") for s in out.stdout.split(";\n\n")]
    tables = declared_tables([s for s in statements if "CREATE OR REPLACE VIEW" not in s])
    assert sorted(tables) == ["features", "labels", "predictions_log", "transactions"]
    for name, folder, partition in (("predictions_log", "predictions", "tx_date"), ("labels", "labels", "label_date")):
        location, columns, partitions = tables[name]
        assert Path(location) == tmp_path / folder and partitions == [(partition, "DATE")]
        for file in (tmp_path / folder).glob("*/*.parquet"):
            written = [(f.name, f.type) for f in pq.read_schema(file)]
            assert [c for c, _ in columns] == [c for c, _ in written]
    assert "`FEATURES` struct<TX_AMOUNT:double,TERMINAL_ID_RISK_7DAY_WINDOW:double>" in out.stdout  # Hive's DDL
    assert "`ANALYST` string" in out.stdout
    assert "'projection.label_date.type' = 'date'" in out.stdout
    view = next(s for s in statements if "CREATE OR REPLACE VIEW predictions AS" in s)
    select = sqlglot.transpile(view.split(" AS\n", 1)[1], read="athena", write="duckdb")[0]
    con = connect(lake)
    predictions.register(con, lake)
    assert con.execute(f"SELECT count(*), count(DISTINCT TRANSACTION_ID) FROM ({select})").fetchone() == (200, 200)
    # the training-set query of the script reads the labels too
    query = sqlglot.transpile(statements[-1], read="athena", write="duckdb")[0]
    assert connect(lake).sql(query).to_arrow_table().equals(training_set(lake, dt.date(2018, 4, 1)))
    assert "known_labels" in statements[-1]
