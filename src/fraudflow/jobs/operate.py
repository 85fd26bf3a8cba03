"""Operate: what a deployment lives through, one simulated day at a time.

Each day D (a day index of the lake's world, after the days it held when operation began):

1. the world is continued by day D (``simulate.generate``, with the changes given, as the
   scheduled Lambda does): unless the lake holds it already;
2. its transactions are scored in arrival order (in this process, or by a running service:
   ``operate_scoring``), the chargebacks arriving that day between them: every fraud is reported
   ``DELAY_DAYS`` (7) days after it happened, to the second, so the fraud of day D-7 at 14:03:10
   reaches the online state before the first transaction of day D at or after 14:03:10 (the online
   features then equal the batch ones, whose terminal-risk windows end 7 days back);
3. the chargebacks land in the lake's labels table with their simulated arrival time (source
   ``chargeback``): the training sets read labels as known at their cut-off;
4. the features of the new day are computed (``workflow.ensure_features``: the days without any);
5. the monitor reads the prediction log's last ``MONITOR_DAYS`` days (``jobs.monitor``);
6. every ``retrain_every`` days, a challenger is trained on the newest split whose labels are
   mature (``workflow.train``) and gated against the production model (``registry.gate``); a
   promoted challenger answers from the next day on.

State, in the lake: ``operate/state.json`` (the first day operated and the last one finished,
rewritten after each step that changes it) and one ``operate/days/<date>.json`` per finished day
(what the terminal shows, and the day's wall time). A restart continues after the last finished
day, and redoes a day cut short; every step is idempotent, so a day run twice changes nothing:
a day the lake holds is not generated again, the scorer answers a transaction answered before
with its first answer (logged once; answers a crash kept from the log are written from the online
store's), a chargeback already in the labels table is not added again, features are computed for
days without them, and a week's challenger is found by its day (``operate_day`` in its metadata)
and its gate's decision in the registry's log.

When operation begins, the chargebacks of the lake's earlier frauds that had arrived by then are
written to the labels table (training sets read labels from it once it exists), and the model in
service becomes the registry's production model if none is (so that the first gate has a champion).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudflow import schema
from fraudflow.errors import ConfigError, CoverageError, LakeError
from fraudflow.features import registry as feature_registry
from fraudflow.jobs import monitor as monitoring
from fraudflow.jobs.operate_scoring import InProcess, Scoring, Service
from fraudflow.lake import Lake, open_lake
from fraudflow.records import US_PER_DAY
from fraudflow.simulate import WorldChange, WorldParams, generate, recorded_world
from fraudflow.store import labels
from fraudflow.training import model as models
from fraudflow.training import registry, workflow
from fraudflow.training.protocol import DELAY_DAYS

FOLDER = "operate"
STATE_FILE = "state.json"
DAYS_FOLDER = "days"
STATE_FORMAT = 1
CHARGEBACK = "chargeback"
CHARGEBACK_DELAY_US = DELAY_DAYS * 86_400_000_000
#: the days of the prediction log the daily monitor reads: a week of mature days and the week after
MONITOR_DAYS = 2 * DELAY_DAYS
#: the metadata key naming the operated day a challenger was trained on
OPERATE_DAY = "operate_day"


@dataclass(frozen=True)
class State:
    """Where operation stands: its first day and the last finished one (world day indexes)."""

    first_day: int
    done_through: int  # first_day - 1 before any day is finished
    backfilled: bool = False  # the chargebacks of the days before ``first_day`` are in the labels table
    in_progress: int | None = None  # a day begun and not finished

    def to_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> State:
        try:
            values = {k: v for k, v in data.items() if k != "format"}
            state = cls(**values)
        except (AttributeError, TypeError) as exc:
            raise LakeError(f"{where}: not an operate state ({exc}); move it away to start operation anew") from exc
        if data.get("format") != STATE_FORMAT:
            raise LakeError(f"{where}: operate state format {data.get('format')!r}, expected {STATE_FORMAT}")
        return state


@dataclass(frozen=True)
class Gate:
    """A week's challenger and what the gate decided (``challenger`` None: none could be trained)."""

    challenger: str | None
    promoted: bool
    reason: str


