"""Athena DDL and query: parsed by sqlglot's Athena dialect, the query checked on the same lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from typer.testing import CliRunner

from fraudflow import WorldParams, generate
from fraudflow.cli import app
from fraudflow.features import FEATURE_SETS, HANDBOOK, build_features
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
    for name in HANDBOOK.names:
        assert f"`{name}`" in create_features
    query = statements[2].rstrip(";\n")
    back = sqlglot.transpile(query, read="athena", write="duckdb")[0]
    got = connect(Lake(tmp_path)).sql(back).to_arrow_table()
    expected = training_set(str(tmp_path), dt.date(2018, 4, 10), kind="test")
    assert got.num_rows > 0 and got.equals(expected)


#: The Athena (Hive) type of each Arrow type the lake writes; Athena reads Parquet by column name.
ATHENA_TYPE_OF_ARROW = {
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.timestamp("ns"): "TIMESTAMP",
    pa.timestamp("us"): "TIMESTAMP",
    pa.timestamp("ms"): "TIMESTAMP",
    pa.int32(): "INT",
    pa.bool_(): "BOOLEAN",
    pa.string(): "STRING",
    pa.date32(): "DATE",
}


def declared_tables(statements: list[str]) -> dict[str, tuple[str, list[tuple[str, str]], list[tuple[str, str]]]]:
    """Each CREATE TABLE of the DDL: its location, columns and partition columns as (name, type)."""
    tables = {}
    for sql in statements:
        tree = sqlglot.parse_one(sql, read="athena")
        if not isinstance(tree, sqlglot.exp.Create):
            continue
        location = tree.find(sqlglot.exp.LocationProperty)
        partitioned = tree.find(sqlglot.exp.PartitionedByProperty)
        assert location is not None and partitioned is not None, sql

        def cols(schema: sqlglot.exp.Expression) -> list[tuple[str, str]]:
            return [(c.name, c.args["kind"].sql("athena").upper()) for c in schema.expressions]

        tables[tree.this.this.name] = (location.this.name, cols(tree.this), cols(partitioned.this))
    return tables


@pytest.mark.parametrize("feature_set", ["handbook", "fraudflow"])
def test_ddl_column_types_equal_the_written_parquet_schema(tmp_path: Path, feature_set: str) -> None:
    generate(tmp_path, WorldParams(n_customers=100, n_terminals=200, nb_days=10, radius=20.0))
    build_features(tmp_path, FEATURE_SETS[feature_set])
    out = runner.invoke(app, ["athena-ddl", "--data", str(tmp_path)])
    assert out.exit_code == 0, out.output
    tables = declared_tables([s.rstrip(";\n") for s in out.stdout.split(";\n\n")])
    assert sorted(tables) == ["features", "transactions"]
    for name, (location, columns, partitions) in tables.items():
        assert Path(location) == tmp_path / name
        assert partitions == [("tx_date", "DATE")]
        folders = sorted(Path(location).glob("tx_date=*"))
        assert len(folders) == 10
        for folder in folders:
            dt.date.fromisoformat(folder.name.removeprefix("tx_date="))  # the partition value is a DATE
            files = list(folder.glob("*.parquet"))
            assert files, folder
            for file in files:
                written = [(f.name, ATHENA_TYPE_OF_ARROW.get(f.type, str(f.type))) for f in pq.read_schema(file)]
                assert written == columns, f"{name} {file}: the DDL declares {columns}, the file holds {written}"
