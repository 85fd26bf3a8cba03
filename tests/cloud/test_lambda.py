"""The Lambda handler, invoked with Lambda-shaped events and context against moto's S3 server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fraudflow.cli import app
from fraudflow.cloud.lambda_handler import handler
from fraudflow.errors import ConfigError
from fraudflow.lake import Lake

WORLD = {"customers": 200, "terminals": 300, "radius": 10, "start_date": "2018-04-01"}


class Context:
    """What Lambda passes: the fields a handler may read."""

    function_name = "fraudflow-generator"
    memory_limit_in_mb = 2048
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def objects(lake: Lake) -> dict[str, bytes]:
    return {p: lake.fs.cat(p) for p in sorted(lake.fs.find(lake.root)) if p.endswith(".parquet")}


def local_generate(out: Path, from_day: int, days: int, *extra: str) -> None:
    """``fraudflow generate`` of the same world on this machine (``extra``: more options)."""
    args = ["--customers", str(WORLD["customers"]), "--terminals", str(WORLD["terminals"]), *extra]
    args += ["--radius", str(WORLD["radius"]), "--start-date", str(WORLD["start_date"])]
    result = CliRunner().invoke(
        app, ["generate", "--out", str(out), *args, "--from-day", str(from_day), "--days", str(days)]
    )
    assert result.exit_code == 0, result.output


def day_tables(lake: Lake) -> dict[dt.date, pa.Table]:
    return {day: lake.read_partitions("transactions", [day]) for day in lake.partitions("transactions")}


def world_files(lake: Lake) -> dict[str, object]:
    files: dict[str, object] = {"world.json": lake.read_json(lake.path("world", "world.json"))}
    for name in ("customers.parquet", "terminals.parquet"):
        with lake.fs.open(lake.path("world", name), "rb") as f:
            files[name] = pq.read_table(f)
    return files


def assert_same_days(got: dict[dt.date, pa.Table], expected: dict[dt.date, pa.Table]) -> None:
    """The same days, each with the same rows in the same order, column by column (schema too)."""
    assert sorted(got) == sorted(expected)
    for day, table in expected.items():
        assert got[day].schema == table.schema, day
        for name in table.column_names:
            assert got[day][name].equals(table[name]), f"{day} {name}: not the rows of a local generate"


def test_the_handler_writes_what_a_local_generate_writes(s3_root: str, tmp_path: Path) -> None:
    result = handler({"out": s3_root, "from_day": 5, "days": 3, **WORLD}, Context())
    local_generate(tmp_path, 5, 3)
    s3, local = Lake(s3_root), Lake(tmp_path)
    expected = day_tables(local)
    assert [d.isoformat() for d in expected] == ["2018-04-06", "2018-04-07", "2018-04-08"]
    assert_same_days(day_tables(s3), expected)
    assert result["rows"] == sum(t.num_rows for t in expected.values())
    got_world, expected_world = world_files(s3), world_files(local)
    assert got_world["world.json"] == expected_world["world.json"]
    for name in ("customers.parquet", "terminals.parquet"):
        assert got_world[name].equals(expected_world[name]), name  # type: ignore[attr-defined]


def test_an_event_with_changes_writes_what_generate_with_those_changes_writes(s3_root: str, tmp_path: Path) -> None:
    changes = [{"kind": "spending", "from_day": 6, "amount": 2.0}, {"kind": "terminals", "from_day": 5, "count": 5}]
    handler({"out": s3_root, "from_day": 5, "days": 3, **WORLD, "changes": changes}, Context())
    local_generate(tmp_path / "changed", 5, 3, "--change", "spending:6:amount=2", "--change", "terminals:5:count=5")
    local_generate(tmp_path / "base", 5, 3)
    got, changed, base = (
        day_tables(Lake(s3_root)),
        day_tables(Lake(tmp_path / "changed")),
        day_tables(Lake(tmp_path / "base")),
    )
    assert_same_days(got, changed)
    assert world_files(Lake(s3_root))["world.json"] == world_files(Lake(tmp_path / "changed"))["world.json"]
    first, shifted = dt.date(2018, 4, 6), dt.date(2018, 4, 7)
    labels = ["TX_AMOUNT", "TX_FRAUD", "TX_FRAUD_SCENARIO"]  # more compromised terminals from day 5: other frauds
    assert got[first].drop_columns(labels).equals(base[first].drop_columns(labels))  # spending as the base world's
    assert not got[first].equals(base[first])
    assert got[shifted].num_rows == base[shifted].num_rows  # spending shifted from day 6: other amounts
    assert not got[shifted].column("TX_AMOUNT").equals(base[shifted].column("TX_AMOUNT"))


def test_two_consecutive_invocations_compose_to_one_longer_run(s3_root: str, tmp_path: Path) -> None:
    """Days 5..7, then 8..11, as one run of days 5..11 gives them.

    The second invocation writes exactly the longer run's days, ids included, and leaves the first's
    days as they were. Those are, as in any run, provisional in their fraud labels (README: a run's
    last 13 days): the rows are the longer run's, only frauds and the scenario-3 amounts may differ.
    """
    handler({"out": s3_root, "from_day": 5, "days": 3, **WORLD}, Context())
    s3 = Lake(s3_root)
    first = day_tables(s3)
    handler({"out": s3_root, "from_day": 8, "days": 4, **WORLD}, Context())
    local_generate(tmp_path, 5, 7)
    one_run, composed = day_tables(Lake(tmp_path)), day_tables(s3)
    assert len(one_run) == 7
    new_days = {d: t for d, t in one_run.items() if d >= dt.date(2018, 4, 9)}
    assert_same_days({d: t for d, t in composed.items() if d in new_days}, new_days)
    assert_same_days({d: t for d, t in composed.items() if d not in new_days}, first)
    labels = ("TX_AMOUNT", "TX_FRAUD", "TX_FRAUD_SCENARIO")
    for day in first:
        assert composed[day].drop_columns(list(labels)).equals(one_run[day].drop_columns(list(labels))), day
    assert world_files(s3)["world.json"] == world_files(Lake(tmp_path))["world.json"]


def test_a_range_of_days_lands_in_s3_and_again_is_idempotent(s3_root: str) -> None:
    event = {"out": s3_root, "from_day": 5, "days": 3, **WORLD}
    result = handler(event, Context())
    assert result["days"] == 3 and result["rows"] > 0 and result["objects_written"] == 3 + 3
    assert (result["first_day"], result["last_day"]) == ("2018-04-06", "2018-04-08")
    assert result["remaining_ms"] == 900_000
    lake = Lake(s3_root)
    first = lake.read_partitions("transactions", lake.partitions("transactions"))
    assert first.num_rows == result["rows"]
    handler(event, Context())
    again = lake.read_partitions("transactions", lake.partitions("transactions"))
    assert again.equals(first)  # the same rows, not twice as many
    assert len([p for p in objects(lake) if "/transactions/" in p]) == 3


@pytest.mark.parametrize(
    "event,message",
    [
        ({"out": "s3://b/p", "from_day": 0}, r"missing event field\(s\) \['days'\]"),
        ({"out": "s3://b/p", "from_day": 0, "days": 1, "seed": 3}, r"unknown event field\(s\) \['seed'\]"),
        ({"out": "s3://b/p", "from_day": "0", "days": 1}, "'from_day' must be int"),
        ({"out": "/tmp/x", "from_day": 0, "days": 1}, "must be an s3:// URL"),
        ({"out": "s3://b/p", "from_day": -1, "days": 1}, "'from_day' must be >= 0"),
        ({"out": "s3://b/p", "from_day": 0, "days": 1, "customers": 0}, "n_customers must be positive"),
        ({"out": "s3://b/p", "from_day": 0, "days": True}, "'days' must be int"),
        (["not", "an", "object"], "must be a JSON object"),
        ({"out": "s3://b/p", "from_day": 0, "days": 1, "changes": {"kind": "spending"}}, "'changes' must be list"),
        (
            {"out": "s3://b/p", "from_day": 0, "days": 1, "changes": [{"kind": "spending", "from_day": 3, "share": 2}]},
            r"event field 'changes'\[0\].*share",
        ),
    ],
)
def test_bad_events_are_refused(event: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        handler(event, Context())
