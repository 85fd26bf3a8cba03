"""The consistency check tells late arrivals (explained by arrival order) from skew.

The served lake's last day goes through the online store's log in arrival order, one transaction
per batch, each one's features computed by the reference online path (``features.online``) over
the transactions recorded before it. For some customers the day's second transaction arrives just
before the first: each is a late arrival, and nothing is skew; a stored answer altered afterwards
is skew, and so is a late arrival's answer replaced by its batch features (which count a transaction
recorded after it).
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from fraudflow import schema
from fraudflow.cli import app
from fraudflow.features import registry
from fraudflow.features.definitions import FeatureSet
from fraudflow.features.online import OnlineFeatures
from fraudflow.jobs.consistency import ConsistencyReport, check
from fraudflow.lake import Lake
from fraudflow.records import CUSTOMER, ENTITIES, TERMINAL, Events, Transaction, TxColumns
from fraudflow.store.online import codec
from fraudflow.store.online.interface import OnlineStore
from fraudflow.store.online.sqlite import SQLiteStore

runner = CliRunner()
LATE = 12  # customers whose second transaction of the day arrives before their first
ALTERED = "TERMINAL_ID_NB_TX_7DAY_WINDOW"


def serve(store: OnlineStore, feature_set: FeatureSet, arrivals: list[Transaction]) -> None:
    """One service process: each transaction recorded, then answered with its features over the
    transactions recorded before it."""
    online = OnlineFeatures(feature_set)
    keep_us = max(online.history_us.values())
    held: dict[tuple[str, int], list[tuple[int, int, float]]] = {}  # (kind, entity) -> [(ts, id, amount)]
    labels: dict[int, int] = {}
    since = 0

    def hold(ts: int, tx_id: int, customer: int, terminal: int, amount: float) -> None:
        for key in ((CUSTOMER, customer), (TERMINAL, terminal)):
            bisect.insort(held.setdefault(key, []), (ts, tx_id, amount))

    for tx in arrivals:
        with store.record(TxColumns.of([tx]), since, keep_us) as rec:
            c = rec.caught_up.txs
            for row in zip(*(a.tolist() for a in (c.ts_us, c.tx_id, c.customer, c.terminal, c.amount)), strict=True):
                hold(*row)
            labels |= dict(zip(c.tx_id.tolist(), rec.caught_up.fraud.tolist(), strict=True))
            labels |= dict(zip(rec.caught_up.label_ids.tolist(), rec.caught_up.labels.tolist(), strict=True))
            events = {}
            for kind in ENTITIES:
                rows = held.get((kind, tx.entity(kind)), [])
                events[kind] = Events([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], labels=labels)
            rec.answer([codec.encode(online.compute(tx, events), tx)])
        hold(tx.ts_us, tx.transaction_id, tx.customer_id, tx.terminal_id, tx.amount)
        since = max(rec.caught_up.last_seq, int(rec.seqs[0]))


def with_late_arrivals(txs: list[Transaction]) -> tuple[list[Transaction], set[int]]:
    """``txs`` (one day, in time order), but for ``LATE`` customers the second transaction sent just
    before the first; and the ids of those second ones."""
    firsts: dict[int, Transaction] = {}  # customer -> its first transaction
    before: dict[int, Transaction] = {}  # a first transaction's id -> the second, sent before it
    for tx in txs:
        first = firsts.setdefault(tx.customer_id, tx)
        if first is not tx and len(before) < LATE and first.transaction_id not in before:
            before[first.transaction_id] = tx
    moved = {tx.transaction_id for tx in before.values()}
    arrivals = []
    for tx in txs:
        if tx.transaction_id in before:
            arrivals.append(before[tx.transaction_id])
        if tx.transaction_id not in moved:
            arrivals.append(tx)
    return arrivals, moved


@pytest.fixture(scope="module")
def served_store(served_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[int]]:
    """The lake's last day served with late arrivals, after the days before it were loaded."""
    lake = Lake(served_lake)
    feature_set = registry.required(lake)
    days = lake.partitions("transactions")
    ids = (schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID, schema.TX_AMOUNT)
    history = lake.read_partitions("transactions", days[-feature_set.history_days - 2 : -1])
    rows = zip(
        schema.timestamps_us(history[schema.TX_DATETIME]).tolist(), *(history[n].to_pylist() for n in ids), strict=True
    )
    frauds = history.filter(schema.numpy_column(history[schema.TX_FRAUD]) == 1)[schema.TRANSACTION_ID]
    path = tmp_path_factory.mktemp("consistency") / "online.sqlite"
    store = SQLiteStore(str(path))
    store.load(rows, dict.fromkeys(frauds.to_pylist(), 1))
    day = schema.time_ordered(lake.read_partitions("transactions", days[-1:]))
    when = day[schema.TX_DATETIME].to_numpy().astype("datetime64[us]").tolist()
    i, customer, terminal, amount = (day[n].to_pylist() for n in ids)
    arrivals, late = with_late_arrivals(list(map(Transaction, i, when, customer, terminal, amount)))
    serve(store, feature_set, arrivals)
    store.close()
    return path, late


