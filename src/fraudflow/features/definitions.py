"""Feature definitions: the one source every engine (DuckDB, Spark, online) is driven from.

A feature is a row value (the amount, a calendar flag) or an aggregate of one entity's earlier
transactions over a window of days, optionally shifted back by a delay (labels arrive late):

    interval (t - (delay + window) days, t - delay days], same entity, at or before this row

Its aggregation names one of ``features.aggregations.AGGREGATIONS``, the object every engine
computes it through. Adding a feature is one line in ``HANDBOOK_FEATURES``, e.g. a terminal's fraud
count over 14 days (``TERMINAL``: the entity kind, from ``fraudflow.records``):

    Feature("TERMINAL_ID_NB_FRAUD_14DAY_WINDOW", "sum", entity=TERMINAL, column="TX_FRAUD",
            window_days=14, delay_days=7, description="frauds on the terminal, 14 days, 7 days ago")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fraudflow import schema
from fraudflow.errors import FeatureError
from fraudflow.features.aggregations import AGGREGATIONS, BY_NAME, Aggregation
from fraudflow.records import CUSTOMER, TERMINAL


@dataclass(frozen=True)
class Feature:
    """One model input: ``aggregation`` names one of ``aggregations.AGGREGATIONS``, which says
    which of the other fields it takes and computes it."""

    name: str
    aggregation: str
    entity: str | None = None
    column: str | None = None
    window_days: int = 0
    delay_days: int = 0
    description: str = ""
    of: str | None = None  # "ratio": ``column`` divided by the earlier feature ``of`` (0 when it is 0);
    # "quotient": the earlier feature named by ``column`` divided by ``of``;
    # a window over a derived value ("count_above", "max"): the earlier row feature whose value,
    # as of each transaction, the window reads
    threshold: float | None = None  # "count_above": the value a transaction's must exceed;
    # "unexplained_frauds": the value a fraud's must not exceed
    limit: float | None = None  # "unexplained_frauds": the amount a fraud's must not exceed

    def __post_init__(self) -> None:
        rule = BY_NAME.get(self.aggregation)
        if rule is None:
            names = tuple(a.name for a in AGGREGATIONS)
            raise FeatureError(
                f"feature {self.name!r}: unknown aggregation {self.aggregation!r}; expected one of {names}"
            )
        problem = rule.problem(self)
        if problem:
            raise FeatureError(f"feature {self.name!r}: {problem}")

    @property
    def rule(self) -> Aggregation:
        """The aggregation object: this feature's SQL, compiled and online forms."""
        return BY_NAME[self.aggregation]

    @property
    def reads(self) -> tuple[str, ...]:
        """The earlier features of its set it is computed from."""
        named = (self.column or "",) if self.rule.column_is_feature else ()
        return (*named, self.of) if self.of is not None else named

    @property
    def is_window(self) -> bool:
        return self.rule.window

    @property
    def dtype(self) -> str:
        return self.rule.dtype

    @property
    def history_days(self) -> int:
        return self.window_days + self.delay_days


def customer_spending(window_days: int) -> tuple[Feature, Feature]:
    return (
        Feature(
            f"CUSTOMER_ID_NB_TX_{window_days}DAY_WINDOW",
            "count",
            CUSTOMER,
            window_days=window_days,
            description=f"the customer's transactions in the last {window_days} days, this one included",
        ),
        Feature(
            f"CUSTOMER_ID_AVG_AMOUNT_{window_days}DAY_WINDOW",
            "mean",
            CUSTOMER,
            schema.TX_AMOUNT,
            window_days,
            description=f"their mean amount over the last {window_days} days",
        ),
    )


def terminal_risk(window_days: int, delay_days: int = 7) -> tuple[Feature, Feature]:
    return (
        Feature(
            f"TERMINAL_ID_NB_TX_{window_days}DAY_WINDOW",
            "count",
            TERMINAL,
            window_days=window_days,
            delay_days=delay_days,
            description=f"the terminal's transactions over {window_days} days, {delay_days} days ago",
        ),
        Feature(
            f"TERMINAL_ID_RISK_{window_days}DAY_WINDOW",
            "mean",
            TERMINAL,
            schema.TX_FRAUD,
            window_days,
            delay_days,
            description=f"their fraud rate (0 when none) over {window_days} days, {delay_days} days ago",
        ),
    )


