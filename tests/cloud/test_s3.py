"""The same lake on S3 (moto's server): every stage works and gives the local run's results."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

from fraudflow import WorldParams, generate
from fraudflow.errors import LakeError
from fraudflow.features import FRAUDFLOW, build_features
from fraudflow.lake import MANIFEST, Lake
from fraudflow.training import workflow

WORLD = WorldParams(n_customers=300, n_terminals=500, nb_days=40, radius=10.0, start_date=dt.date(2018, 4, 1))
START = dt.date(2018, 4, 10)


def run_everything(root: str) -> tuple[Lake, dict]:
    generate(root, WORLD)
    build_features(root, FRAUDFLOW)
    lake = Lake(root)
    return lake, workflow.train(lake, START, {"n_estimators": 20, "max_depth": 3}).metrics_json()


def tables(lake: Lake, table: str) -> dict[dt.date, pa.Table]:
    out = {}
    for day in lake.partitions(table):
        t = lake.read_partitions(table, [day])
        out[day] = t.drop_columns(["WRITE_TIME"]) if "WRITE_TIME" in t.column_names else t
    return out


@pytest.mark.slow
def test_generate_features_train_evaluate_on_s3_equal_local(s3_root: str, tmp_path: Path) -> None:
    s3, s3_metrics = run_everything(s3_root)
    local, local_metrics = run_everything(str(tmp_path))
    for table in ("transactions", "features"):
        remote_days, local_days = tables(s3, table), tables(local, table)
        assert list(remote_days) == list(local_days) and len(local_days) == 40
        for day, t in local_days.items():
            assert remote_days[day].equals(t), (table, day)
    for name in ("customers.parquet", "terminals.parquet"):
        with s3.fs.open(s3.path("world", name), "rb") as f:
            assert f.read() == (tmp_path / "world" / name).read_bytes()
    drop = ("folds",)
    assert {k: v for k, v in s3_metrics.items() if k not in drop} == {
        k: v for k, v in local_metrics.items() if k not in drop
    }
    model_dir = s3.path("models", workflow.model.latest_model(s3))
    assert {p.rsplit("/", 1)[-1] for p in s3.fs.ls(model_dir)} >= {"model.ubj", "metadata.json", "metrics.json"}


def test_an_interrupted_write_leaves_the_previous_version(s3_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(s3_root)
    day = dt.date(2018, 4, 1)
    old = pa.table({"x": [1, 2, 3]})
    lake.write_partition("t", day, old)
    assert lake.read_partitions("t", [day]).equals(old)

    def crash(path: str, obj: object) -> None:
        raise OSError("connection reset before the manifest")

    monkeypatch.setattr(lake, "write_json", crash)
    with pytest.raises(OSError):
        lake.write_partition("t", day, pa.table({"x": [9, 9]}))
    monkeypatch.undo()
    assert lake.read_partitions("t", [day]).equals(old)  # the manifest still names the old data
    files = lake.fs.ls(lake.partition_dir("t", day), detail=False)
    assert len([f for f in files if f.endswith(".parquet")]) == 2  # the orphan is there, unlisted
    lake.write_partition("t", day, pa.table({"x": [4]}))  # the next write commits and cleans up
    files = lake.fs.ls(lake.partition_dir("t", day), detail=False)
    assert sorted(f.rsplit("/", 1)[-1].split("-")[0] for f in files) == ["_manifest.json", "part"]
    assert json.loads(lake.fs.cat(f"{lake.partition_dir('t', day)}/{MANIFEST}"))["rows"] == 1


def test_a_partition_without_its_manifest_is_not_visible(s3_root: str) -> None:
    lake = Lake(s3_root)
    day = dt.date(2018, 4, 2)
    with lake.fs.open(f"{lake.partition_dir('t', day)}/part-orphan.parquet", "wb") as f:
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"x": [1]}), f)
    assert lake.partitions("t") == []
    with pytest.raises(LakeError, match="no partitions"):
        lake.read_partitions("t", lake.partitions("t"))


def test_the_endpoint_is_the_one_given_else_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://generic:9000")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)

    def endpoint(lake: Lake) -> str:
        return str(lake.storage_options["client_kwargs"]["endpoint_url"])

    assert endpoint(Lake("s3://bucket/lake")) == "http://generic:9000"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:9000")
    assert endpoint(Lake("s3a://bucket/lake")) == "http://s3-only:9000"
    assert endpoint(Lake("s3://bucket/lake", endpoint_url="http://given:9000")) == "http://given:9000"
    options = {"client_kwargs": {"endpoint_url": "http://own:9000"}}
    assert endpoint(Lake("s3://bucket/lake", options, endpoint_url="http://given:9000")) == "http://own:9000"
    assert options == {"client_kwargs": {"endpoint_url": "http://own:9000"}}
    assert Lake("/tmp/lake", endpoint_url="http://given:9000").storage_options == {}


def test_the_cli_takes_an_endpoint_flag(s3_root: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from fraudflow.cli import app

    monkeypatch.delenv("AWS_ENDPOINT_URL")
    args = [
        "--endpoint-url",
        s3_endpoint,
        "generate",
        "--out",
        s3_root,
        "--customers",
        "50",
        "--terminals",
        "80",
        "--days",
        "3",
        "--radius",
        "15",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "AWS_ENDPOINT_URL" not in os.environ  # passed to the lake, not through the environment
    written = Lake(s3_root, endpoint_url=s3_endpoint).partitions("transactions")
    assert written == [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(3)]