def test_late_arrivals_are_not_skew(served_lake: Path, served_store: tuple[Path, set[int]]) -> None:
    path, late = served_store
    report = checked(served_lake, path)
    assert len(late) == LATE and report.served == report.compared > 100
    assert (report.late_arrivals, report.skewed) == (LATE, 0) and report.ok
    assert report.late["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == LATE  # each missed its customer's first
    assert sum(report.skew.values()) == 0
    out = runner.invoke(app, ["consistency", "--data", str(served_lake), "--online", f"sqlite://{path}"])
    assert out.exit_code == 0, out.output
    assert f"{LATE} late arrivals" in out.output and "0 with skew" in out.output


def altered(path: Path, tmp_path: Path, tx_id: int, change: Callable[[dict[str, float]], None]) -> Path:
    """A copy of the served store in which ``change`` altered the stored vector of ``tx_id``."""
    copy = tmp_path / "altered.sqlite"
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as con:
        stored = codec.decode(con.execute("SELECT answer FROM answers WHERE tx_id = ?", (tx_id,)).fetchone()[0])
        change(stored.features)
        con.execute(
            "UPDATE answers SET answer = ? WHERE tx_id = ?", (codec.encode(stored.features, stored.request), tx_id)
        )
    return copy


def checked(lake_root: Path, path: Path) -> ConsistencyReport:
    lake = Lake(lake_root)
    store = SQLiteStore(str(path))
    report = check(lake, store, registry.required(lake))
    store.close()
    return report


def test_an_altered_answer_is_skew(served_lake: Path, served_store: tuple[Path, set[int]], tmp_path: Path) -> None:
    path, late = served_store
    with sqlite3.connect(path) as con:
        tx_id = con.execute("SELECT tx_id FROM answers ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert tx_id not in late

    def add_one(features: dict[str, float]) -> None:
        features[ALTERED] += 1

    copy = altered(path, tmp_path, tx_id, add_one)
    report = checked(served_lake, copy)
    assert (report.late_arrivals, report.skewed) == (LATE, 1) and not report.ok
    assert {name: n for name, n in report.skew.items() if n} == {ALTERED: 1}
    out = runner.invoke(app, ["consistency", "--data", str(served_lake), "--online", f"sqlite://{copy}"])
    assert out.exit_code == 1 and "1 with skew" in out.output


def test_counting_a_transaction_recorded_later_is_skew(
    served_lake: Path, served_store: tuple[Path, set[int]], tmp_path: Path
) -> None:
    """A late arrival served the batch features (as if it had counted its customer's first
    transaction, which was recorded after it) is skew, though it equals the batch vector."""
    path, late = served_store
    lake = Lake(served_lake)
    tx_id = min(late)
    features = lake.read_partitions("features", lake.partitions("features")[-1:])
    row = features.filter(pc.equal(features[schema.TRANSACTION_ID], tx_id)).to_pylist()[0]

    def as_batch(served: dict[str, float]) -> None:
        served.update({name: float(row[name]) for name in served})

    report = checked(served_lake, altered(path, tmp_path, tx_id, as_batch))
    assert (report.late_arrivals, report.skewed) == (LATE - 1, 1) and not report.ok
    assert report.skew["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 1
