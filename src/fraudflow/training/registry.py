"""The model registry: aliases over the lake's finished models, and a log of every decision.

    <root>/models/_registry/decisions/<seq>-<time>-<random>.json   one object per decision

A decision (a promotion, a rollback, a gate's verdict) is one JSON object written once, never
rewritten: its time, action, the alias it moved and from/to which model, the metrics compared
and the margins, the reason, and the registry's state after it (the aliases, and the earlier
production models a rollback goes back to). The newest decision's state is the registry's, so a
decision and the aliases it sets are committed together by one atomic write (a rename on a local
disk, one PUT on an object store): an interrupted write leaves the previous state in force. One
writer at a time is assumed (``fraudflow operate`` or a person); two at once both land in the log,
the one whose name sorts last winning.

Aliases: ``production`` (what the service serves: ``model_to_serve``) and ``candidate`` (the
challenger a gate kept out, or a model put there by hand). Only finished models (``model.finished``:
training and evaluation done) are listed, aliased or promoted. The gate (``gate``) scores champion
and challenger on the newest week whose labels are mature and promotes the challenger only if it
does at least as well as the champion plus the margins on both average precision and CP@100.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from fraudflow.errors import ConfigError, LakeError
from fraudflow.features import registry as feature_registry
from fraudflow.lake import Lake
from fraudflow.training import budget, model
from fraudflow.training.calendar import lake_days
from fraudflow.training.evaluation import ScoredFold, load_split
from fraudflow.training.metrics import metric_names
from fraudflow.training.protocol import K, newest_mature_start, split_days

#: the registry's folder under ``models/`` (not a model: it has no metrics, so it is never listed)
FOLDER = "_registry"
DECISIONS = "decisions"

Alias = Literal["production", "candidate"]
ALIASES: tuple[Alias, ...] = get_args(Alias)
Action = Literal["promote", "rollback", "gate"]

AUC, AP, CP, _ = metric_names(K)


class RegistryError(LakeError):
    """A registry request that cannot be done: an unknown or unfinished model, nothing to roll back to."""


@dataclass(frozen=True)
class Margins:
    """How much better than the champion a challenger must do to be promoted (negative: may do worse)."""

    average_precision: float = 0.0
    card_precision: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {AP: self.average_precision, CP: self.card_precision}


@dataclass(frozen=True)
class Decision:
    """One entry of the decision log, and the registry's state after it."""

    seq: int
    time: str  # UTC, ISO 8601
    action: Action
    alias: Alias
    from_model: str | None  # the model ``alias`` named before (a gate's champion)
    to_model: str  # the model put in place, or a gate's challenger
    changed: bool  # whether ``alias`` moved to ``to_model`` (a challenger kept out becomes the candidate)
    reason: str
    aliases: dict[str, str]  # after the decision
    previous: list[str]  # earlier production models, oldest first: where rollbacks go
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # by role: champion and challenger, from and to
    margins: dict[str, float] | None = None
    week: list[str] | None = None  # the gate's first and last day

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        return cls(**data)


# reading ---------------------------------------------------------------------------------------
def decisions(lake: Lake) -> list[Decision]:
    """The decision log, oldest first."""
    return [_read_decision(lake, path) for path in _decision_files(lake)]


def last_decision(lake: Lake) -> Decision | None:
    """The newest decision (its state is the registry's); None before any."""
    files = _decision_files(lake)
    return _read_decision(lake, files[-1]) if files else None


def aliases(lake: Lake) -> dict[str, str]:
    """Alias -> model id, as the newest decision left them (empty before any)."""
    last = last_decision(lake)
    return dict(last.aliases) if last else {}


def production(lake: Lake) -> str | None:
    """The model the ``production`` alias names; None when none was promoted yet."""
    return aliases(lake).get("production")


def model_to_serve(lake: Lake) -> str:
    """What the service serves: the ``production`` model, else (no promotion yet) the newest finished
    one; ``LakeError`` when there is none, or when the production model is gone from the lake."""
    chosen = production(lake)
    if chosen is None:
        return model.latest_model(lake)
    _check_finished(lake, chosen)
    return chosen


def alert_threshold(lake: Lake, model_id: str) -> float | None:
    """The threshold stored with the model for its alert budget (``training.budget``); None for a model
    saved before budgets were."""
    stored = budget.stored(lake.read_json(lake.path("models", model_id, model.METADATA_FILE)))
    return None if stored is None else stored.threshold