@dataclass(frozen=True)
class Raised:
    """A monitor flag raised on a day: its check (``monitor.Flag.check``), subject and message."""

    check: str
    subject: str
    message: str


@dataclass(frozen=True)
class DayReport:
    """One operated day, as the terminal line and ``operate/days/<date>.json`` show it."""

    day: str
    index: int
    transactions: int
    alerts: int  # transactions alerted
    alerted_cards: int
    budget: float | None  # cards a day, of the model that served the day
    model_id: str
    chargebacks: int
    live_day: str | None  # the newest mature day (7 days back), when the log holds it
    live_cp: float | None  # its CP@100
    live_ap: float | None
    week_cp: float | None  # live CP@100 of the mature week that ended on ``live_day``, when one did
    flags: list[Raised]  # the monitor's flags raised on this day (drift, alerts, quality) or on ``live_day`` (live CP)
    gate: Gate | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DayReport:
        gate = data.get("gate")
        flags = [Raised(**f) for f in data.get("flags", [])]
        return cls(**{**data, "gate": Gate(**gate) if gate else None, "flags": flags})

    def line(self) -> str:
        """The day on one line: volume, alerts against the budget, chargebacks, live CP@100, flags, the gate."""
        budget = "" if self.budget is None else f"/{self.budget:g}"
        parts = [
            f"{self.day}",
            f"{self.transactions:>8,} tx",
            f"alerted cards {self.alerted_cards:>4}{budget}",
            f"chargebacks {self.chargebacks:>4}",
        ]
        if self.live_cp is not None:
            week = "" if self.week_cp is None else f", week {self.week_cp:.3f}"
            parts.append(f"live CP@100 {self.live_cp:.3f} ({self.live_day}{week})")
        checks: dict[str, list[str]] = {}
        for f in self.flags:
            checks.setdefault(f.check.split("_")[0], []).append(f.subject)
        for check, subjects in checks.items():
            names = list(dict.fromkeys(subjects))
            parts.append(f"{check}: {', '.join(names[:3])}{f' +{len(names) - 3}' if len(names) > 3 else ''}")
        if self.gate is not None:
            g = self.gate
            verdict = (
                "no challenger" if g.challenger is None else ("PROMOTED " if g.promoted else "kept ") + g.challenger
            )
            parts.append(f"gate: {verdict}")
        parts.append(f"{self.seconds:.1f} s")
        return "  ".join(parts)


@dataclass(frozen=True)
class OperateReport:
    """What one ``operate`` call did: the days it ran (the others were done before), and where operation stands."""

    lake: str
    first_day: str  # the first day operation ever ran
    last_day: str | None  # the last one finished
    target_day: str
    days: list[DayReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "days": [d.to_json() for d in self.days]}


