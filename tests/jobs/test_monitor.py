"""fraudflow monitor: drift, alerts against the budget, data quality, live metrics, the HTML page, the CLI.

One small world (1,000 customers, 70 days) with a model trained on its newest mature split
(2018-05-13 .. 05-19: late enough that every 30-day window of its features is full). Each
scenario copies it and continues it by 7 days, unchanged or with every customer spending twice
as much from the first new day, then writes the prediction log of its last 14 days from the
model's real scores on the offline store's features (7 days before the continuation, whose labels
are mature, and the 7 new ones). The hand-built logs sit in lakes of their own.

The service's own rows (``tests/jobs/conftest.py``'s ``served_lake``) are not reused: its model
was trained on the world's 10th day, where the 30-day windows hold 10 days, so its features
"drift" on every later day of an unchanged world.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from fraudflow import Lake, WorldParams, generate
from fraudflow.features import FRAUDFLOW, build_features
from fraudflow.jobs import monitor_html
from fraudflow.jobs.monitor import LABELS_TABLE, TRUTH, MonitorError, Thresholds, monitor
from fraudflow.records import TxColumns
from fraudflow.simulate.changes import SpendingShift
from fraudflow.store import labels, offline, predictions
from fraudflow.training import metrics, model, registry, workflow

WORLD = WorldParams(n_customers=1000, n_terminals=2000, nb_days=70, radius=8.0, start_date=dt.date(2018, 4, 1))
NEW_DAYS = 7
FIRST_NEW = WORLD.start_date + dt.timedelta(days=WORLD.nb_days)
LOGGED = [FIRST_NEW + dt.timedelta(days=d) for d in range(-7, NEW_DAYS)]
AMOUNT_FEATURES = {
    "TX_AMOUNT",
    "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "AMOUNT_TO_CUSTOMER_AVG_30DAY",
}
FRAUDFLOW_EXE = Path(sys.executable).parent / "fraudflow"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor") / "world"
    generate(root, WORLD)
    build_features(root, FRAUDFLOW)
    workflow.train(Lake(root), params={"n_estimators": 30, "max_depth": 3})
    return root


def continued(world: Path, root: Path, amount: float = 1.0) -> Lake:
    """A copy of ``world`` continued by ``NEW_DAYS`` days (customers spending ``amount`` times as much
    from the first), its features computed, and the model's answers on ``LOGGED`` in the prediction log."""
    shutil.copytree(world, root)
    lake = Lake(root)
    changes = (SpendingShift(WORLD.nb_days, amount=amount),) if amount != 1.0 else ()
    generate(
        lake, dataclasses.replace(WORLD, nb_days=WORLD.nb_days + NEW_DAYS, changes=changes), from_day=WORLD.nb_days
    )
    build_features(lake, FRAUDFLOW, from_date=FIRST_NEW)
    serve(lake, LOGGED)
    return lake


def serve(lake: Lake, days: list[dt.date]) -> None:
    """Log the model's answers on ``days``, a batch a day served at the day's end (as a day of scoring would)."""
    model_id = model.latest_model(lake)
    fitted = model.load(lake, model_id)
    threshold = registry.alert_threshold(lake, model_id)
    assert threshold is not None
    with predictions.PredictionLog(lake) as log:
        for day in days:
            txs = lake.read_partitions("transactions", [day]).sort_by("TRANSACTION_ID")
            features = offline.read_rows(lake, day, day)
            assert features is not None
            features = features.sort_by("TRANSACTION_ID")
            assert features["TRANSACTION_ID"].equals(txs["TRANSACTION_ID"])
            columns = TxColumns(
                txs["TX_DATETIME"].to_numpy().astype("datetime64[us]").astype(np.int64),
                txs["TRANSACTION_ID"].to_numpy(),
                txs["CUSTOMER_ID"].to_numpy(),
                txs["TERMINAL_ID"].to_numpy(),
                txs["TX_AMOUNT"].to_numpy(),
            )
            vectors = np.column_stack([features[f].to_numpy().astype(np.float64) for f in fitted.features])
            log.append(
                predictions.PredictionBatch(
                    columns,
                    fitted.predict(features),
                    threshold,
                    model_id,
                    fitted.features,
                    vectors,
                    dt.datetime.combine(day + dt.timedelta(days=1), dt.time()),
                )
            )


