"""fraudflow operate: days scored in arrival order with their chargebacks, features, monitor, state,
restarts and days run twice, the weekly gate, a real service, the command line.

One small world (300 customers, 60 days: the newest mature split starts on day 33, so its 30-day
windows are full) with a model trained on that split; each test copies it and operates a few days.
The changed world's test has its own, larger one (1,500 customers), where CP@100 means something.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from fraudflow import Lake, WorldParams, generate, schema
from fraudflow.cli import app
from fraudflow.features import FRAUDFLOW, build_features
from fraudflow.jobs import operate as operating
from fraudflow.jobs.operate import OPERATE_DAY, DayReport, day_reports, operate, read_state
from fraudflow.jobs.operate_scoring import InProcess
from fraudflow.serving.served_log import ServedLog
from fraudflow.simulate.changes import UnderThresholdFrauds
from fraudflow.store import labels, offline, predictions
from fraudflow.training import model, registry, workflow
from tests.serving.conftest import API_KEY, start_server

WORLD = WorldParams(n_customers=300, n_terminals=500, nb_days=60, radius=10.0, start_date=dt.date(2018, 4, 1))
FIRST = WORLD.start_date + dt.timedelta(days=WORLD.nb_days)  # the first operated day
WEEK = dt.timedelta(days=7)
runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("operate") / "world"
    generate(root, WORLD)
    build_features(root, FRAUDFLOW)
    workflow.train(Lake(root), params={"n_estimators": 30, "max_depth": 3})
    return root


@pytest.fixture
def lake(world: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "lake"
    shutil.copytree(world, copy)
    return copy


def days_from(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]


def lake_files(root: Path) -> dict[str, bytes]:
    """Every file of the lake but the online store's (SQLite rewrites its pages as it likes)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("online.sqlite")
    }


def contents(root: Path) -> dict[str, object]:
    """What the lake holds, by table, without the times of this run (when answers were served, features written)."""
    lake = Lake(root)
    logged = predictions.read(lake).drop_columns([predictions.SERVED_AT])
    every = labels.read(lake, history=True)
    return {
        "transactions": lake.read_partitions("transactions", lake.partitions("transactions")),
        "features": lake.read_partitions(offline.TABLE, lake.partitions(offline.TABLE)).drop_columns(
            [offline.WRITE_TIME]
        ),
        "predictions": logged,
        "labels": every.sort_by([(schema.TRANSACTION_ID, "ascending"), (labels.LABEL_TIME, "ascending")]),
        "state": read_state(lake),
        "world": lake.read_json(lake.path("world", "world.json")),
    }


def raw_prediction_rows(root: Path) -> int:
    dataset = predictions.log_table(Lake(root)).dataset()
    assert dataset is not None
    return int(dataset.count_rows())


# a few days in process -------------------------------------------------------------------------
def test_days_in_process_score_every_transaction_deliver_chargebacks_and_record_the_day(lake: Path) -> None:
    shown: list[DayReport] = []
    report = operate(lake, 3, on_day=shown.append)
    lk = Lake(lake)
    operated = days_from(FIRST, 3)
    assert [d.day for d in report.days] == [d.isoformat() for d in operated] == [d.day for d in shown]
    assert report.last_day == operated[-1].isoformat()

    # every transaction of the new days answered once, by the model in service
    txs = lk.read_partitions("transactions", operated)
    logged = predictions.read(lk)
    assert sorted(logged[schema.TRANSACTION_ID].to_pylist()) == sorted(txs[schema.TRANSACTION_ID].to_pylist())
    assert raw_prediction_rows(lake) == txs.num_rows
    served = registry.production(lk)
    assert served is not None and set(logged[predictions.MODEL_ID].to_pylist()) == {served}
    assert registry.decisions(lk)[0].action == "promote"  # the model in service made production

    # chargebacks: every fraud 7 days old by the end of the last day, at its simulated arrival
    known = labels.read(lk, history=True)
    assert set(known[labels.SOURCE].to_pylist()) == {operating.CHARGEBACK}
    before = [d for d in lk.partitions("transactions") if d <= operated[-1] - WEEK]
    history = lk.read_partitions("transactions", before)
    frauds = history.filter(pc.equal(history[schema.TX_FRAUD], 1))
    assert sorted(known[schema.TRANSACTION_ID].to_pylist()) == sorted(frauds[schema.TRANSACTION_ID].to_pylist())
    arrived = dict(zip(known[schema.TRANSACTION_ID].to_pylist(), known[labels.LABEL_TIME].to_pylist(), strict=True))
    for tx, when in zip(frauds[schema.TRANSACTION_ID].to_pylist(), frauds[schema.TX_DATETIME].to_pylist(), strict=True):
        assert arrived[tx] == when + WEEK
    delivered = sum(d.chargebacks for d in report.days)
    week_ago = lk.read_partitions("transactions", [d - WEEK for d in operated])
    assert delivered == pc.sum(week_ago[schema.TX_FRAUD]).as_py() > 0

    # the monitor's figures of each day, recorded with the state
    for day, one in zip(operated, report.days, strict=True):
        count = sum(1 for t in txs[schema.TX_DATETIME].to_pylist() if t.date() == day)
        assert one.transactions == count and one.model_id == served and one.budget == 100.0
        assert 0 < one.alerted_cards <= one.alerts and one.gate is None and one.live_cp is None
    assert [d.to_json() for d in day_reports(lk)] == [d.to_json() for d in report.days]
    state = read_state(lk)
    assert state == operating.State(WORLD.nb_days, WORLD.nb_days + 2, backfilled=True, in_progress=None)


