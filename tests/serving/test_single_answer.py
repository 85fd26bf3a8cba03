"""A batch of a few transactions (one request at light load, a few under a burst) is answered by
``Scorer._answers_few``: the same answers and stored answers as the batch's way (``Scorer._answers``,
the columns' texts) gives them, for batches of 1 to ``codec.SMALL`` transactions, with a model and
without one."""

from __future__ import annotations

import datetime as dt
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fraudflow.records import Transaction, TxColumns
from fraudflow.serving.engine import Scorer, _Judged
from fraudflow.store.online import codec
from tests.serving.conftest import WORLD


def transactions(n: int) -> list[Transaction]:
    """``n`` transactions after the world's last day, on its customers and terminals, amounts and
    times of every kind (whole seconds and not, cents and not, a zero)."""
    rng = random.Random(3)
    start = dt.datetime.combine(WORLD.start_date + dt.timedelta(days=WORLD.nb_days), dt.time())
    txs = []
    for i in range(n):
        at = start + dt.timedelta(seconds=60 * i, microseconds=rng.choice([0, 1, 250_000, 999_999]))
        amount = rng.choice([0.0, 12.5, round(rng.uniform(1, 300), 2), rng.uniform(1, 1000), 1e6])
        customer, terminal = rng.randrange(WORLD.n_customers), rng.randrange(WORLD.n_terminals)
        txs.append(Transaction(10**9 + i, at, customer, terminal, amount))
    return txs


def answered_in_batches(
    root: Path, txs: list[Transaction], threshold: float, model: bool = True
) -> tuple[list[str], list[str]]:
    """The transactions scored in order, in batches of 1, 2, ... ``codec.SMALL``, 1, 2, ..., by a
    scorer on a memory store: the answers' texts and the store's (their time served, which differs
    between two runs, checked and left out)."""
    scorer = Scorer.from_lake(root, online="memory://", threshold=threshold)
    if not model:
        scorer.use_model(None, "", threshold)
    bodies: list[str] = []
    size, start = 1, 0
    while start < len(txs):
        bodies += [answer.body for answer in scorer.score(txs[start : start + size])]
        start, size = start + size, size % codec.SMALL + 1
    stored = []
    for _, _, answer in scorer.store.answers():
        at = re.search(r'"at":"([^"]*)"', answer)
        assert (at is not None) == model
        if at is not None:
            assert dt.datetime.fromisoformat(at.group(1)) > dt.datetime(2026, 1, 1)
            answer = answer.replace(at.group(0), '"at":"…"')
        stored.append(answer)
    return bodies, stored


def the_columns_way(
    scorer: Scorer, columns: TxColumns, vectors: np.ndarray, judged: _Judged, at: dt.datetime
) -> tuple[object, list[str | None]]:
    texts = scorer._encoder.vector_texts(vectors)
    return scorer._answers(columns, texts, [False] * len(columns), judged, at)


@pytest.mark.parametrize(
    ("threshold", "model"), [(0.5, True), (0.0, True), (0.5, False)], ids=["some-alerts", "every-alert", "no-model"]
)
def test_a_few_transactions_are_answered_as_the_batch_way_answers_them(
    served_lake: Path, monkeypatch: pytest.MonkeyPatch, threshold: float, model: bool
) -> None:
    txs = transactions(300)
    few = answered_in_batches(served_lake, txs, threshold, model)
    monkeypatch.setattr(Scorer, "_answers_few", the_columns_way)
    assert answered_in_batches(served_lake, txs, threshold, model) == few
    assert len(few[0]) == len(few[1]) == len(txs)
    assert all(('"served":' in answer) == model for answer in few[1])
    if model:
        assert any('"alert":true' in body for body in few[0])


def test_warm_loads_every_kernel_a_request_runs_and_leaves_the_state_as_it_was(served_lake: Path) -> None:
    """``Scorer.warm`` (at the service's start) calls the kernels of a single request's batch and of a
    burst's once, and the windows' upkeep (a label, the trim), in a fresh process here: batches of 1,
    5 and 40 scored after it load no compiled kernel of fraudflow's (a numba dispatcher gaining a signature is one
    compiled or read from the cache on a request), and the answers after it are those of a scorer
    never warmed."""
    code = f"""
import sys
from numba.core.registry import CPUDispatcher
from fraudflow.serving.engine import Scorer
from tests.serving.test_single_answer import transactions
def loaded():
    return {{
        (module, name): len(kernel.signatures)
        for module, m in list(sys.modules.items()) if module.startswith("fraudflow.")
        for name, kernel in vars(m).items() if isinstance(kernel, CPUDispatcher)
    }}
scorer = Scorer.from_lake({str(served_lake)!r}, online="memory://")
before = scorer.state.last_seq
scorer.warm()
warmed = loaded()
upkeep = [("fraudflow.features.online_state", name) for name in ("_label", "_trim", "_repack", "_reindex")]
assert all(warmed[kernel] for kernel in upkeep), [kernel for kernel in upkeep if not warmed[kernel]]
assert scorer.state.last_seq == before
txs = transactions(46)
for batch in (txs[:1], txs[1:6], txs[6:]):
    scorer.score(batch)
after = loaded()
assert after == warmed, sorted(k for k in after if after[k] != warmed.get(k, 0))
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, cwd=Path(__file__).parents[2])
    txs = transactions(20)
    warmed = Scorer.from_lake(served_lake, online="memory://")
    warmed.warm()
    plain = Scorer.from_lake(served_lake, online="memory://")
    assert [a.body for a in warmed.score(txs)] == [a.body for a in plain.score(txs)]
