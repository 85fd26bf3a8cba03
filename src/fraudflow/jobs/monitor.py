"""Monitor the deployed model from its prediction log: traffic, alerts, scores, drift, data quality, labels.

``monitor(lake)`` reads the lake's prediction log (``store.predictions``) and reports, per day of it:

- volume (transactions, cards) and alerts (transactions, distinct cards) against the alert budget
  of the model that served the day (cards a day, stored with the model: ``training.budget``;
  100 for a model saved without one);
- the score distribution (mean, quantiles, a histogram on [0, 1] in tenths);
- per model input (the log's FEATURES), drift against the model's training window: the window of
  ``Thresholds.drift_days`` days ending on the day (a week by default: the same mix of weekdays as
  the 7 training days, so that calendar features such as ``TX_DURING_WEEKEND`` compare like with
  like) against the offline store's features of the model's training days, by PSI and by the KS
  statistic (``jobs.drift``); windows the log does not fill are reported, never flagged;
- data quality: nulls (by column), out-of-range values (negative amounts, scores outside [0, 1],
  non-finite features, an ALERT that disagrees with SCORE >= THRESHOLD, a transaction time after
  its serving time), duplicate rows of a transaction in the log's files (readers keep one), and
  late transactions (served after one newer by more than ``Thresholds.late_after_seconds``: in
  the order of SERVED_AT, then TX_DATETIME);
- live AUC ROC, average precision and CP@100 on the days whose labels are mature (at least
  ``DELAY_DAYS`` before the log's newest day): per day, per week (7-day blocks counted from the
  log's first day) and over them all. Labels are the labels table's as known now (unlabelled:
  genuine), else the lake's transactions' TX_FRAUD (the simulator's truth); ``labels`` says which.
  Unlike the protocol's test sets no customer is left out: this is every transaction served;
- the label arrival lag (LABEL_TIME - TX_DATETIME of the first fraud label of each logged transaction);
- the production model, the models that served, and the registry's decisions.

A threshold crossed is a ``Flag`` (one line each in ``MonitorReport.flags``; ``ok`` is False):
PSI or KS above its threshold on a complete window, more alerted cards on a day than the budget
times ``1 + alert_tolerance``, any data-quality issue, a complete mature week whose live CP@100 is
below ``1 - cp_drop`` times the serving model's CP@100 on its own test week.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import ConfigError, LakeError
from fraudflow.jobs import drift
from fraudflow.lake import Lake, open_lake
from fraudflow.serving.desk.live import MONITOR_REPORT
from fraudflow.store import labels, offline, predictions
from fraudflow.training import budget, metrics, model, registry
from fraudflow.training.protocol import DELAY_DAYS, K

if TYPE_CHECKING:
    import duckdb

AUC, AP, CP, CP_BOUND = metrics.metric_names(K)
#: the score quantiles reported each day
SCORE_QUANTILES = (0.5, 0.9, 0.99)
#: the score histogram's bins: tenths of [0, 1]
SCORE_BINS = 10
#: what ``MonitorReport.labels`` says the live metrics were judged with
LABELS_TABLE = "labels table (as known now; unlabelled: genuine)"
TRUTH = "simulator truth (TX_FRAUD of the lake's transactions)"
NO_LABELS = "none (no labels table, no transactions in the lake for the mature days)"


class MonitorError(LakeError):
    """Nothing to monitor: the lake has no prediction log (for the days asked)."""


@dataclass(frozen=True)
class Thresholds:
    """What ``monitor`` flags (see the module's docstring)."""

    psi: float = 0.2
    ks: float = 0.1
    drift_days: int = 7
    alert_tolerance: float = 0.5
    late_after_seconds: float = 600.0
    cp_drop: float = 0.5

    def check(self) -> None:
        for name in ("psi", "ks", "alert_tolerance", "late_after_seconds"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"monitor threshold {name} must be >= 0, got {getattr(self, name)}")
        if self.drift_days < 1:
            raise ConfigError(f"monitor drift window must be at least 1 day, got {self.drift_days}")
        if not 0 <= self.cp_drop <= 1:
            raise ConfigError(f"monitor cp_drop must be in [0, 1], got {self.cp_drop}")


@dataclass(frozen=True)
class Scores:
    mean: float
    quantiles: dict[str, float]  # "p50", "p90", "p99"
    max: float
    histogram: list[int]  # transactions per tenth of [0, 1]


@dataclass(frozen=True)
class Quality:
    nulls: dict[str, int]  # by column (FEATURES.<name> for an input), only those with some
    out_of_range: dict[str, int]  # by check, only those with some
    duplicates: int  # rows of the log's files beyond the first of each transaction
    late: int

    @property
    def issues(self) -> int:
        return sum(self.nulls.values()) + sum(self.out_of_range.values()) + self.duplicates + self.late


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks: float
    flagged: bool


@dataclass(frozen=True)
class Drift:
    first: str  # the window's days
    last: str
    complete: bool  # the log holds every day of the window (only complete windows are flagged)
    transactions: int
    reference_model: str
    features: list[FeatureDrift]


@dataclass(frozen=True)
class Live:
    """Live metrics over some mature days."""

    first: str
    last: str
    days: int
    transactions: int
    frauds: int
    auc_roc: float
    average_precision: float
    card_precision: float  # CP@100, the mean over the days
    card_precision_bound: float


@dataclass(frozen=True)
class Day:
    day: str
    transactions: int
    cards: int
    alerts: int  # transactions alerted
    alerted_cards: int
    budget: float  # cards a day, of the model that served most of the day
    model_id: str  # the model that served most of the day
    scores: Scores
    quality: Quality
    drift: Drift | None
    mature: bool
    live: Live | None  # the day alone (AUC, AP); its CP@100 with cards found on earlier mature days left out


@dataclass(frozen=True)
class LabelLag:
    """LABEL_TIME - TX_DATETIME of the first fraud label of the logged transactions, in days."""

    frauds: int
    mean: float
    p50: float
    p90: float
    max: float


@dataclass(frozen=True)
class ServedModel:
    model_id: str
    first_day: str
    last_day: str
    transactions: int
    cards_per_day: float
    threshold: float | None  # stored with the model (None: saved before budgets)
    test_card_precision: float | None  # CP@100 on its own test week


@dataclass(frozen=True)
class Flag:
    """A threshold crossed: one check on one subject, over the days it was crossed."""

    check: str  # drift_psi, drift_ks, alerts, quality, live_cp
    subject: str
    days: list[str]
    worst: float
    threshold: float
    message: str


@dataclass(frozen=True)
class MonitorReport:
    lake: str
    first_day: str
    last_day: str
    labels: str
    thresholds: Thresholds
    days: list[Day]
    weeks: list[Live]
    live: Live | None  # every mature day of the report
    label_lag: LabelLag | None
    production: str | None
    models: list[ServedModel]
    decisions: list[dict[str, Any]]
    flags: list[Flag]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flags

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (NaN as null)."""
        return {**_finite(asdict(self)), "ok": self.ok}


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# the report ------------------------------------------------------------------------------------
def monitor(data: str | Lake, *, days: int | None = None, thresholds: Thresholds | None = None) -> MonitorReport:
    """The monitoring report of the prediction log's last ``days`` days (all when None), also kept in
    the lake as the latest (``monitor/report.json``: the analyst desk shows its flags)."""
    lake = open_lake(data)
    thresholds = thresholds or Thresholds()
    thresholds.check()
    logged = predictions.log_table(lake).days()
    if not logged:
        raise MonitorError(
            f"{lake.url} has no prediction log ({predictions.TABLE}/) yet: it is written as transactions are "
            f"scored (`fraudflow serve --data {lake.url}` answering traffic, e.g. from `fraudflow replay`, "
            "or `fraudflow operate`)"
        )
    if days is not None and days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    shown = logged[-days:] if days else logged
    log = _Log.read(lake, shown[0] - dt.timedelta(days=thresholds.drift_days - 1), shown[-1], logged[0])
    report = _Builder(lake, log, shown, thresholds).report()
    lake.write_json(lake.path(*MONITOR_REPORT), report.to_json())
    return report


@dataclass
class _Log:
    """The prediction log's rows of the days read (each transaction once), as arrays, and its raw row counts."""

    table: pa.Table
    day: np.ndarray  # datetime64[D]
    raw_rows: dict[dt.date, int]
    first_logged: dt.date
    con: duckdb.DuckDBPyConnection

    @classmethod
    def read(cls, lake: Lake, start: dt.date, end: dt.date, first_logged: dt.date) -> _Log:
        import duckdb

        con = duckdb.connect()
        predictions.register(con, lake, start, end)
        order = f"ORDER BY {schema.TX_DATETIME}, {schema.TRANSACTION_ID}"
        table = con.sql(f"SELECT * FROM {predictions.TABLE} {order}").to_arrow_table()
        raw = con.execute(
            f"SELECT {schema.PARTITION_COLUMN}, COUNT(*) FROM {predictions.LOG_VIEW} GROUP BY 1"
        ).fetchall()
        day = table[schema.PARTITION_COLUMN].to_numpy().astype("datetime64[D]")
        return cls(table, day, dict(raw), first_logged, con)

    def rows_of(self, first: dt.date, last: dt.date) -> np.ndarray:
        return (self.day >= np.datetime64(first, "D")) & (self.day <= np.datetime64(last, "D"))

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.table[name].to_numpy(zero_copy_only=False))

    def feature(self, name: str) -> np.ndarray | None:
        """An input's values (null: NaN); None when no file of the log has it."""
        vector = self.table[predictions.FEATURES].type
        if vector.get_field_index(name) < 0:
            return None
        import pyarrow.compute as pc

        values = pc.struct_field(self.table[predictions.FEATURES], name)
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


