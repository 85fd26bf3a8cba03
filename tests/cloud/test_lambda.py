"""The Lambda handler, invoked with Lambda-shaped events and context against moto's S3 server."""

from __future__ import annotations

import pytest

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
    ],
)
def test_bad_events_are_refused(event: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        handler(event, Context())
