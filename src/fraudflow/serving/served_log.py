"""Every answered transaction into the lake's prediction log, without slowing the answers.

The scoring path hands each batch's new answers to ``ServedLog.add`` (a list append); a thread of
the log's own commits them to the lake (``store.predictions``: whole Parquet files, one per day)
every ``every`` seconds and at ``close``. Rows still in memory when the process is killed are not
lost: each answer was stored durably in the online store, with the score, the alert and the model,
before it left (``codec``), and ``recover`` writes the ones the lake lacks when the service starts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import threading
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from fraudflow.lake import Lake
from fraudflow.records import TxColumns, to_us
from fraudflow.store.online import codec
from fraudflow.store.predictions import Prediction, PredictionBatch, PredictionLog, write_missing


class ServedLog:
    """Answers kept in memory by ``add``, committed to the lake by a thread every ``every`` seconds."""

    def __init__(self, lake: Lake, every: float = 5.0) -> None:
        self.lake = lake
        self._log = PredictionLog(lake, max_rows=sys.maxsize, max_seconds=float("inf"))  # this class decides when
        self._pending: list[PredictionBatch] = []
        self._committing: list[PredictionBatch] = []  # taken by a flush, not in the lake yet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # pyarrow imports pandas (when installed) the first time it makes a timestamp column: 0.5 s of
        # CPU holding the interpreter, paid here at start-up rather than by the requests in flight
        # at the first commit
        pa.array(np.zeros(0, dtype=np.int64), type=pa.timestamp("us"))
        self._thread = threading.Thread(target=self._run, args=(every,), name="prediction-log", daemon=True)
        self._thread.start()

    def add(self, batch: PredictionBatch) -> None:
        """Keep a committed batch's answers for the next commit to the lake."""
        with self._lock:
            self._pending.append(batch)

    def pending(self) -> list[PredictionBatch]:
        """The batches not in the lake yet (the analyst desk shows them with the lake's)."""
        with self._lock:
            return self._committing + self._pending

    def flush(self) -> int:
        """Commit what is waiting; how many rows. On a failure (the lake unreachable) they wait for the next."""
        with self._lock:
            batches, self._pending = self._pending, []
            self._committing = batches  # still shown by pending() while they are written
        try:
            for batch in _joined(batches):
                self._log.append(batch)
            return self._log.flush()
        except BaseException:
            with self._lock:
                self._pending = batches + self._pending
            self._log = PredictionLog(self.lake, max_rows=sys.maxsize, max_seconds=float("inf"))
            raise
        finally:
            with self._lock:
                self._committing = []

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.flush()
            except Exception as exc:  # kept, tried again next turn; said once a turn
                print(f"warning: the prediction log could not be written ({exc}); retrying", file=sys.stderr)

    def close(self) -> None:
        """Stop the thread and commit what is left."""
        self._stop.set()
        self._thread.join()
        self.flush()


def _joined(batches: list[PredictionBatch]) -> list[PredictionBatch]:
    """Consecutive batches of one model, threshold and feature names as one (one Arrow conversion
    for thousands of single-transaction batches), each row keeping its batch's served time."""
    runs: list[list[PredictionBatch]] = []
    key = None
    for batch in batches:
        this = (batch.model_id, batch.threshold, tuple(batch.feature_names))
        if this == key:
            runs[-1].append(batch)
        else:
            runs.append([batch])
            key = this
    joined = []
    for run in runs:
        first = run[0]
        txs = [b.txs for b in run]
        columns = TxColumns(*(np.concatenate([getattr(t, f.name) for t in txs]) for f in dataclasses.fields(TxColumns)))
        joined.append(
            PredictionBatch(
                columns,
                np.concatenate([b.scores for b in run]),
                first.threshold,
                first.model_id,
                first.feature_names,
                np.concatenate([b.vectors for b in run]),
                np.repeat([_served_us(b.served_at) for b in run], [len(t) for t in txs]),
            )
        )
    return joined


def _served_us(at: dt.datetime | np.ndarray) -> int:
    """A batch's served time in microseconds (the service's batches have one)."""
    if isinstance(at, dt.datetime):
        return to_us(at)
    raise ValueError("the service's batches have one served time each")


def recover(lake: Lake, answers: Iterable[tuple[int, int, str]]) -> int:
    """Write to the prediction log the stored answers (``OnlineStore.answers``) it lacks; how many.

    What a killed service had not committed yet; answers stored without the model's answer (no
    model, or stored before it was kept) are left out.
    """
    rows = []
    for _, _, text in answers:
        stored = codec.decode(text)
        served = stored.served
        if served is not None:
            rows.append(
                Prediction(
                    stored.request,
                    served.score,
                    served.alert,
                    served.threshold,
                    served.model_id,
                    stored.features,
                    served.at,
                )
            )
    return write_missing(lake, rows) if rows else 0
