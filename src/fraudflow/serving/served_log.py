"""Every answered transaction into the lake's prediction log, without slowing the answers.

The scoring path hands each batch's new answers to ``ServedLog.add`` (joined into columns a few
dozen batches at a time, so that a commit takes ready arrays); a thread of the log's own commits
them to the lake (``store.predictions``: whole Parquet files, one per day) every ``every`` seconds
and at ``close``.
Rows still in memory when the process is killed are not lost: each answer was stored durably in
the online store, with the score, the alert and the model, before it left (``codec``), and
``recover`` writes the ones the lake lacks when the service starts."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from fraudflow.lake import Lake
from fraudflow.records import TxColumns, to_us
from fraudflow.store.online import codec
from fraudflow.store.predictions import Prediction, PredictionBatch, PredictionLog, write_missing
from fraudflow.threads import run_in_background


class ServedLog:
    """Answers kept in memory by ``add``, committed to the lake by a thread every ``every`` seconds."""

    def __init__(self, lake: Lake, every: float = 5.0) -> None:
        self.lake = lake
        self._log = PredictionLog(lake, max_rows=sys.maxsize, max_seconds=float("inf"))  # this class decides when
        self._pending: list[Answers] = []
        self._committing: list[Answers] = []  # taken by a flush, not in the lake yet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # pyarrow imports pandas (when installed) the first time it makes a timestamp column: 0.5 s of
        # CPU holding the interpreter, paid here at start-up rather than by the requests in flight
        # at the first commit
        pa.array(np.zeros(0, dtype=np.int64), type=pa.timestamp("us"))
        self._thread = threading.Thread(target=self._run, args=(every,), name="prediction-log", daemon=True)
        self._thread.start()

    def add(self, batch: PredictionBatch) -> None:
        """Keep a committed batch's answers for the next commit to the lake (its arrays as they are:
        the caller does not change them afterwards)."""
        with self._lock:
            if not self._pending or not self._pending[-1].takes(batch):
                self._pending.append(Answers(batch.model_id, batch.threshold, batch.feature_names))
            self._pending[-1].add(batch)

    def pending(self) -> list[PredictionBatch]:
        """The answers not in the lake yet, a batch per run of one model (the analyst desk shows them
        with the lake's)."""
        with self._lock:
            return [answers.batch() for answers in self._committing + self._pending]

    def flush(self) -> int:
        """Commit what is waiting; how many rows. On a failure (the lake unreachable) they wait for the next."""
        with self._lock:
            waiting, self._pending = self._pending, []
            self._committing = waiting  # still shown by pending() while they are written
        try:
            for answers in waiting:
                self._log.append(answers.batch())
            return self._log.flush()
        except BaseException:
            with self._lock:
                self._pending = waiting + self._pending
            self._log = PredictionLog(self.lake, max_rows=sys.maxsize, max_seconds=float("inf"))
            raise
        finally:
            with self._lock:
                self._committing = []

    def _run(self, every: float) -> None:
        # its commit (12 ms of CPU for 5,000 answers, most of it Arrow's writing, without the
        # interpreter's lock) waits for the requests; it holds that lock only a few ms at a time
        run_in_background()
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


#: Batches ``Answers`` keeps as they came before joining them into one (a copy per column).
JOIN_EVERY = 64


class Answers:
    """Answers of one model, threshold and feature names: the batches as they came, joined into one
    every ``JOIN_EVERY`` (a copy per column) by the call that adds the last of them.

    The service adds thousands of single answers between commits. Joined all at once by the
    commit, they cost the log's thread 50 ms of CPU for 5,000, holding the interpreter while the
    requests waited, and kept as many objects for the garbage collector; copied one by one into
    columns, they cost the scoring path eight numpy operations a batch (15 µs). Joined 64 at a
    time, they cost it about 4 µs a batch, and a commit joins a few arrays.
    """

    def __init__(self, model_id: str, threshold: float, feature_names: Sequence[str]) -> None:
        self.model_id = model_id
        self.threshold = threshold
        self.feature_names = list(feature_names)
        self._names = feature_names  # the object given: most batches bring this very one
        self._joined: list[PredictionBatch] = []
        self._recent: list[PredictionBatch] = []

    def takes(self, batch: PredictionBatch) -> bool:
        """Whether ``batch`` was answered by this model at this threshold over these features."""
        names = batch.feature_names
        same_names = names is self._names or list(names) == self.feature_names
        return batch.model_id == self.model_id and batch.threshold == self.threshold and same_names

    def add(self, batch: PredictionBatch) -> None:
        """Keep ``batch`` (its arrays, not a copy: the caller leaves them as they are)."""
        self._recent.append(batch)
        if len(self._recent) >= JOIN_EVERY:
            self._joined.append(self._join(self._recent))
            self._recent = []

    def batch(self) -> PredictionBatch:
        """The answers so far, as one batch (each row with its own served time)."""
        return self._join(self._joined + self._recent)

    def _join(self, batches: list[PredictionBatch]) -> PredictionBatch:
        return PredictionBatch(
            TxColumns.concat([b.txs for b in batches]),
            np.concatenate([b.scores for b in batches]),
            self.threshold,
            self.model_id,
            self.feature_names,
            np.concatenate([b.vectors for b in batches]),
            np.concatenate([_served_us(b) for b in batches]),
        )


def _served_us(batch: PredictionBatch) -> np.ndarray:
    """Each row's served time in microseconds."""
    if isinstance(batch.served_at, dt.datetime):
        return np.full(len(batch.txs), to_us(batch.served_at), dtype=np.int64)
    return np.asarray(batch.served_at, dtype=np.int64)


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