@dataclass(frozen=True)
class Entry:
    """A finished model as ``fraudflow models list`` shows it."""

    model_id: str
    created: str | None  # UTC, from the id (ids begin with their creation time)
    metrics: dict[str, float]
    aliases: list[str]
    threshold: float | None
    cards_per_day: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def entries(lake: Lake) -> list[Entry]:
    """The finished models, oldest first, with their headline metrics, aliases and alert threshold."""
    named = aliases(lake)
    result = []
    for model_id in model.list_models(lake):
        meta = lake.read_json(lake.path("models", model_id, model.METADATA_FILE))
        stored = budget.stored(meta)
        result.append(
            Entry(
                model_id,
                _created(model_id),
                _headline(lake, model_id),
                [a for a in ALIASES if named.get(a) == model_id],
                None if stored is None else stored.threshold,
                None if stored is None else stored.cards_per_day,
            )
        )
    return result


# decisions -------------------------------------------------------------------------------------
def promote(lake: Lake, model_id: str, alias: Alias = "production", reason: str = "by hand") -> Decision:
    """Point ``alias`` at a finished model, recorded with both models' stored test metrics."""
    parse_alias(alias)
    _check_finished(lake, model_id)
    state = _state(lake)
    before = state.aliases.get(alias)
    if before == model_id:
        raise RegistryError(f"model {model_id} is already {alias}")
    roles = {"from": before, "to": model_id}
    measured = {role: _headline(lake, m) for role, m in roles.items() if m is not None}
    after = _moved(state, alias, model_id)
    return _record(lake, state, after, "promote", alias, before, model_id, True, reason, metrics=measured)


def rollback(lake: Lake, reason: str = "by hand") -> Decision:
    """Put the previous production model back in production (the log's record of earlier ones)."""
    state = _state(lake)
    current = state.aliases.get("production")
    if not state.previous:
        what = "no production model" if current is None else f"production ({current}) is the first one"
        raise RegistryError(f"nothing to roll back to: {what}")
    back = state.previous[-1]
    _check_finished(lake, back)
    after = _State(state.seq, {**state.aliases, "production": back}, state.previous[:-1])
    return _record(lake, state, after, "rollback", "production", current, back, True, reason)


def gate(lake: Lake, challenger: str, margins: Margins | None = None) -> Decision:
    """Judge ``challenger`` against the production model on the newest week whose labels are mature;
    promote it if it does at least as well as the champion plus ``margins`` on AP and on CP@100,
    else make it the candidate. With no production model yet, it becomes production. Recorded either way."""
    margins = margins or Margins()
    _check_finished(lake, challenger)
    state = _state(lake)
    champion = state.aliases.get("production")
    if champion == challenger:
        raise RegistryError(f"model {challenger} is already production: nothing to judge it against")
    if champion is None:
        after = _moved(state, "production", challenger)
        return _record(lake, state, after, "gate", "production", None, challenger, True, "no production model yet")
    _check_finished(lake, champion)
    week, scored = _judge(lake, {"champion": champion, "challenger": challenger})
    gains = {m: scored["challenger"][m] - scored["champion"][m] for m in (AP, CP)}
    needed = margins.to_json()
    short = [m for m in (AP, CP) if not gains[m] >= needed[m]]  # NaN (no fraud that week) fails too
    if short:
        reason = "short of the margins on " + _describe(gains, needed, short)
        after = _moved(state, "candidate", challenger)
    else:
        reason = "beats the champion by the margins: " + _describe(gains, needed, (AP, CP))
        after = _moved(state, "production", challenger)
    return _record(
        lake,
        state,
        after,
        "gate",
        "production",
        champion,
        challenger,
        not short,
        reason,
        metrics=scored,
        margins=needed,
        week=week,
    )


# internals -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _State:
    """The registry's state: the newest decision's number, the aliases, the earlier production models."""

    seq: int
    aliases: dict[str, str]
    previous: list[str]


def _state(lake: Lake) -> _State:
    last = last_decision(lake)
    return _State(0, {}, []) if last is None else _State(last.seq, dict(last.aliases), list(last.previous))