def assert_served_features_equal_batch(root: Path, days: list[dt.date]) -> None:
    """The logged vectors of ``days`` equal the offline store's: transactions in arrival order, each
    chargeback delivered before the first transaction at or after its arrival (the terminal risk windows
    end 7 days back, to the second)."""
    lk = Lake(root)
    logged = predictions.read(lk, days[0], days[-1])
    batch = lk.read_partitions(offline.TABLE, days)
    by_id = {tx: i for i, tx in enumerate(batch[schema.TRANSACTION_ID].to_pylist())}
    rows = [by_id[tx] for tx in logged[schema.TRANSACTION_ID].to_pylist()]
    assert len(rows) == batch.num_rows
    for name in model.load(lk, str(logged[predictions.MODEL_ID][0])).features:
        online = pc.struct_field(logged[predictions.FEATURES], name).to_numpy(zero_copy_only=False)
        np.testing.assert_allclose(online, batch[name].to_numpy()[rows], rtol=0, atol=1e-9, err_msg=name)


def test_a_week_on_the_served_features_equal_batch_and_live_metrics_come_once_mature(lake: Path) -> None:
    report = operate(lake, 8, retrain_every=100)
    # the 8th day's risk windows hold the 1st day's frauds: known only from the chargebacks operate delivered
    # (the earlier days' labels came with the online store's loading)
    assert_served_features_equal_batch(lake, days_from(FIRST, 8))
    last = report.days[-1]
    assert last.live_day == FIRST.isoformat() and last.live_cp is not None and 0 <= last.live_cp <= 1
    assert all(d.live_cp is None for d in report.days[:-1])
    assert f"live CP@100 {last.live_cp:.3f} ({FIRST})" in last.line()


# restarts --------------------------------------------------------------------------------------
def test_a_day_run_twice_changes_nothing(lake: Path) -> None:
    operate(lake, 2, retrain_every=2)  # day 2: a challenger trained and gated
    before = lake_files(lake)
    lk = Lake(lake)
    state = read_state(lk)
    assert state is not None
    operating.write_state(lk, dataclasses.replace(state, done_through=state.done_through - 1))  # as if killed
    again = operate(lake, 2, retrain_every=2)
    assert [d.day for d in again.days] == [days_from(FIRST, 2)[-1].isoformat()]
    assert stored(lake_files(lake)) == stored(before)  # no row, model, decision or label added; the same state