@pytest.fixture(scope="module")
def unchanged(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return continued(world, tmp_path_factory.mktemp("unchanged") / "lake")


@pytest.fixture(scope="module")
def changed(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return continued(world, tmp_path_factory.mktemp("changed") / "lake", amount=2.0)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``fraudflow`` as installed (the console script)."""
    return subprocess.run([str(FRAUDFLOW_EXE), *args], capture_output=True, text=True, timeout=300)


def flagged_features(lake: Lake) -> set[str]:
    return {f.feature for d in monitor(lake).days if d.drift for f in d.drift.features if f.flagged}


# (a) and (b): drift -----------------------------------------------------------------------------
def test_an_unchanged_continuation_flags_no_drift(unchanged: Lake) -> None:
    report = monitor(unchanged)
    assert [d.day for d in report.days] == [d.isoformat() for d in LOGGED]
    complete = [d for d in report.days if d.drift and d.drift.complete]
    assert [d.day for d in complete] == [d.isoformat() for d in LOGGED[6:]]  # a full week of log behind them
    assert len(complete[0].drift.features) == len(FRAUDFLOW.names)  # type: ignore[union-attr]
    assert not flagged_features(unchanged)
    # no flag: the stored threshold, chosen on every transaction of the model's test week, alerts
    # about the budget's 100 cards a day here (the days' mix differs from that week's a little)
    assert report.flags == []
    assert all(70 < d.alerted_cards < 140 for d in report.days)
    # the latest report kept in the lake, for the analyst desk
    assert unchanged.read_json(unchanged.path("monitor", "report.json"))["flags"] == []
    run = run_cli("monitor", "--data", str(unchanged.root))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no threshold crossed" in run.stdout


def test_a_spending_shift_flags_the_amount_features_and_exits_3(changed: Lake) -> None:
    report = monitor(changed)
    flagged = flagged_features(changed)
    assert {"TX_AMOUNT", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW", "AMOUNT_TO_CUSTOMER_AVG_30DAY"} <= flagged
    assert flagged <= AMOUNT_FEATURES
    # the window of the days before the change does not drift; the one wholly after it does
    by_day = {d.day: d for d in report.days}
    before, after = by_day[LOGGED[6].isoformat()].drift, by_day[LOGGED[-1].isoformat()].drift
    assert before is not None and after is not None
    assert not any(f.flagged for f in before.features)
    assert {f.feature for f in after.features if f.flagged} >= {"TX_AMOUNT", "AMOUNT_TO_CUSTOMER_AVG_30DAY"}
    run = run_cli("monitor", "--data", str(changed.root))
    assert run.returncode == 3, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("drift of TX_AMOUNT: PSI")]
    assert len(lines) == 1 and "> 0.2" in lines[0]
    loose = run_cli("monitor", "--data", str(changed.root), "--psi", "100", "--ks", "1")
    assert "drift of" not in loose.stdout


# (c): alerts against the budget ---------------------------------------------------------------
def fake_model(lake: Lake, model_id: str, cards_per_day: float | None) -> None:
    """A model folder with only the files monitor reads: its budget (if any) and test metrics."""
    meta: dict[str, object] = {"model_id": model_id, "features": ["F"]}
    if cards_per_day is not None:
        meta["alert_budget"] = {
            "cards_per_day": cards_per_day,
            "threshold": 0.5,
            "alerted_cards_per_day": cards_per_day,
            "first_day": "2020-01-01",
            "last_day": "2020-01-07",
        }
    lake.write_json(lake.path("models", model_id, model.METADATA_FILE), meta)
    lake.write_json(lake.path("models", model_id, model.METRICS_FILE), {"card_precision_at_100": 0.3})


def answer(
    tx_id: int,
    when: dt.datetime,
    customer: int,
    score: float,
    served: dt.datetime,
    model_id: str = "m3",
    **feature: float,
) -> predictions.Prediction:
    from fraudflow.records import Transaction

    return predictions.Prediction(
        Transaction(tx_id, when, customer, 1, 10.0),
        score,
        score >= 0.5,
        0.5,
        model_id,
        feature or {"F": 1.0},
        served,
    )


def day_of_answers(
    day: dt.date, cards: list[int], scores: list[float], first_id: int, model_id: str
) -> list[predictions.Prediction]:
    at = dt.datetime.combine(day, dt.time(12))
    served = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    return [
        answer(first_id + i, at + dt.timedelta(seconds=i), card, score, served, model_id)
        for i, (card, score) in enumerate(zip(cards, scores, strict=True))
    ]


def test_alerts_per_day_against_the_models_budget(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    fake_model(lake, "m3", 3)
    fake_model(lake, "m-old", None)  # saved before budgets: 100 cards a day
    day1, day2, day3 = dt.date(2020, 3, 1), dt.date(2020, 3, 2), dt.date(2020, 3, 3)
    rows = (
        # card 1 alerted three times, card 2 once, card 3 not: 4 alerts, 2 cards (budget 3)
        day_of_answers(day1, [1, 1, 1, 2, 3], [0.9, 0.6, 0.5, 0.7, 0.2], 100, "m3")
        # 5 cards alerted: over 3 x 1.5
        + day_of_answers(day2, [1, 2, 3, 4, 5, 6], [0.9, 0.9, 0.9, 0.9, 0.9, 0.1], 200, "m3")
        # the same 5 cards under a model without a stored budget: 100
        + day_of_answers(day3, [1, 2, 3, 4, 5], [0.9] * 5, 300, "m-old")
    )
    predictions.write_missing(lake, rows)
    report = monitor(lake)
    got = [(d.day, d.transactions, d.cards, d.alerts, d.alerted_cards, d.budget, d.model_id) for d in report.days]
    assert got == [
        ("2020-03-01", 5, 3, 4, 2, 3.0, "m3"),
        ("2020-03-02", 6, 6, 5, 5, 3.0, "m3"),
        ("2020-03-03", 5, 5, 5, 5, 100.0, "m-old"),
    ]
    [flag] = report.flags
    assert flag.check == "alerts" and flag.days == ["2020-03-02"] and flag.worst == 5
    assert "alerted cards a day 5 > 4.5 (budget 3 x 1.5) on 2020-03-02" in flag.message
    assert not monitor(lake, thresholds=Thresholds(alert_tolerance=1.0)).flags  # 5 <= 3 x 2
    assert [d.day for d in monitor(lake, days=2).days] == ["2020-03-02", "2020-03-03"]
    assert report.days[0].scores.histogram == [0, 0, 1, 0, 0, 1, 1, 1, 0, 1]


# (d): live metrics ----------------------------------------------------------------------------
def logged_arrays(lake: Lake, days: list[dt.date]) -> tuple[np.ndarray, ...]:
    log = predictions.read(lake, days[0], days[-1])
    truth = lake.read_partitions("transactions", days).sort_by("TRANSACTION_ID")
    ids = log["TRANSACTION_ID"].to_numpy()
    fraud = truth["TX_FRAUD"].to_numpy()[np.searchsorted(truth["TRANSACTION_ID"].to_numpy(), ids)]
    day = log["tx_date"].to_numpy().astype("datetime64[D]")
    return day, log["CUSTOMER_ID"].to_numpy(), fraud, log["SCORE"].to_numpy(), ids


def test_live_metrics_are_the_training_metrics_on_the_mature_days(unchanged: Lake, tmp_path: Path) -> None:
    mature = LOGGED[:7]  # as of the last day, those at least 7 days older
    day, customers, fraud, scores, ids = logged_arrays(unchanged, mature)
    expected = metrics.performance(day, customers, fraud, scores)
    report = monitor(unchanged)
    assert report.labels == TRUTH
    live = report.live
    assert live is not None and (live.first, live.last, live.days) == (mature[0].isoformat(), mature[-1].isoformat(), 7)
    assert (live.auc_roc, live.average_precision, live.card_precision, live.card_precision_bound) == (
        expected.auc_roc,
        expected.average_precision,
        expected.card_precision,
        expected.card_precision_bound,
    )
    assert [d.live.card_precision for d in report.days if d.live] == expected.card_precision_per_day
    assert [d.mature for d in report.days] == [True] * 7 + [False] * 7
    one = day == np.datetime64(mature[2])
    alone = metrics.performance(day[one], customers[one], fraud[one], scores[one])
    assert report.days[2].live is not None and report.days[2].live.auc_roc == alone.auc_roc
    assert len(report.weeks) == 1 and report.weeks[0].card_precision == expected.card_precision
    assert report.label_lag is None  # no labels table: the truth has no arrival times

    # a labels table: its labels as known now, unlabelled transactions genuine
    copy = Lake(shutil.copytree(unchanged.root, tmp_path / "lake"))
    frauds = ids[fraud == 1]
    known = frauds[: len(frauds) // 2]  # half the frauds reported, each 3 days after its transaction
    times = predictions.read(copy, mature[0], mature[-1])
    when = dict(zip(times["TRANSACTION_ID"].to_pylist(), times["TX_DATETIME"].to_pylist(), strict=True))
    labels.append(
        copy,
        labels.labels_table(
            known.tolist(), [1] * len(known), [when[i] + dt.timedelta(days=3) for i in known], "chargeback"
        ),
    )
    # an analyst confirms some of them later: the lag is the first fraud label's
    labels.append(
        copy,
        labels.labels_table(
            known[:5].tolist(), [1] * 5, [when[i] + dt.timedelta(days=6) for i in known[:5]], "analyst"
        ),
    )
    labelled = np.isin(ids, known).astype(np.int64)
    expected = metrics.performance(day, customers, labelled, scores)
    report = monitor(copy)
    assert report.labels == LABELS_TABLE and report.live is not None
    assert (report.live.average_precision, report.live.card_precision) == (
        expected.average_precision,
        expected.card_precision,
    )
    assert report.label_lag is not None and report.label_lag.frauds == len(known)
    assert (report.label_lag.p50, report.label_lag.max) == (3.0, 3.0)


# (e): data quality ------------------------------------------------------------------------------
def test_data_quality_counts_a_duplicate_a_null_and_a_late_transaction(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    fake_model(lake, "m3", 3)
    day = dt.date(2020, 3, 1)
    noon = dt.datetime.combine(day, dt.time(12))
    first = day_of_answers(day, [1, 2, 3], [0.1, 0.2, 0.3], 1, "m3")  # 12:00:00 .. 12:00:02, served at midnight
    predictions.write_missing(lake, first)
    later = dt.datetime.combine(day, dt.time(23, 59)) + dt.timedelta(days=1)
    predictions.write_missing(
        lake,
        [
            # 11 minutes older than the newest served before it: late (10 minutes allowed)
            answer(10, noon - dt.timedelta(minutes=11), 4, 0.1, later),
            # 9 minutes: not late
            answer(11, noon - dt.timedelta(minutes=9), 5, 0.1, later),
            # its vector lacks F (another model's inputs): a null
            answer(12, noon + dt.timedelta(hours=1), 6, 0.1, later, G=2.0),
        ],
    )
    predictions.log_table(lake).append(predictions.predictions_table(first[:1]))  # the same answer committed again
    report = monitor(lake)
    [quality] = [d.quality for d in report.days]
    assert (quality.duplicates, quality.late, quality.nulls, quality.out_of_range) == (
        1,
        1,
        {"FEATURES.F": 1},  # not G: no row was served by a model taking it
        {},
    )
    assert report.days[0].transactions == 6
    assert sorted(f.subject for f in report.flags) == ["duplicate rows", "late transactions", "null FEATURES.F"]
    assert not monitor(lake, thresholds=Thresholds(late_after_seconds=700)).days[0].quality.late


def test_out_of_range_values(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    day = dt.date(2020, 3, 1)
    rows = day_of_answers(day, [1, 2, 3], [0.1, 0.2, 0.3], 1, "m3")
    table = predictions.predictions_table(rows)
    import pyarrow as pa

    amounts = pa.array([-5.0, 10.0, 10.0])
    alerts = pa.array([False, True, False])  # 0.2 < 0.5 but alerted
    served = pa.array([dt.datetime(2020, 3, 1, 11), *table["SERVED_AT"].to_pylist()[1:]], pa.timestamp("us"))
    table = table.set_column(table.schema.get_field_index("TX_AMOUNT"), "TX_AMOUNT", amounts)
    table = table.set_column(table.schema.get_field_index("ALERT"), "ALERT", alerts)
    table = table.set_column(table.schema.get_field_index("SERVED_AT"), "SERVED_AT", served)
    predictions.log_table(lake).append(table)
    [day_report] = monitor(lake).days
    assert day_report.quality.out_of_range == {
        "negative or non-finite TX_AMOUNT": 1,
        "ALERT other than SCORE >= THRESHOLD": 1,
        "TX_DATETIME after SERVED_AT": 1,
    }


# (f): the page and the command line -------------------------------------------------------------
class Page(HTMLParser):
    """The charts' series, the drift cells and the flags of a monitor page."""

    def __init__(self) -> None:
        super().__init__()
        self.series: dict[tuple[str, str], list[float | None]] = {}
        self.cells: list[dict[str, str | None]] = []
        self.flags: list[str] = []
        self.chart = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg":
            self.chart = a["data-chart"] or ""
        elif tag == "polyline":
            self.series[(self.chart, a["data-series"] or "")] = json.loads(a["data-values"] or "null")
        elif tag == "rect" and "data-feature" in a:
            self.cells.append(a)
        elif tag == "li" and "data-flag" in a:
            self.flags.append(a["data-flag"] or "")


def test_the_html_page_holds_the_time_series(changed: Lake, tmp_path: Path) -> None:
    page_file = tmp_path / "monitor.html"
    run = run_cli("monitor", "--data", str(changed.root), "--html", str(page_file), "--json")
    assert run.returncode == 3
    data = json.loads(run.stdout)
    assert data["ok"] is False and {f["subject"] for f in data["flags"]} >= {"TX_AMOUNT"}
    report = monitor(changed)
    page = Page()
    page.feed(page_file.read_text())
    assert page.series[("volume", "transactions")] == [d.transactions for d in report.days]
    assert page.series[("alerts", "alerted_cards")] == [d.alerted_cards for d in report.days]
    assert page.series[("alerts", "budget")] == [100.0] * len(report.days)
    assert page.series[("live", "card_precision_at_100")] == [
        d.live.card_precision if d.live else None for d in report.days
    ]
    assert page.series[("scores", "p99")] == [d.scores.quantiles["p99"] for d in report.days]
    flagged = {(c["data-feature"], c["data-day"]) for c in page.cells if c["data-flagged"] == "true"}
    assert ("TX_AMOUNT", LOGGED[-1].isoformat()) in flagged
    assert flagged == {(f.feature, d.day) for d in report.days if d.drift for f in d.drift.features if f.flagged}
    assert len(page.flags) == len(report.flags) and "drift_psi" in page.flags


def test_the_page_marks_the_days_the_serving_model_changed(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    fake_model(lake, "m3", 3)
    fake_model(lake, "m4", 3)
    days = [dt.date(2020, 3, 1) + dt.timedelta(days=i) for i in range(3)]
    rows = [*day_of_answers(days[0], [1], [0.1], 1, "m3"), *day_of_answers(days[1], [1], [0.1], 2, "m4")]
    predictions.write_missing(lake, [*rows, *day_of_answers(days[2], [1], [0.1], 3, "m4")])
    html = monitor_html.render(monitor(lake))
    assert html.count('data-marker="model"') == 4  # one per line chart, on the day m4 took over
    assert html.count('data-marker="model" data-day="2020-03-02" data-model="m4"') == 4
    assert "No registry decision yet" in html


def test_no_prediction_log_is_one_line_that_says_how_to_get_one(world: Path) -> None:
    with pytest.raises(MonitorError, match="no prediction log"):
        monitor(Lake(world))
    run = run_cli("monitor", "--data", str(world))
    assert run.returncode == 2
    assert run.stdout == "" and run.stderr.count("\n") == 1 and "fraudflow serve" in run.stderr


def test_psi_and_ks_by_their_definitions() -> None:
    from scipy.stats import ks_2samp  # scikit-learn's own dependency

    from fraudflow.jobs import drift

    rng = np.random.default_rng(0)
    reference, sample = rng.normal(size=500), rng.normal(0.3, 1.2, size=300)
    ref = drift.Reference.of(reference)
    assert drift.ks(ref, sample) == pytest.approx(ks_2samp(reference, sample).statistic, abs=1e-12)
    assert np.allclose(ref.shares, 0.1, atol=0.002) and len(ref.edges) == 9  # deciles
    # a feature that is 0 nine times in ten: the deciles merge into edges 0 and 0.5 (interpolated)
    zeros = drift.Reference.of(np.r_[np.zeros(90), np.full(10, 5.0)])
    assert zeros.edges == pytest.approx([0.0, 0.5]) and zeros.shares.tolist() == [0.9, 0.0, 0.1]
    half = np.r_[np.zeros(50), np.full(50, 5.0)]  # shares 0.5, 0, 0.5; the empty bin floored at EPSILON
    expected = (0.5 - 0.9) * np.log(0.5 / 0.9) + 0.0 + (0.5 - 0.1) * np.log(0.5 / 0.1)
    assert drift.psi(zeros, half) == pytest.approx(expected, rel=1e-12)
    on_edge = (1 - 0.9) * np.log(1 / 0.9) + (drift.EPSILON - 0.1) * np.log(drift.EPSILON / 0.1)
    assert drift.psi(zeros, np.zeros(10)) == pytest.approx(on_edge, rel=1e-12)  # 0 is an edge: the bin <= 0
    assert drift.psi(ref, reference) < 1e-3 and drift.ks(ref, reference) == 0.0