class _Builder:
    """Builds the report of ``shown`` days from the log read (which starts earlier, for drift windows)."""

    def __init__(self, lake: Lake, log: _Log, shown: list[dt.date], thresholds: Thresholds) -> None:
        self.lake, self.log, self.shown, self.t = lake, log, shown, thresholds
        self.notes: list[str] = []
        self._meta: dict[str, dict[str, Any] | None] = {}
        self._references: dict[str, dict[str, drift.Reference] | None] = {}
        self.models = self.log.column(predictions.MODEL_ID)
        self.mature_last = shown[-1] - dt.timedelta(days=DELAY_DAYS)

    def report(self) -> MonitorReport:
        quality = self._quality()
        live_days, weeks, overall, source = self._live()
        days = [self._day(day, quality[day], live_days.get(day)) for day in self.shown]
        report = MonitorReport(
            lake=self.lake.url,
            first_day=self.shown[0].isoformat(),
            last_day=self.shown[-1].isoformat(),
            labels=source,
            thresholds=self.t,
            days=days,
            weeks=weeks,
            live=overall,
            label_lag=self._label_lag(),
            production=registry.production(self.lake),
            models=self._served(),
            decisions=[d.to_json() for d in registry.decisions(self.lake)],
            flags=[],
            notes=self.notes,
        )
        return dataclasses.replace(report, flags=flags(report))

    # models ------------------------------------------------------------------------------------
    def metadata(self, model_id: str) -> dict[str, Any] | None:
        if model_id not in self._meta:
            path = self.lake.path("models", model_id, model.METADATA_FILE)
            found = self.lake.fs.exists(path)
            self._meta[model_id] = self.lake.read_json(path) if found else None
            if not found:
                self.notes.append(
                    f"model {model_id} is not in the lake: budget {budget.CARDS_PER_DAY}, no drift reference"
                )
        return self._meta[model_id]

    def cards_per_day(self, model_id: str) -> float:
        meta = self.metadata(model_id)
        stored = None if meta is None else budget.stored(meta)
        return float(budget.CARDS_PER_DAY) if stored is None else stored.cards_per_day

    def reference(self, model_id: str) -> dict[str, drift.Reference] | None:
        """Each input's values on the model's training days, in the offline store."""
        if model_id not in self._references:
            self._references[model_id] = self._read_reference(model_id)
        return self._references[model_id]

    def _read_reference(self, model_id: str) -> dict[str, drift.Reference] | None:
        meta = self.metadata(model_id)
        if meta is None:
            return None
        if "train_start" not in meta:
            self.notes.append(f"model {model_id}: no training window in its metadata: no drift reference")
            return None
        first, last = dt.date.fromisoformat(meta["train_start"]), dt.date.fromisoformat(meta["train_end"])
        stored = offline.registry_json(self.lake)
        rows = offline.read_rows(self.lake, first, last)
        if rows is None or stored is None or stored.get("version") != meta.get("feature_set_version"):
            self.notes.append(
                f"model {model_id}: the offline store has no features of version {meta.get('feature_set_version')} "
                f"for its training days {first} .. {last}: no drift reference"
            )
            return None
        names = [f for f in meta["features"] if f in rows.column_names]
        return {f: drift.Reference.of(rows[f].to_numpy().astype(np.float64)) for f in names}

    def _served(self) -> list[ServedModel]:
        served = []
        shown = self.log.rows_of(self.shown[0], self.shown[-1])
        for model_id in sorted(set(self.models[shown].tolist())):
            rows = shown & (self.models == model_id)
            days = self.log.day[rows]
            meta = self.metadata(model_id)
            stored = None if meta is None else budget.stored(meta)
            served.append(
                ServedModel(
                    model_id,
                    str(days.min()),
                    str(days.max()),
                    int(rows.sum()),
                    self.cards_per_day(model_id),
                    None if stored is None else stored.threshold,
                    self._test_card_precision(model_id),
                )
            )
        return sorted(served, key=lambda m: (m.first_day, m.model_id))

    def _test_card_precision(self, model_id: str) -> float | None:
        path = self.lake.path("models", model_id, model.METRICS_FILE)
        if not self.lake.fs.exists(path):
            return None
        value = self.lake.read_json(path).get(CP)
        return None if value is None else float(value)

    def main_model(self, rows: np.ndarray) -> str:
        return str(Counter(self.models[rows].tolist()).most_common(1)[0][0])

    # per day -----------------------------------------------------------------------------------
    def _day(self, day: dt.date, quality: Quality, live: Live | None) -> Day:
        rows = self.log.rows_of(day, day)
        model_id = self.main_model(rows)
        customers = self.log.column(schema.CUSTOMER_ID)[rows]
        alerted = self.log.column(predictions.ALERT)[rows].astype(bool)
        return Day(
            day=day.isoformat(),
            transactions=int(rows.sum()),
            cards=len(np.unique(customers)),
            alerts=int(alerted.sum()),
            alerted_cards=len(np.unique(customers[alerted])),
            budget=self.cards_per_day(model_id),
            model_id=model_id,
            scores=_scores(self.log.column(predictions.SCORE)[rows]),
            quality=quality,
            drift=self._drift(day, model_id),
            mature=day <= self.mature_last,
            live=live,
        )

    def _drift(self, day: dt.date, model_id: str) -> Drift | None:
        reference = self.reference(model_id)
        if reference is None:
            return None
        first = day - dt.timedelta(days=self.t.drift_days - 1)
        rows = self.log.rows_of(first, day)
        complete = len(np.unique(self.log.day[rows])) == self.t.drift_days
        features = []
        for name, ref in reference.items():
            values = self.log.feature(name)
            if values is None:
                continue
            sample = values[rows]
            p, k = drift.psi(ref, sample), drift.ks(ref, sample)
            features.append(FeatureDrift(name, p, k, complete and (p > self.t.psi or k > self.t.ks)))
        return Drift(first.isoformat(), day.isoformat(), complete, int(rows.sum()), model_id, features)

    # data quality ------------------------------------------------------------------------------
    def _quality(self) -> dict[dt.date, Quality]:
        index = {day: i for i, day in enumerate(self.shown)}
        position = np.array([index.get(d, -1) for d in self.log.day.astype(object)], dtype=np.int64)
        n = len(self.shown)

        def per_day(mask: np.ndarray) -> np.ndarray:
            counts: np.ndarray = np.bincount(position[mask & (position >= 0)], minlength=n)
            return counts

        nulls = {name: per_day(mask) for name, mask in self._null_masks()}
        ranges = {name: per_day(mask) for name, mask in self._out_of_range()}
        late = per_day(self._late())
        result = {}
        for day, i in index.items():
            distinct = int((position == i).sum())
            result[day] = Quality(
                {name: int(c[i]) for name, c in nulls.items() if c[i]},
                {name: int(c[i]) for name, c in ranges.items() if c[i]},
                self.log.raw_rows.get(day, 0) - distinct,
                int(late[i]),
            )
        return result

    def _null_masks(self) -> Iterable[tuple[str, np.ndarray]]:
        """Each column's nulls; an input's only on the rows of models that take it (of an unknown model: all)."""
        table = self.log.table
        for name in table.column_names:
            column = table[name]
            if name == predictions.FEATURES:
                import pyarrow.compute as pc

                for sub in column.type:
                    values = pc.struct_field(column, sub.name)
                    if values.null_count:
                        nulls = np.asarray(values.is_null().to_numpy(zero_copy_only=False))
                        yield f"{name}.{sub.name}", nulls & self._takes(sub.name)
            elif column.null_count:
                yield name, np.asarray(column.is_null().to_numpy(zero_copy_only=False))

    def _takes(self, feature: str) -> np.ndarray:
        """The rows served by a model with ``feature`` among its inputs (or by a model not in the lake)."""
        takers = [
            m for m in set(self.models.tolist()) if feature in (self.metadata(m) or {"features": [feature]})["features"]
        ]
        return np.isin(self.models, takers)

    def _out_of_range(self) -> Iterable[tuple[str, np.ndarray]]:
        amount = self.log.column(schema.TX_AMOUNT).astype(np.float64)
        score = self.log.column(predictions.SCORE).astype(np.float64)
        threshold = self.log.column(predictions.THRESHOLD).astype(np.float64)
        alert = self.log.column(predictions.ALERT)
        yield "negative or non-finite TX_AMOUNT", ~(amount >= 0) | np.isinf(amount)
        yield "SCORE outside [0, 1]", ~((score >= 0) & (score <= 1))
        yield "ALERT other than SCORE >= THRESHOLD", np.asarray(alert, dtype=bool) != (score >= threshold)
        yield "TX_DATETIME after SERVED_AT", self._time(schema.TX_DATETIME) > self._time(predictions.SERVED_AT)
        vector = self.log.table[predictions.FEATURES].type
        infinite = np.zeros(self.log.table.num_rows, dtype=bool)
        for sub in vector:
            values = self.log.feature(sub.name)
            if values is not None:
                infinite |= np.isinf(values)
        yield "infinite FEATURES value", infinite

    def _time(self, name: str) -> np.ndarray:
        return self.log.column(name).astype("datetime64[us]").astype(np.int64)

    def _late(self) -> np.ndarray:
        """Rows served after a transaction newer than theirs by more than ``late_after_seconds``."""
        tx, served = self._time(schema.TX_DATETIME), self._time(predictions.SERVED_AT)
        order = np.lexsort((self.log.column(schema.TRANSACTION_ID), tx, served))
        newest_before = np.r_[tx[order][:1], np.maximum.accumulate(tx[order])[:-1]]  # the first: itself
        late = np.zeros(len(tx), dtype=bool)
        late[order] = newest_before - tx[order] > self.t.late_after_seconds * 1_000_000
        return late

    # labels ------------------------------------------------------------------------------------
    def _labels_of(self, mature: np.ndarray) -> tuple[np.ndarray | None, str]:
        """The labels of the mature rows (as known now, else the simulator's truth), and which they are."""
        ids = self.log.column(schema.TRANSACTION_ID)[mature]
        if labels.register(self.log.con, self.lake):
            known = self.log.con.sql(labels.latest_sql()).to_arrow_table()
            return _lookup(
                ids, known[schema.TRANSACTION_ID].to_numpy(), known[schema.TX_FRAUD].to_numpy()
            ), LABELS_TABLE
        days = sorted({d for d in self.log.day[mature].astype(object)})
        held = set(self.lake.partitions("transactions"))
        if not days or not set(days) <= held:
            return None, NO_LABELS
        truth = self.lake.read_partitions("transactions", days, columns=[schema.TRANSACTION_ID, schema.TX_FRAUD])
        return _lookup(ids, truth[schema.TRANSACTION_ID].to_numpy(), truth[schema.TX_FRAUD].to_numpy()), TRUTH

    def _live(self) -> tuple[dict[dt.date, Live], list[Live], Live | None, str]:
        mature = self.log.rows_of(self.shown[0], self.mature_last)
        if not mature.any():
            return {}, [], None, "none yet (no day of the report is mature)"
        fraud, source = self._labels_of(mature)
        if fraud is None:
            return {}, [], None, source
        day = self.log.day[mature]
        customers = self.log.column(schema.CUSTOMER_ID)[mature]
        scores = self.log.column(predictions.SCORE)[mature].astype(np.float64)
        overall, per_day = _judge(day, customers, fraud, scores)
        by_day = {}
        for i, d in enumerate(np.unique(day)):
            one = day == d
            alone = _judge(day[one], customers[one], fraud[one], scores[one])[0]
            cp, bound = per_day[i]
            by_day[d.astype(object)] = dataclasses.replace(alone, card_precision=cp, card_precision_bound=bound)
        weeks = []
        offset = (day - np.datetime64(self.log.first_logged, "D")).astype(np.int64) // 7
        for w in np.unique(offset):
            block = offset == w
            weeks.append(_judge(day[block], customers[block], fraud[block], scores[block])[0])
        return by_day, weeks, overall, source

    def _label_lag(self) -> LabelLag | None:
        if not labels.register(self.log.con, self.lake):
            return None
        first, last = self.shown[0].isoformat(), self.shown[-1].isoformat()
        lags = self.log.con.execute(
            f"SELECT epoch_us(MIN(l.{labels.LABEL_TIME})) - epoch_us(p.{schema.TX_DATETIME})"
            f" FROM {predictions.TABLE} p JOIN {labels.TABLE} l USING ({schema.TRANSACTION_ID})"
            f" WHERE l.{schema.TX_FRAUD} = 1 AND p.{schema.PARTITION_COLUMN} BETWEEN DATE '{first}' AND DATE '{last}'"
            f" GROUP BY p.{schema.TRANSACTION_ID}, p.{schema.TX_DATETIME}"
        ).fetchall()
        if not lags:
            return LabelLag(0, math.nan, math.nan, math.nan, math.nan)
        in_days = np.array([lag for (lag,) in lags], dtype=np.float64) / 86_400e6
        p50, p90 = np.quantile(in_days, [0.5, 0.9])
        return LabelLag(len(in_days), float(in_days.mean()), float(p50), float(p90), float(in_days.max()))