def test_a_restart_completes_a_day_cut_short_without_duplicates(
    lake: Path, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(world, reference)
    operate(reference, 3)

    calls = []

    def killed_on_day_2(self: InProcess, day: dt.date, ids: np.ndarray) -> None:
        calls.append(day)
        if len(calls) == 2:  # the day scored and its chargebacks recorded, its answers not yet in the log:
            self.scorer.served_log = self.log = ServedLog(self.lake)  # lost with the process
            raise KeyboardInterrupt
        original(self, day, ids)

    original = InProcess.end_day
    monkeypatch.setattr(InProcess, "end_day", killed_on_day_2)
    with pytest.raises(KeyboardInterrupt):
        operate(lake, 3)
    state = read_state(Lake(lake))
    assert state is not None and state.in_progress == WORLD.nb_days + 1 and state.done_through == WORLD.nb_days
    monkeypatch.setattr(InProcess, "end_day", original)

    resumed = operate(lake, 3)
    assert [d.day for d in resumed.days] == [d.isoformat() for d in days_from(FIRST, 3)[1:]]
    assert contents(lake) == contents(reference)
    assert raw_prediction_rows(lake) == raw_prediction_rows(reference)


# the weekly gate -------------------------------------------------------------------------------
def test_the_weekly_challenger_is_gated_and_a_promoted_one_serves_the_next_day(lake: Path) -> None:
    report = operate(lake, 3, retrain_every=2, margins=registry.Margins(-1.0, -1.0))  # any challenger passes
    lk = Lake(lake)
    first_model = report.days[0].model_id
    gate = report.days[1].gate
    assert gate is not None and gate.promoted and gate.challenger not in (None, first_model)
    assert report.days[0].gate is None and report.days[2].gate is None
    decision = registry.decisions(lk)[-1]
    assert (decision.action, decision.from_model, decision.to_model, decision.changed) == (
        "gate",
        first_model,
        gate.challenger,
        True,
    )
    assert set(decision.metrics) == {"champion", "challenger"} and decision.week is not None
    meta = lk.read_json(lk.path("models", str(gate.challenger), model.METADATA_FILE))
    assert meta[OPERATE_DAY] == days_from(FIRST, 2)[-1].isoformat()
    assert meta["params"]["n_estimators"] == 30  # the champion's parameters
    logged = predictions.read(lk)
    third = pc.equal(logged[schema.PARTITION_COLUMN], pa.scalar(days_from(FIRST, 3)[-1], pa.date32()))
    assert set(logged.filter(third)[predictions.MODEL_ID].to_pylist()) == {gate.challenger}
    assert report.days[2].model_id == gate.challenger and "gate: PROMOTED" in report.days[1].line()


def test_a_challenger_short_of_the_margins_becomes_the_candidate(lake: Path) -> None:
    report = operate(lake, 1, retrain_every=1, margins=registry.Margins(1.0, 1.0))  # none can gain 1.0
    gate = report.days[0].gate
    assert gate is not None and gate.challenger is not None and not gate.promoted
    assert gate.reason.startswith("short of the margins")
    assert registry.aliases(Lake(lake))["candidate"] == gate.challenger
    assert registry.production(Lake(lake)) == report.days[0].model_id


# a world that changes -------------------------------------------------------------------------
#: a world of 1,500 cards: the 100 a day CP@100 ranks are a fifteenth of them (on 300 cards they are
#: a third, and its ranking falls day after day whichever model serves)
CHANGING = dataclasses.replace(WORLD, n_customers=1500, n_terminals=3000, radius=8.0)  # its days are WORLD's
#: new fraud from its first day after the 60: 30 cards a day (2% of them) compromised for 14 days,
#: 80% of their transactions given amounts just under the amount rule's threshold (220)
CHANGE = UnderThresholdFrauds(CHANGING.nb_days, customers=30, share=0.8)
#: the change's first days, in the lake before operation begins: the newest split whose labels are
#: mature starts 27 days before a gate's day, so the first challenger trained on changed days only
#: comes 28 days into the change (26 here, and the gate on operation's 2nd day)
CHANGED_DAYS = 26


@pytest.fixture
def changed_lake(tmp_path: Path) -> Path:
    """The 1,500-card world with a model trained on its newest mature split, then the change's first days."""
    root = tmp_path / "changed"
    generate(root, CHANGING)
    build_features(root, FRAUDFLOW)
    workflow.train(Lake(root), params={"n_estimators": 30, "max_depth": 3})
    changed = dataclasses.replace(CHANGING, nb_days=CHANGING.nb_days + CHANGED_DAYS, changes=(CHANGE,))
    generate(root, changed, from_day=CHANGING.nb_days)
    build_features(root, FRAUDFLOW, from_date=FIRST)
    return root


@pytest.mark.slow
def test_after_a_change_a_promoted_challenger_recovers_the_live_metrics(changed_lake: Path) -> None:
    """The model trained before the change meets the new fraud; the gate promotes a challenger trained
    on changed days, and the live CP@100 and AP of the days it serves beat the champion's of the days
    before (0.84-1.00 against 0.49-0.53, AP 0.95 against 0.42-0.44; without the promotion the
    champion's next days fall to 0.42-0.51, AP 0.43-0.46).
    """
    lake = changed_lake
    # the world goes on changed (the change is recorded with it); one gate, on the 2nd day
    days = operate(lake, 2, retrain_every=2).days
    days += operate(lake, 11, retrain_every=99).days  # the same run, 9 days further, without another gate
    lk = Lake(lake)

    champion, gate = days[0].model_id, days[1].gate
    assert gate is not None and gate.promoted and gate.challenger not in (None, champion)
    trained = lk.read_json(lk.path("models", str(gate.challenger), model.METADATA_FILE))
    assert dt.date.fromisoformat(trained["train_start"]) >= FIRST  # on days of the changed world only
    assert [d.model_id for d in days[:4]] == [champion, champion, gate.challenger, gate.challenger]

    # each day's live figures come 7 days later, once its labels are mature: the champion's two days,
    # then the challenger's first two (None: no fraud that day)
    assert [d.live_day for d in days[7:]] == [d.day for d in days[:4]]
    before_cp = [d.live_cp or 0.0 for d in days[7:9]]
    after_cp = [d.live_cp or 0.0 for d in days[9:11]]
    assert min(after_cp) > max(before_cp) + 0.2 and min(before_cp) > 0, (before_cp, after_cp)
    before_ap = [d.live_ap or 0.0 for d in days[7:9]]
    after_ap = [d.live_ap or 0.0 for d in days[9:11]]
    assert min(after_ap) > max(before_ap) + 0.2 and min(before_ap) > 0, (before_ap, after_ap)
    # the champion alerted several times the budget's cards; the challenger keeps within it
    assert all(d.budget is not None and d.alerted_cards > 4 * d.budget for d in days[:2])
    assert all(d.budget is not None and d.alerted_cards <= d.budget for d in days[2:4])


# through a service -----------------------------------------------------------------------------
@pytest.fixture
def service_lake(lake: Path) -> Iterator[tuple[Path, str]]:
    server = start_server(lake, api_key=API_KEY, options=["--production-poll", "0.5"])
    yield lake, server.url
    server.stop()


def test_through_a_running_service(service_lake: tuple[Path, str]) -> None:
    root, url = service_lake
    report = operate(root, 3, url=url, api_key=API_KEY, retrain_every=2, margins=registry.Margins(-1.0, -1.0))
    lk = Lake(root)
    operated = days_from(FIRST, 3)
    txs = lk.read_partitions("transactions", operated)
    logged = predictions.read(lk)
    assert sorted(logged[schema.TRANSACTION_ID].to_pylist()) == sorted(txs[schema.TRANSACTION_ID].to_pylist())
    # the service took the promoted challenger for the last day
    gate = report.days[1].gate
    assert gate is not None and gate.promoted
    third = pc.equal(logged[schema.PARTITION_COLUMN], pa.scalar(operated[-1], pa.date32()))
    assert set(logged.filter(third)[predictions.MODEL_ID].to_pylist()) == {gate.challenger}
    assert_served_features_equal_batch(root, operated)  # the chargebacks reached it in time
    # chargebacks in the lake at their simulated arrival (the service also records what it was sent, as it arrived)
    known = labels.read(lk, history=True)
    chargebacks = known.filter(pc.equal(known[labels.SOURCE], operating.CHARGEBACK))
    week_ago = lk.read_partitions("transactions", [d - WEEK for d in operated])
    frauds = week_ago.filter(pc.equal(week_ago[schema.TX_FRAUD], 1))
    sent = set(frauds[schema.TRANSACTION_ID].to_pylist())
    assert sent <= set(chargebacks[schema.TRANSACTION_ID].to_pylist())
    api = known.filter(pc.equal(known[labels.SOURCE], "api"))
    assert set(api[schema.TRANSACTION_ID].to_pylist()) == sent

    # the last day run again through the service: its answers, its chargebacks posted again, nothing added
    before = lake_files(root)
    state = read_state(lk)
    assert state is not None
    operating.write_state(lk, dataclasses.replace(state, done_through=state.done_through - 1))  # as if killed
    again = operate(root, 3, url=url, api_key=API_KEY, retrain_every=2, margins=registry.Margins(-1.0, -1.0))
    assert [d.day for d in again.days] == [operated[-1].isoformat()] and again.days[0].chargebacks > 0
    assert stored(lake_files(root)) == stored(before)

    assert_a_label_posted_again_is_recorded_once(lk, url, txs[schema.TRANSACTION_ID].to_pylist()[-2:])


def assert_a_label_posted_again_is_recorded_once(lake: Lake, url: str, ids: list[int]) -> None:
    """Labels of ``ids`` (transactions without any) posted to the service at ``url``: the same label
    twice (a retried request) is one row; a change of it, or the same value again after it changed,
    is recorded; a label another process recorded (the `labels` command) is taken into account."""
    first, second = ids

    def post(*pairs: tuple[int, int]) -> None:
        body = {"labels": [{"TRANSACTION_ID": i, "TX_FRAUD": f} for i, f in pairs]}
        answer = httpx.post(f"{url}/v1/labels", json=body, headers={"X-API-Key": API_KEY}, timeout=30)
        assert answer.status_code == 200 and answer.json() == {"accepted": len(pairs)}

    def recorded() -> list[tuple[int, int, str]]:
        every = labels.read(lake, history=True)
        rows = zip(
            every[schema.TRANSACTION_ID].to_pylist(),
            every[schema.TX_FRAUD].to_pylist(),
            every[labels.SOURCE].to_pylist(),
            strict=True,
        )
        return [row for row in rows if row[0] in ids]

    assert recorded() == []
    post((first, 1))
    post((first, 1), (second, 0))  # the first again: not recorded; the second is new
    assert recorded() == [(first, 1, "api"), (second, 0, "api")]
    post((first, 0))
    post((first, 1))  # back to fraud: a change of the label in force
    assert recorded() == [(first, 1, "api"), (second, 0, "api"), (first, 0, "api"), (first, 1, "api")]
    labels.record(lake, {second: 1}, source="analyst", analyst="ann")  # another process changed it
    post((second, 0))
    assert recorded()[-2:] == [(second, 1, "analyst"), (second, 0, "api")]


def stored(files: dict[str, bytes]) -> dict[str, bytes]:
    """The lake's files but the monitor's latest report (a view of the lake as it is now, rewritten
    by every monitor run)."""
    return {name: data for name, data in files.items() if name != "monitor/report.json"}


# errors and the command line -------------------------------------------------------------------
def test_command_line_runs_days_then_says_nothing_is_left(lake: Path) -> None:
    result = runner.invoke(app, ["operate", "--data", str(lake), "--days", "1", "--json"])
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert [d["day"] for d in done["days"]] == [FIRST.isoformat()]
    result = runner.invoke(app, ["operate", "--data", str(lake), "--days", "1"])
    assert result.exit_code == 0 and "nothing to do" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--change", "spending:10:share=0.5"], "starts on a day the lake holds already"),
        (["--change", "spending:x"], "spending:x"),
        (["--url", "http://127.0.0.1:9", "--online", "memory://"], "--online"),
        (["--days", "0"], "--days"),
        (["--url", "http://127.0.0.1:9", "--answers-window-days", "2"], "--answers-window-days"),
        (["--answers-window-days", "0"], "--answers-window-days must be positive"),
        (["--answers-window-days", "40"], "answers window of 40 days is longer than the online store's log (37 days"),
    ],
)
def test_command_line_refuses_bad_options_in_one_line(lake: Path, args: list[str], message: str) -> None:
    base = ["operate", "--data", str(lake)] + ([] if "--days" in args else ["--days", "1"])
    result = runner.invoke(app, base + args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and read_state(Lake(lake)) is None


def test_refuses_a_lake_without_a_world_or_an_unreachable_service(lake: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["operate", "--data", str(tmp_path / "empty"), "--days", "1"])
    assert result.exit_code == 2 and "no simulated world" in result.output
    result = runner.invoke(app, ["operate", "--data", str(lake), "--days", "1", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "no fraudflow service answers at http://127.0.0.1:9" in result.output
