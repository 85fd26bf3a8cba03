"""Changes of the world from a given day (docs/WORLD_CHANGES.md), declared as plain frozen data.

A change is one of three kinds, each a small frozen dataclass with ``from_day`` (the first day it
acts on) and its parameters:

- ``SpendingShift`` (``spending``): a share of the customers multiply their mean amount (and its
  standard deviation) and their mean number of transactions per day by factors;
- ``CompromisedTerminals`` (``terminals``): each start day compromises ``count`` terminals instead
  of 2 (scenario 2);
- ``UnderThresholdFrauds`` (``under_threshold``): a new scenario 4, compromised cards whose stolen
  transactions get amounts just under the amount rule's threshold.

Changes are written in world.json with the world's parameters (``to_json``/``from_json``) and are
parsed from the command line's ``KIND:FROM_DAY[:NAME=VALUE,...]`` (``parse_change``). A change
never alters the rows of a day before its ``from_day``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from fraudflow.errors import ConfigError

#: seeds of the changes' own ``RandomState``s, above the 0..2**31-1 of days and customer ids
SPENDING_SEED = 2**31
UNDER_THRESHOLD_SEED = 2**31 + 2**30
MAX_FROM_DAY = 2**30


@dataclass(frozen=True)
class SpendingShift:
    """From ``from_day``, ``share`` of the customers spend ``amount`` times as much, ``tx`` times as often."""

    kind: ClassVar[str] = "spending"
    from_day: int
    share: float = 1.0  # of the customers: the first round(share * n) of the change's permutation
    amount: float = 1.0  # factor on mean_amount (and std_amount)
    tx: float = 1.0  # factor on mean_nb_tx_per_day

    def check(self, where: str | None = None) -> None:
        _require(self, 0 < self.share <= 1, "share", "a number in (0, 1]", where)
        _require(self, self.amount > 0 and math.isfinite(self.amount), "amount", "a positive factor", where)
        _require(self, self.tx >= 0 and math.isfinite(self.tx), "tx", "a factor >= 0", where)


@dataclass(frozen=True)
class CompromisedTerminals:
    """From start day ``from_day``, each start day compromises ``count`` terminals (scenario 2)."""

    kind: ClassVar[str] = "terminals"
    from_day: int
    count: int = 2

    def check(self, where: str | None = None) -> None:
        _require(self, self.count >= 0, "count", "an integer >= 0", where)


@dataclass(frozen=True)
class UnderThresholdFrauds:
    """From start day ``from_day``, scenario 4: stolen cards used for amounts in ``[low, high)``."""

    kind: ClassVar[str] = "under_threshold"
    from_day: int
    customers: int = 3  # compromised cards per start day
    days: int = 14  # how long a card stays compromised
    share: float = 0.5  # of a card's transactions in that window
    low: float = 180.0
    high: float = 220.0

    def check(self, where: str | None = None) -> None:
        _require(self, self.customers >= 0, "customers", "an integer >= 0", where)
        _require(self, self.days >= 1, "days", "an integer >= 1", where)
        _require(self, 0 < self.share <= 1, "share", "a number in (0, 1]", where)
        ok = 0 <= self.low < self.high and math.isfinite(self.high)
        _require(self, ok, "low", "0 <= low < high (finite)", where)


WorldChange = SpendingShift | CompromisedTerminals | UnderThresholdFrauds
KINDS: dict[str, type[WorldChange]] = {c.kind: c for c in (SpendingShift, CompromisedTerminals, UnderThresholdFrauds)}


def _require(change: WorldChange, ok: bool, name: str, expected: str, where: str | None) -> None:
    if not ok:
        where = where or f"{change.kind} change from day {change.from_day}"
        raise ConfigError(f"{where}: {name} must be {expected}, got {getattr(change, name)!r}")


def _parameters(kind: type[WorldChange]) -> dict[str, type]:
    """The parameters of ``kind`` after ``from_day``, with their type (int or float)."""
    return {f.name: type(f.default) for f in dataclasses.fields(kind) if f.name != "from_day"}


def make_change(kind: str, from_day: Any, values: dict[str, Any], where: str) -> WorldChange:
    """A checked change of ``kind``; ``where`` names its source in errors (a spec, a JSON entry)."""
    if kind not in KINDS:
        raise ConfigError(f"{where}: unknown change kind {kind!r}; expected one of {', '.join(KINDS)}")
    cls = KINDS[kind]
    if isinstance(from_day, bool) or not isinstance(from_day, int) or not 0 <= from_day < MAX_FROM_DAY:
        raise ConfigError(f"{where}: from_day must be an integer day index >= 0, got {from_day!r}")
    known = _parameters(cls)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {unknown} for {kind}; expected {', '.join(known) or 'none'}")
    typed: dict[str, Any] = {}
    for name, value in values.items():
        typed[name] = _number(value, known[name], f"{where}: {name}")
    change = cls(from_day=from_day, **typed)
    change.check(where)
    return change


def _number(value: Any, kind: type, where: str) -> int | float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a number: refused below
            value = int(value) if kind is int else float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    expected = "an integer" if kind is int else "a finite number"
    raise ConfigError(f"{where} must be {expected}, got {value!r}")


def parse_change(spec: str) -> WorldChange:
    """``KIND:FROM_DAY[:NAME=VALUE,...]``, e.g. ``spending:120:share=0.3,amount=2``."""
    where = f"change {spec!r}"
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ConfigError(f"{where}: expected KIND:FROM_DAY[:NAME=VALUE,...], e.g. spending:120:share=0.3,amount=2")
    try:
        from_day: Any = int(parts[1])
    except ValueError:
        from_day = parts[1]
    values: dict[str, Any] = {}
    for item in parts[2].split(",") if len(parts) == 3 and parts[2] else []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise ConfigError(f"{where}: parameter {item!r} must be NAME=VALUE")
        if name.strip() in values:
            raise ConfigError(f"{where}: parameter {name.strip()!r} given twice")
        values[name.strip()] = value.strip()
    return make_change(parts[0], from_day, values, where)


def change_to_json(change: WorldChange) -> dict[str, Any]:
    return {"kind": change.kind, **dataclasses.asdict(change)}


def change_from_json(d: Any, where: str) -> WorldChange:
    if not isinstance(d, dict) or "kind" not in d or "from_day" not in d:
        raise ConfigError(f"{where}: expected an object with 'kind' and 'from_day', got {d!r}")
    values = {k: v for k, v in d.items() if k not in ("kind", "from_day")}
    return make_change(d["kind"], d["from_day"], values, where)


def changes_from_json(items: Any, where: str = "changes") -> tuple[WorldChange, ...]:
    """Changes from a JSON list (world.json's ``changes``, a ``--changes`` file)."""
    if not isinstance(items, list):
        raise ConfigError(f"{where}: expected a JSON list of changes, got {type(items).__name__}")
    return tuple(change_from_json(d, f"{where}[{i}]") for i, d in enumerate(items))


def in_order(changes: Sequence[WorldChange]) -> tuple[WorldChange, ...]:
    """Changes by ``from_day``, declaration order kept among a day's: the order they apply in."""
    return tuple(sorted(changes, key=lambda c: c.from_day))


def latest(changes: Sequence[WorldChange], kind: type[WorldChange], day: int) -> WorldChange | None:
    """The last change of ``kind`` (in ``in_order``) with ``from_day <= day``: the one in force that day."""
    found = None
    for c in in_order(changes):
        if isinstance(c, kind) and c.from_day <= day:
            found = c
    return found


def changes_from_options(specs: Sequence[str], path: str | None) -> tuple[WorldChange, ...]:
    """The command line's changes: each ``--change`` spec, then those of the ``--changes`` JSON file."""
    changes = [parse_change(s) for s in specs]
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                items = json.load(f)
        except OSError as exc:
            raise ConfigError(f"--changes {path}: cannot read it ({exc.strerror or exc})") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--changes {path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from exc
        changes += changes_from_json(items, path)
    return tuple(changes)