#: The handbook's 15 model inputs, in its order (spec/FEATURES.md).
HANDBOOK_FEATURES: tuple[Feature, ...] = (
    Feature(schema.TX_AMOUNT, "value", column=schema.TX_AMOUNT, description="the transaction's amount"),
    Feature("TX_DURING_WEEKEND", "weekend", description="1 on Saturday or Sunday"),
    Feature("TX_DURING_NIGHT", "night", description="1 when the hour is 0..6"),
    *customer_spending(1),
    *customer_spending(7),
    *customer_spending(30),
    *terminal_risk(1),
    *terminal_risk(7),
    *terminal_risk(30),
)


@dataclass(frozen=True)
class FeatureSet:
    """An ordered, named collection of features with a content version."""

    features: tuple[Feature, ...] = HANDBOOK_FEATURES
    name: str = "handbook"

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise FeatureError(f"feature set {self.name!r}: duplicate names {dupes}")
        for i, f in enumerate(self.features):
            for name in f.reads:
                if name not in names[:i]:
                    raise FeatureError(f"feature {f.name!r} reads {name!r}, which is not an earlier feature of the set")
            if f.rule.derived:
                problem = self._derivation_problem(f)
                if problem:
                    raise FeatureError(f"feature {f.name!r} is a window over {f.of!r}, {problem}")

    def _derivation_problem(self, f: Feature) -> str | None:
        """A window over a derived value reads that value as it was when each transaction arrived:
        it must be a row feature built only from windows of the same entity (unless the aggregation
        reads other entities'), none over labels (which change after the fact), nor over another
        derived value."""
        for g in self.derivation(f.of or ""):
            if g.rule.derived:
                return "itself built on a window over a derived value"
            if g.is_window and g.entity != f.entity and not f.rule.reads_other_entities:
                return f"which reads {g.name!r}, a window of another entity ({g.entity})"
            if g.is_window and g.column == schema.TX_FRAUD:
                return f"which reads {g.name!r}, a window over labels"
        if self.by_name[f.of or ""].is_window:
            return "which is a window itself, not a row value"
        return None

    @property
    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    def derivation(self, name: str) -> list[Feature]:
        """The feature ``name`` and every earlier one it is computed from, in the set's order."""
        by_name = self.by_name
        wanted = {name}
        stack = [name]
        while stack:
            for name in by_name[stack.pop()].reads:
                if name not in wanted:
                    wanted.add(name)
                    stack.append(name)
        return [f for f in self.features if f.name in wanted]

    def reach_days(self, f: Feature) -> int:
        """Days of history ``f`` needs: its window's, plus for a window over a derived value the
        history that value needs for the window's oldest transaction."""
        if not f.rule.derived:
            return f.history_days
        return f.history_days + max(g.history_days for g in self.derivation(f.of or ""))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def history_days(self) -> int:
        """Days of history a new day's features need."""
        return max((self.reach_days(f) for f in self.features), default=0)

    @property
    def version(self) -> str:
        canonical = json.dumps([_fields(f) for f in self.features], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "history_days": self.history_days,
            "features": [_fields(f) for f in self.features],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FeatureSet:
        try:
            feature_set = cls(tuple(Feature(**f) for f in d["features"]), d.get("name", "custom"))
        except (KeyError, TypeError) as exc:
            raise FeatureError(f"not a feature registry: {exc}") from exc
        if d.get("version") not in (None, feature_set.version):
            raise FeatureError(
                f"registry version {d['version']} does not match its definitions ({feature_set.version})"
            )
        return feature_set


def _fields(f: Feature) -> dict[str, Any]:
    """A feature's fields; ``of``, ``threshold`` and ``limit`` only when set, so older versions keep their hash."""
    d = dataclasses.asdict(f)
    for optional in ("of", "threshold", "limit"):
        if d[optional] is None:
            del d[optional]
    return d


HANDBOOK = FeatureSet()

#: fraudflow's model inputs (docs/MODEL.md): the handbook's 15 and the amount relative to the
#: customer's 30-day average, which shallow trees cannot build from the two columns themselves.
FRAUDFLOW = FeatureSet(
    (
        *HANDBOOK_FEATURES,
        Feature(
            "AMOUNT_TO_CUSTOMER_AVG_30DAY",
            "ratio",
            column=schema.TX_AMOUNT,
            of="CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
            description="the amount divided by the customer's mean amount over the last 30 days",
        ),
    ),
    "fraudflow",
)


def amount_spikes(ratio: str = "AMOUNT_TO_CUSTOMER_AVG_30DAY") -> tuple[Feature, ...]:
    """How often and how far a customer's amounts rose above its 30-day mean lately: counts over 1, 7
    and 14 days of its transactions above 2x and 3x (each as of that transaction: ``ratio``), the
    largest such ratio over 7 and 14 days."""
    counts = tuple(
        Feature(
            f"CUSTOMER_ID_NB_TX_ABOVE_{k}X_AVG_{w}DAY_WINDOW",
            "count_above",
            CUSTOMER,
            window_days=w,
            of=ratio,
            threshold=float(k),
            description=f"the customer's transactions of the last {w} days above {k}x its 30-day mean then",
        )
        for w in (1, 7, 14)
        for k in (2, 3)
    )
    maxima = tuple(
        Feature(
            f"CUSTOMER_ID_MAX_AMOUNT_TO_AVG_{w}DAY_WINDOW",
            "max",
            CUSTOMER,
            window_days=w,
            of=ratio,
            description=f"the largest amount-to-30-day-mean ratio of the customer's last {w} days",
        )
        for w in (7, 14)
    )
    return (*counts, *maxima)


def customer_baseline(window_days: int = 30, delay_days: int = 7) -> tuple[Feature, Feature]:
    """The customer's mean amount over a window that ends ``delay_days`` ago (which a fresh compromise
    has not inflated yet), and the amount's ratio to it."""
    mean = f"CUSTOMER_ID_AVG_AMOUNT_{window_days}DAY_WINDOW_{delay_days}DAYS_AGO"
    return (
        Feature(
            mean,
            "mean",
            CUSTOMER,
            schema.TX_AMOUNT,
            window_days,
            delay_days,
            description=f"the customer's mean amount over {window_days} days, {delay_days} days ago (0 when none)",
        ),
        Feature(
            f"AMOUNT_TO_CUSTOMER_AVG_{window_days}DAY_{delay_days}DAYS_AGO",
            "ratio",
            column=schema.TX_AMOUNT,
            of=mean,
            description="the amount divided by that mean (0 when it is 0)",
        ),
    )


#: The candidate successor of FRAUDFLOW (issue 16, docs/MODEL.md): its 16 inputs, the customer's
#: amount spikes (windows over the amount-to-mean ratio) and its baseline before the last week.
FRAUDFLOW2 = FeatureSet((*FRAUDFLOW.features, *amount_spikes(), *customer_baseline()), "fraudflow-2")
FEATURE_SETS = {"handbook": HANDBOOK, "fraudflow": FRAUDFLOW, "fraudflow-2": FRAUDFLOW2}


def terminal_known_frauds(window_days: int = 28, delay_days: int = 7) -> tuple[Feature, ...]:
    """What the terminal's known frauds say (labels ``delay_days`` late): how many over 14 and
    ``window_days`` days, how long ago the first and the last of them happened (a compromise
    running since then)."""
    window = f"{window_days} days, {delay_days} days ago"
    return (
        *(
            Feature(
                f"TERMINAL_ID_NB_FRAUD_{w}DAY_WINDOW",
                "sum",
                TERMINAL,
                schema.TX_FRAUD,
                w,
                delay_days,
                description=f"the terminal's known frauds over {w} days, {delay_days} days ago",
            )
            for w in (14, window_days)
        ),
        Feature(
            f"TERMINAL_ID_DAYS_SINCE_LAST_FRAUD_{window_days}DAY_WINDOW",
            "days_since_last_fraud",
            TERMINAL,
            schema.TX_FRAUD,
            window_days,
            delay_days,
            description=f"days since the terminal's last known fraud of {window} ({window_days + delay_days} if none)",
        ),
        Feature(
            f"TERMINAL_ID_DAYS_SINCE_FIRST_FRAUD_{window_days}DAY_WINDOW",
            "days_since_first_fraud",
            TERMINAL,
            schema.TX_FRAUD,
            window_days,
            delay_days,
            description=f"days since its first known fraud of {window} ({window_days + delay_days} if none)",
        ),
    )


#: The candidate chosen on the validation folds (issue 16, docs/MODEL.md section 4): FRAUDFLOW2's 26
#: inputs and the terminal's known frauds (counts over 14/28 days and the ages of the first and last,
#: labels 7 days late). The customer's spreads (std, z-score) and recent-to-baseline quotients were
#: tried too and left out: no gain on the validation folds.
FRAUDFLOW3 = FeatureSet((*FRAUDFLOW2.features, *terminal_known_frauds()), "fraudflow-3")
FEATURE_SETS["fraudflow-3"] = FRAUDFLOW3


def terminal_unexplained_frauds(
    spike: float = 2.0,
    limit: float = 220.0,
    window_days: int = 28,
    delay_days: int = 7,
    ratio: str = "AMOUNT_TO_CUSTOMER_AVG_30DAY",
) -> tuple[Feature, ...]:
    """The terminal's known frauds (labels ``delay_days`` late) over 14 and ``window_days`` days that
    the amount rules do not explain: an amount at most ``limit`` (the simulator's scenario 1 makes
    every amount above 220 a fraud) and at most ``spike`` times the customer's 30-day mean as it
    arrived (``ratio``; scenario 3 multiplies a compromised card's amounts by 5). What is left is
    mostly a compromised terminal's (scenario 2), which goes on for 28 days."""
    return tuple(
        Feature(
            f"TERMINAL_ID_NB_UNEXPLAINED_FRAUD_{spike:g}X_{w}DAY_WINDOW",
            "unexplained_frauds",
            TERMINAL,
            schema.TX_FRAUD,
            w,
            delay_days,
            of=ratio,
            threshold=spike,
            limit=limit,
            description=(
                f"the terminal's known frauds over {w} days, {delay_days} days ago, of amounts at most "
                f"{limit:g} and {spike:g}x the customer's 30-day mean"
            ),
        )
        for w in (14, window_days)
    )


def terminal_fraud_share(window_days: int = 28, delay_days: int = 7) -> Feature:
    """The share of the terminal's transactions that were known frauds since its first known fraud,
    within ``window_days`` days ending ``delay_days`` ago (labels that late)."""
    return Feature(
        f"TERMINAL_ID_FRAUD_SHARE_SINCE_FIRST_{window_days}DAY_WINDOW",
        "fraud_share_since_first_fraud",
        TERMINAL,
        schema.TX_FRAUD,
        window_days,
        delay_days,
        description=(
            f"the terminal's known frauds over its transactions since the first of them, over {window_days} "
            f"days, {delay_days} days ago (0 when none)"
        ),
    )


#: The candidate chosen on the validation folds (issue 16, docs/MODEL.md section 4.2): FRAUDFLOW3's 30
#: inputs, the terminal's known frauds the amount rules leave unexplained (amounts at most 220 and at
#: most 2x or 3x the customer's 30-day mean; over 14 and 28 days, 7 days ago) and its fraud share since
#: its first known fraud (over 28 and 14 days, 7 days ago). 36 inputs, 65 days of history.
FRAUDFLOW4 = FeatureSet(
    (
        *FRAUDFLOW3.features,
        *terminal_unexplained_frauds(2.0),
        *terminal_unexplained_frauds(3.0),
        terminal_fraud_share(28),
        terminal_fraud_share(14),
    ),
    "fraudflow-4",
)
FEATURE_SETS["fraudflow-4"] = FRAUDFLOW4
