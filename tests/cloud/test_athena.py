"""Athena DDL and query: parsed by sqlglot's Athena dialect, the query checked on the same lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlglot
from typer.testing import CliRunner

from fraudflow import WorldParams, generate
from fraudflow.cli import app
from fraudflow.features import DEFAULT, build_features
from fraudflow.lake import Lake
from fraudflow.training.datasets import connect, training_set

runner = CliRunner()


def test_ddl_and_query_parse_and_the_query_returns_our_rows(tmp_path: Path) -> None:
    generate(tmp_path, WorldParams(n_customers=300, n_terminals=400, nb_days=40, radius=10.0))
    build_features(tmp_path)
    out = runner.invoke(app, ["athena-ddl", "--data", str(tmp_path), "--start", "2018-04-10", "--kind", "test"])
    assert out.exit_code == 0, out.output
    statements = [s for s in out.stdout.split(";\n\n")]
    assert len(statements) == 3
    for ddl in statements[:2]:
        tree = sqlglot.parse_one(ddl.rstrip(";"), read="athena")
        assert isinstance(tree, sqlglot.exp.Create)
        assert "'projection.tx_date.type' = 'date'" in ddl and "PARTITIONED BY (`tx_date` date)" in ddl
        assert "STORED AS PARQUET" in ddl
    create_features = statements[1]
    for name in DEFAULT.names:
        assert f"`{name}`" in create_features
    query = statements[2].rstrip(";\n")
    back = sqlglot.transpile(query, read="athena", write="duckdb")[0]
    got = connect(Lake(tmp_path)).sql(back).to_arrow_table()
    expected = training_set(str(tmp_path), dt.date(2018, 4, 10), kind="test")
    assert got.num_rows > 0 and got.equals(expected)