def _lookup(ids: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` of ``ids`` in ``known`` (0 for an id not there)."""
    order = np.argsort(known, kind="stable")
    sorted_known = known[order]
    at = np.clip(np.searchsorted(sorted_known, ids), 0, max(len(known) - 1, 0))
    found = (sorted_known[at] == ids) if len(known) else np.zeros(len(ids), dtype=bool)
    result = np.zeros(len(ids), dtype=np.int64)
    result[found] = values[order][at[found]]
    return result


def _judge(
    day: np.ndarray, customers: np.ndarray, fraud: np.ndarray, scores: np.ndarray
) -> tuple[Live, list[tuple[float, float]]]:
    """The metrics of the rows (``training.metrics.performance``), and CP@100 and its bound per day."""
    judged = metrics.performance(day, customers, fraud, scores, K)
    live = Live(
        str(day.min()),
        str(day.max()),
        len(np.unique(day)),
        len(day),
        int(fraud.sum()),
        judged.auc_roc,
        judged.average_precision,
        judged.card_precision,
        judged.card_precision_bound,
    )
    return live, list(zip(judged.card_precision_per_day, judged.card_precision_bound_per_day, strict=True))


def _scores(values: np.ndarray) -> Scores:
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return Scores(math.nan, {f"p{round(q * 100)}": math.nan for q in SCORE_QUANTILES}, math.nan, [0] * SCORE_BINS)
    quantiles = np.quantile(finite, SCORE_QUANTILES)
    # bin i holds [i / 10, (i + 1) / 10), the last one 1.0 too (np.histogram's float edges put 0.6 below 0.6)
    bins = np.clip(np.floor(finite * SCORE_BINS), 0, SCORE_BINS - 1).astype(np.int64)
    histogram = np.bincount(bins, minlength=SCORE_BINS)
    return Scores(
        float(finite.mean()),
        {f"p{round(q * 100)}": float(v) for q, v in zip(SCORE_QUANTILES, quantiles, strict=True)},
        float(finite.max()),
        histogram.astype(int).tolist(),
    )


# flags -----------------------------------------------------------------------------------------
def flags(report: MonitorReport) -> list[Flag]:
    """Every threshold the report's days cross, one per check and subject."""
    t = report.thresholds
    found: list[Flag] = []
    for check, name, threshold in (("drift_psi", "PSI", t.psi), ("drift_ks", "KS", t.ks)):
        crossed: dict[str, list[tuple[str, float]]] = {}
        for day in report.days:
            for f in day.drift.features if day.drift and day.drift.complete else []:
                value = f.psi if check == "drift_psi" else f.ks
                if value > threshold:
                    crossed.setdefault(f.feature, []).append((day.day, value))
        for feature, hits in crossed.items():
            found.append(_flag(check, feature, hits, threshold, f"drift of {feature}: {name}", "on windows ending"))
    factor = 1 + t.alert_tolerance
    over = [d for d in report.days if d.alerted_cards > d.budget * factor]
    if over:
        worst = max(over, key=lambda d: d.alerted_cards / d.budget)
        days = [d.day for d in over]
        message = (
            f"alerted cards a day {worst.alerted_cards} > {worst.budget * factor:g}"
            f" (budget {worst.budget:g} x {factor:g}) on {_days(days)} (worst {worst.day})"
        )
        limit = worst.budget * factor
        found.append(Flag("alerts", "alerted cards", days, float(worst.alerted_cards), limit, message))
    issues: dict[str, list[tuple[str, float]]] = {}
    for day in report.days:
        q = day.quality
        named = {**{f"null {c}": n for c, n in q.nulls.items()}, **q.out_of_range}
        named.update({"duplicate rows": q.duplicates, "late transactions": q.late})
        for name, count in named.items():
            if count:
                issues.setdefault(name, []).append((day.day, float(count)))
    for name, hits in issues.items():
        total = int(sum(v for _, v in hits))
        days = [d for d, _ in hits]
        found.append(Flag("quality", name, days, float(total), 0.0, f"data quality: {total} {name} on {_days(days)}"))
    found.extend(_cp_flags(report))
    return found


def _cp_flags(report: MonitorReport) -> list[Flag]:
    tested = {m.model_id: m.test_card_precision for m in report.models}
    hits, floor = [], math.inf
    for week in report.weeks:
        if week.days < 7:
            continue
        serving = Counter(d.model_id for d in report.days if week.first <= d.day <= week.last).most_common(1)
        test_cp = tested.get(serving[0][0]) if serving else None
        if test_cp is None:
            continue
        limit = (1 - report.thresholds.cp_drop) * test_cp
        if week.card_precision < limit:
            hits.append((week.last, week.card_precision))
            floor = min(floor, limit)
    if not hits:
        return []
    worst = min(v for _, v in hits)
    message = (
        f"live CP@100 {worst:.3f} below {floor:.3f} ({1 - report.thresholds.cp_drop:g} x the model's test CP@100)"
        f" in the week(s) ending {_days([d for d, _ in hits])}"
    )
    return [Flag("live_cp", CP, [d for d, _ in hits], worst, floor, message)]


def _flag(check: str, subject: str, hits: list[tuple[str, float]], threshold: float, what: str, when: str) -> Flag:
    days = [d for d, _ in hits]
    worst_day, worst = max(hits, key=lambda hit: hit[1])
    message = f"{what} {worst:.3f} > {threshold:g} {when} {_days(days)} (worst {worst_day})"
    return Flag(check, subject, days, worst, threshold, message)


def _days(days: list[str]) -> str:
    return days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]} ({len(days)} days)"