def _moved(state: _State, alias: Alias, model_id: str) -> _State:
    """``state`` with ``alias`` on ``model_id``: a production model replaced goes on the rollback
    stack, and a candidate promoted to production is a candidate no more."""
    named = {**state.aliases, alias: model_id}
    previous = list(state.previous)
    if alias == "production":
        if "production" in state.aliases:
            previous.append(state.aliases["production"])
        if named.get("candidate") == model_id:
            del named["candidate"]
    return _State(state.seq, named, previous)


def _record(
    lake: Lake,
    state: _State,
    after: _State,
    action: Action,
    alias: Alias,
    before: str | None,
    model_id: str,
    changed: bool,
    reason: str,
    *,
    metrics: dict[str, dict[str, Any]] | None = None,
    margins: dict[str, float] | None = None,
    week: list[str] | None = None,
) -> Decision:
    """Write one decision, numbered after ``state``'s, with the state ``after`` it."""
    now = dt.datetime.now(dt.timezone.utc)
    decision = Decision(
        state.seq + 1,
        now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        action,
        alias,
        before,
        model_id,
        changed,
        reason,
        after.aliases,
        after.previous,
        metrics or {},
        margins,
        week,
    )
    name = f"{decision.seq:08d}-{now.strftime('%Y%m%dT%H%M%S%f')}-{os.urandom(3).hex()}.json"
    lake.write_json(lake.path("models", FOLDER, DECISIONS, name), json.loads(json.dumps(decision.to_json())))
    return decision


def _decision_files(lake: Lake) -> list[str]:
    folder = lake.path("models", FOLDER, DECISIONS)
    if not lake.fs.exists(folder):
        return []
    # names only: a local lake's files written aside begin with a dot and end in .tmp
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in lake.fs.ls(folder, detail=False)]
    return [f"{folder}/{n}" for n in sorted(n for n in names if n.endswith(".json") and not n.startswith("."))]


def _read_decision(lake: Lake, path: str) -> Decision:
    data = lake.read_json(path)
    try:
        return Decision.from_json(data)
    except TypeError as exc:
        raise LakeError(f"{path}: not a decision of this registry ({exc})") from exc


def _judge(lake: Lake, roles: dict[str, str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Each model's AUC, AP and CP@100 on the test week of the newest split whose labels are mature."""
    version = feature_registry.required(lake).version
    start = newest_mature_start(lake_days(lake)[1])
    test = load_split(lake, start).test
    scored = {}
    for role, model_id in roles.items():
        fitted = model.load(lake, model_id, expect_version=version)
        judged = ScoredFold(start, test, fitted.predict(test)).performance().to_json()
        scored[role] = {"model_id": model_id, **{m: judged[m] for m in (AUC, AP, CP)}}
    first, last = split_days(start, "test")
    return [first.isoformat(), last.isoformat()], scored


def _describe(gains: dict[str, float], needed: dict[str, float], names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"{n} {gains[n]:+.4f} (margin {needed[n]:+.4f})" for n in names)


def _headline(lake: Lake, model_id: str) -> dict[str, float]:
    stored = lake.read_json(lake.path("models", model_id, model.METRICS_FILE))
    return {m: stored[m] for m in (AUC, AP, CP) if m in stored}


def _created(model_id: str) -> str | None:
    """A model's creation time (UTC, to the second) from its id (``model.new_model_id``, or an
    earlier version's id to the second); None for an id of another shape."""
    stamp = model_id.split("-", 1)[0]
    try:
        created = dt.datetime.strptime(stamp[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    if not (len(stamp) == 15 or (len(stamp) == 21 and stamp[15:].isdigit())):
        return None
    return created.replace(tzinfo=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _check_finished(lake: Lake, model_id: str) -> None:
    if model.finished(lake, model_id):
        return
    if model_id.startswith("_") or not lake.exists("models", model_id):
        raise RegistryError(f"{lake.url}: no model {model_id!r} (see `fraudflow models list --data {lake.url}`)")
    raise RegistryError(f"model {model_id} did not finish (no {model.METRICS_FILE}): it cannot be aliased or served")


def parse_alias(name: str) -> Alias:
    """``name`` as an alias; ``ConfigError`` unless it is one."""
    for known in ALIASES:
        if name == known:
            return known
    raise ConfigError(f"unknown alias {name!r}; expected one of {list(ALIASES)}")