# the loop --------------------------------------------------------------------------------------
def operate(
    data: str | os.PathLike[str] | Lake,
    days: int,
    *,
    url: str | None = None,
    api_key: str | None = None,
    online: str | None = None,
    answers_window_days: float | None = None,
    changes: Sequence[WorldChange] = (),
    retrain_every: int = 7,
    margins: registry.Margins | None = None,
    on_day: Callable[[DayReport], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> OperateReport:
    """Operate the lake's deployment until ``days`` days have been operated since operation began
    (the same call after a stop finishes them; a larger ``days`` goes further).

    ``url``: score through the service there (else in this process, over the online store
    ``online``: SQLite in a local lake root by default, keeping answers ``answers_window_days``, 1 by
    default; a service has its own). ``changes``: changes of the world from
    their day on (recorded with the world; a change on a day already generated is refused).
    ``on_day`` gets each finished day; ``progress(done, total)`` the days finished of ``days``.
    """
    lake = open_lake(data)
    if days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    if url is not None and (online is not None or answers_window_days is not None):
        raise ConfigError(
            "--online and --answers-window-days are for scoring in this process; with --url the service has its own"
        )
    if answers_window_days is not None and not answers_window_days > 0:
        raise ConfigError(f"--answers-window-days must be positive, got {answers_window_days}")
    if retrain_every < 1:
        raise ConfigError(f"--retrain-every must be at least 1 day, got {retrain_every}")
    world = _world(lake, changes)
    state = read_state(lake) or State(first_day=world.nb_days, done_through=world.nb_days - 1)
    target = state.first_day + days - 1
    margins = margins or registry.Margins()
    report = OperateReport(lake.url, _date(world, state.first_day).isoformat(), None, _date(world, target).isoformat())
    if state.done_through >= target:
        return dataclasses.replace(report, last_day=_date(world, state.done_through).isoformat())
    feature_registry.required(lake)  # features before anything is written
    scoring: Scoring = (
        Service(lake, url, api_key)
        if url
        else InProcess(
            lake, online, recovering=state.in_progress is not None, answers_us=_microseconds(answers_window_days)
        )
    )
    try:
        write_state(lake, state)
        if not state.backfilled:
            backfill_chargebacks(lake, world, state.first_day)
            state = dataclasses.replace(state, backfilled=True)
            write_state(lake, state)
        if registry.production(lake) is None:
            registry.promote(
                lake, scoring.model_id, reason="fraudflow operate: the model in service when operation began"
            )
        ran = []
        for day in range(state.done_through + 1, target + 1):
            state = dataclasses.replace(state, in_progress=day)
            write_state(lake, state)
            one = run_day(lake, scoring, world, day, changes, state, retrain_every, margins)
            state = dataclasses.replace(state, done_through=day, in_progress=None)
            write_state(lake, state)
            ran.append(one)
            if on_day is not None:
                on_day(one)
            if progress is not None:
                progress(day - state.first_day + 1, days)
    finally:
        scoring.close()
    return dataclasses.replace(report, last_day=_date(world, state.done_through).isoformat(), days=ran)


def run_day(
    lake: Lake,
    scoring: Scoring,
    world: WorldParams,
    day: int,
    changes: Sequence[WorldChange],
    state: State,
    retrain_every: int,
    margins: registry.Margins,
) -> DayReport:
    """One simulated day, every step idempotent (see the module's docstring)."""
    t0 = time.perf_counter()
    date = _date(world, day)
    table = continue_world(lake, world, day, changes)
    frauds = chargebacks(lake, date - dt.timedelta(days=DELAY_DAYS))
    score_day(scoring, table, frauds)
    record_chargebacks(lake, frauds)
    scoring.end_day(date, table[schema.TRANSACTION_ID].to_numpy())
    workflow.ensure_features(lake, feature_registry.required(lake))
    watched = monitoring.monitor(lake, days=MONITOR_DAYS)
    gate = None
    if (day - state.first_day + 1) % retrain_every == 0:
        gate = weekly_gate(lake, date, margins)
        if gate.promoted and gate.challenger is not None:
            scoring.follow(gate.challenger)
    one = _day_report(watched, date, day, table.num_rows, frauds.num_rows, gate, time.perf_counter() - t0)
    return _keep_first(lake, one)


# the steps -------------------------------------------------------------------------------------
def continue_world(lake: Lake, world: WorldParams, day: int, changes: Sequence[WorldChange]) -> pa.Table:
    """Day ``day``'s transactions, generated unless the lake holds them (``changes`` recorded with the world)."""
    date = _date(world, day)
    if date not in lake.partitions("transactions"):
        longer = dataclasses.replace(world, nb_days=max(world.nb_days, day + 1), changes=tuple(changes))
        generate(lake, longer, from_day=day)
    return schema.time_ordered(lake.read_partitions("transactions", [date]))


def chargebacks(lake: Lake, *days: dt.date) -> pa.Table:
    """The frauds of ``days`` as chargebacks: TRANSACTION_ID and LABEL_TIME (``DELAY_DAYS`` after), by arrival."""
    held = set(lake.partitions("transactions"))
    wanted = [d for d in days if d in held]
    columns = [schema.TRANSACTION_ID, schema.TX_DATETIME, schema.TX_FRAUD]
    if not wanted:
        return pa.table({schema.TRANSACTION_ID: pa.array([], pa.int64()), labels.LABEL_TIME: pa.array([], pa.int64())})
    rows = lake.read_partitions("transactions", wanted, columns=columns)
    rows = rows.filter(pc.equal(rows[schema.TX_FRAUD], 1))
    arrival = schema.timestamps_us(rows[schema.TX_DATETIME]) + CHARGEBACK_DELAY_US
    order = np.lexsort((rows[schema.TRANSACTION_ID].to_numpy(), arrival))
    return pa.table(
        {
            schema.TRANSACTION_ID: pa.array(rows[schema.TRANSACTION_ID].to_numpy()[order]),
            labels.LABEL_TIME: pa.array(arrival[order]),
        }
    )


def score_day(scoring: Scoring, table: pa.Table, frauds: pa.Table) -> int:
    """Score ``table`` in order, each chargeback delivered before the first transaction at or after its
    arrival (those arriving after the day's last transaction: at its end); how many were alerted."""
    ts = schema.timestamps_us(table[schema.TX_DATETIME])
    arrival = frauds[labels.LABEL_TIME].to_numpy()
    ids = frauds[schema.TRANSACTION_ID].to_numpy()
    cuts = np.searchsorted(ts, arrival, side="left")  # the first transaction each label must precede
    alerts, done = 0, 0
    for cut in np.union1d(cuts, [table.num_rows]).tolist():
        if cut > done:
            alerts += scoring.score(table.slice(done, cut - done))
            done = cut
        due = ids[cuts == cut]
        if len(due):
            scoring.add_labels(due.tolist())
    return alerts


def record_chargebacks(lake: Lake, frauds: pa.Table) -> int:
    """Commit the chargebacks the labels table lacks (source ``chargeback``); how many."""
    if frauds.num_rows == 0:
        return 0
    arrival = frauds[labels.LABEL_TIME].to_numpy()
    first, last = (np.array([arrival.min(), arrival.max()]).astype("datetime64[us]").astype("datetime64[D]")).tolist()
    held = _chargebacks_held(lake, first, last)
    new = ~np.isin(frauds[schema.TRANSACTION_ID].to_numpy(), held)
    if not new.any():
        return 0
    ids = frauds[schema.TRANSACTION_ID].to_numpy()[new].tolist()
    times = arrival[new].astype("datetime64[us]").tolist()
    return labels.append(lake, labels.labels_table(ids, [1] * len(ids), times, CHARGEBACK))


def _chargebacks_held(lake: Lake, first: dt.date, last: dt.date) -> np.ndarray:
    """TRANSACTION_IDs with a chargeback that arrived on days ``first .. last``."""
    dataset = labels.table(lake).dataset(first, last)
    if dataset is None:
        return np.empty(0, dtype=np.int64)
    held = dataset.to_table(columns=[schema.TRANSACTION_ID, labels.SOURCE])
    held = held.filter(pc.equal(held[labels.SOURCE], CHARGEBACK))
    return np.asarray(held[schema.TRANSACTION_ID].to_numpy())


def backfill_chargebacks(lake: Lake, world: WorldParams, first_day: int) -> int:
    """The chargebacks that had arrived when operation began (frauds of the days up to ``DELAY_DAYS``
    + 1 before its first day) into the labels table; how many were added."""
    last = _date(world, first_day) - dt.timedelta(days=DELAY_DAYS + 1)
    return record_chargebacks(lake, chargebacks(lake, *[d for d in lake.partitions("transactions") if d <= last]))


def weekly_gate(lake: Lake, date: dt.date, margins: registry.Margins) -> Gate:
    """Train the week's challenger on the newest split whose labels are mature (unless it was) and gate it
    (unless it was): the champion's parameters, its inputs as the lake's feature set gives them."""
    challenger = _challenger_of(lake, date)
    if challenger is None:
        champion = registry.production(lake)
        params = None
        if champion is not None:
            params = lake.read_json(lake.path("models", champion, models.METADATA_FILE)).get("params")
        try:
            trained = workflow.train(lake, params=params, extra={OPERATE_DAY: date.isoformat()})
        except CoverageError as exc:
            return Gate(None, False, f"no challenger: {exc}")
        challenger = trained.model_id
    decided = [d for d in registry.decisions(lake) if d.action == "gate" and d.to_model == challenger]
    decision = decided[-1] if decided else registry.gate(lake, challenger, margins)
    return Gate(challenger, decision.changed, decision.reason)


def _challenger_of(lake: Lake, date: dt.date) -> str | None:
    """The finished model trained on operated day ``date``, if any."""
    for model_id in reversed(models.list_models(lake)):
        meta = lake.read_json(lake.path("models", model_id, models.METADATA_FILE))
        if meta.get(OPERATE_DAY) == date.isoformat():
            return model_id
    return None


# state and records -----------------------------------------------------------------------------
def read_state(lake: Lake) -> State | None:
    """The lake's operate state; None before operation began."""
    path = lake.path(FOLDER, STATE_FILE)
    return State.from_json(lake.read_json(path), path) if lake.fs.exists(path) else None


def write_state(lake: Lake, state: State) -> None:
    lake.write_json(lake.path(FOLDER, STATE_FILE), state.to_json())


def day_reports(lake: Lake) -> list[DayReport]:
    """Every finished day's record, oldest first."""
    folder = lake.path(FOLDER, DAYS_FOLDER)
    if not lake.fs.exists(folder):
        return []
    names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in lake.fs.ls(folder, detail=False))
    return [_read_day(lake, f"{folder}/{n}") for n in names if n.endswith(".json") and not n.startswith(".")]


def _read_day(lake: Lake, path: str) -> DayReport:
    try:
        return DayReport.from_json(lake.read_json(path))
    except (AttributeError, TypeError) as exc:
        raise LakeError(f"{path}: not a day operate recorded ({exc})") from exc


def _keep_first(lake: Lake, one: DayReport) -> DayReport:
    """Write the day's record unless it exists (a day run again: the first run's record stays, and is returned)."""
    path = lake.path(FOLDER, DAYS_FOLDER, f"{one.day}.json")
    if lake.fs.exists(path):
        return _read_day(lake, path)
    lake.write_json(path, one.to_json())
    return one


def _day_report(
    watched: monitoring.MonitorReport,
    date: dt.date,
    day: int,
    transactions: int,
    chargebacks: int,
    gate: Gate | None,
    seconds: float,
) -> DayReport:
    today = next((d for d in watched.days if d.day == date.isoformat()), None)
    mature = (date - dt.timedelta(days=DELAY_DAYS)).isoformat()
    live = next((d for d in watched.days if d.day == mature and d.live is not None), None)
    week = next((w for w in watched.weeks if w.last == mature and w.days == DELAY_DAYS), None)
    raised = [
        Raised(f.check, f.subject, f.message)
        for f in watched.flags
        if (f.check != "live_cp" and date.isoformat() in f.days) or (f.check == "live_cp" and mature in f.days)
    ]
    return DayReport(
        day=date.isoformat(),
        index=day,
        transactions=transactions,
        alerts=today.alerts if today else 0,
        alerted_cards=today.alerted_cards if today else 0,
        budget=today.budget if today else None,
        model_id=today.model_id if today else "",
        chargebacks=chargebacks,
        live_day=mature if live else None,
        live_cp=_number(live.live.card_precision) if live and live.live else None,
        live_ap=_number(live.live.average_precision) if live and live.live else None,
        week_cp=_number(week.card_precision) if week else None,
        flags=raised,
        gate=gate,
        seconds=round(seconds, 3),
    )


def _world(lake: Lake, changes: Sequence[WorldChange]) -> WorldParams:
    world = recorded_world(lake)
    if world is None:
        raise LakeError(
            f"{lake.url} has no simulated world to operate (world/world.json): `fraudflow generate`, "
            "`fraudflow features` and `fraudflow train` (or `fraudflow pipeline`) first"
        )
    for change in changes:
        if change not in world.changes and change.from_day < world.nb_days:
            raise ConfigError(
                f"the change {change.kind}:{change.from_day} starts on a day the lake holds already (it holds days "
                f"0..{world.nb_days - 1}); a change must start on day {world.nb_days} or later"
            )
    return world


def _microseconds(days: float | None) -> int | None:
    return None if days is None else round(days * US_PER_DAY)


def _number(value: float) -> float | None:
    """A metric, None when undefined (NaN: no fraud that day)."""
    return value if math.isfinite(value) else None


def _date(world: WorldParams, day: int) -> dt.date:
    return world.start_date + dt.timedelta(days=day)
