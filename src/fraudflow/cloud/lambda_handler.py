"""AWS Lambda entry point: generate a range of days of a world into an S3 lake.

    event = {"out": "s3://bucket/prefix", "from_day": 183, "days": 1,
             "customers": 5000, "terminals": 10000, "start_date": "2018-04-01", "radius": 5,
             "changes": [{"kind": "spending", "from_day": 120, "share": 0.3, "amount": 2.0}]}

``out``, ``from_day`` and ``days`` are required; the world parameters default to the handbook's.
``changes`` is the world's changes as ``generate --changes`` reads them (docs/WORLD_CHANGES.md):
every invocation of one world passes the same list, as every ``generate`` of it passes the same
``--change`` options.
Unknown or invalid fields are refused with a ConfigError naming them (Lambda reports it as the
invocation's error). Invoking the same event again rewrites the same objects: idempotent.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fraudflow.errors import ConfigError

REQUIRED: dict[str, type | tuple[type, ...]] = {"out": str, "from_day": int, "days": int}
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "customers": int,
    "terminals": int,
    "start_date": str,
    "radius": (int, float),
    "changes": list,
}


def parse_event(event: Any) -> tuple[str, int, int, dict[str, Any]]:
    if not isinstance(event, dict):
        raise ConfigError(f"the event must be a JSON object, got {type(event).__name__}")
    unknown = sorted(set(event) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ConfigError(
            f"unknown event field(s) {unknown}; expected {sorted(REQUIRED)} and optional {sorted(OPTIONAL)}"
        )
    missing = sorted(set(REQUIRED) - set(event))
    if missing:
        raise ConfigError(f"missing event field(s) {missing}")
    for name, kind in {**REQUIRED, **OPTIONAL}.items():
        if name in event and (not isinstance(event[name], kind) or isinstance(event[name], bool)):
            raise ConfigError(
                f"event field {name!r} must be {getattr(kind, '__name__', 'a number')}, got {event[name]!r}"
            )
    if not event["out"].startswith("s3://"):
        raise ConfigError(f"'out' must be an s3:// URL, got {event['out']!r}")
    if event["from_day"] < 0 or event["days"] < 1:
        raise ConfigError("'from_day' must be >= 0 and 'days' >= 1")
    world = {k: event[k] for k in OPTIONAL if k in event}
    return event["out"], event["from_day"], event["days"], world


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Generate ``days`` days from ``from_day`` of the world into ``out``; return a summary."""
    from fraudflow.simulate import WorldParams, generate
    from fraudflow.simulate.changes import changes_from_json
    from fraudflow.simulate.world import parse_date

    out, from_day, days, world = parse_event(event)
    start_date, radius = world.get("start_date"), world.get("radius")
    params = WorldParams.from_options(
        n_customers=world.get("customers"),
        n_terminals=world.get("terminals"),
        nb_days=from_day + days,
        start_date=None if start_date is None else parse_date(start_date, "start_date"),
        radius=None if radius is None else float(radius),
        changes=changes_from_json(world["changes"], "event field 'changes'") if world.get("changes") else None,
    )
    t0 = time.perf_counter()
    summary = generate(out, params, from_day=from_day, workers=1)
    first = params.start_date + dt.timedelta(days=from_day)
    result = {
        **summary.to_json(),
        "seconds": round(time.perf_counter() - t0, 3),
        "out": out,
        "first_day": first.isoformat(),
        "last_day": (first + dt.timedelta(days=days - 1)).isoformat(),
    }
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        result["remaining_ms"] = remaining()
    return result
