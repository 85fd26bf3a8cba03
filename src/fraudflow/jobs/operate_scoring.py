"""Where ``fraudflow operate`` sends a day's traffic: a scorer in this process, or a running service.

Both take a day's transactions in arrival order and the chargebacks that arrive between them, and
make the day's answers land in the lake's prediction log before ``end_day`` returns:

- ``InProcess``: a ``Scorer`` over the lake's online store (SQLite in the lake root unless told),
  its answers committed by a ``ServedLog`` flushed at the end of each day; the chargebacks go to
  the online store's log (``add_labels``), which the scorer's windows catch up on before the next
  batch. A day cut short by a crash is completed from the store's answers (``recover``).
- ``Service``: ``POST /v1/score/batch`` and ``POST /v1/labels`` to a ``fraudflow serve`` of the
  same lake (the bodies ``jobs.replay`` builds); the service commits its answers itself (every few
  seconds), so ``end_day`` waits until the log holds the day, and ``follow`` until the service
  answers with the registry's production model (it follows the alias by itself).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from typing import Protocol

import httpx
import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.errors import FraudflowError
from fraudflow.jobs.replay import request_bodies
from fraudflow.lake import Lake
from fraudflow.records import Transaction
from fraudflow.serving.engine import Scorer, served_model
from fraudflow.serving.schemas import MAX_BATCH
from fraudflow.serving.served_log import ServedLog, recover
from fraudflow.store import predictions
from fraudflow.store.online.materialize import WATERMARK

#: transactions per call of the scorer in this process (between two chargebacks, at most this many)
IN_PROCESS_BATCH = 2_000
#: how long to wait for a service to commit a day's answers, or to take a promoted model
SERVICE_WAIT_SECONDS = 60.0


class ServiceError(FraudflowError):
    """The service ``operate`` sends traffic to cannot be reached, refuses a request, or serves another lake."""


class Scoring(Protocol):
    """What ``operate`` needs of a scoring path."""

    @property
    def model_id(self) -> str:
        """The model answering now."""
        ...

    def score(self, table: pa.Table) -> int:
        """Answer the transactions of ``table`` in its order; how many were alerted."""
        ...

    def add_labels(self, ids: Sequence[int]) -> None:
        """Fraud labels (chargebacks) for the online state, from the next transaction on."""
        ...

    def end_day(self, day: dt.date, ids: np.ndarray) -> None:
        """Return once the answers to the day's transactions ``ids`` are in the prediction log."""
        ...

    def follow(self, model_id: str) -> bool:
        """Answer with ``model_id`` from now on; whether it does."""
        ...

    def close(self) -> None: ...


def transactions(table: pa.Table) -> list[Transaction]:
    """The rows of a transactions table as ``Transaction``s, in its order."""
    when = table[schema.TX_DATETIME].cast(pa.timestamp("us")).to_pylist()
    ids = table[schema.TRANSACTION_ID].to_pylist()
    customers = table[schema.CUSTOMER_ID].to_pylist()
    terminals = table[schema.TERMINAL_ID].to_pylist()
    amounts = table[schema.TX_AMOUNT].to_pylist()
    return [Transaction(*row) for row in zip(ids, when, customers, terminals, amounts, strict=True)]


class InProcess:
    """The lake's scorer in this process (``Scorer.from_lake``: the production model, its stored threshold)."""

    def __init__(
        self, lake: Lake, online: str | None = None, *, recovering: bool = False, answers_us: int | None = None
    ) -> None:
        self.lake = lake
        self.scorer = Scorer.from_lake(lake, online=online, answers_us=answers_us)
        if recovering:  # answers stored before a crash that the log lacks
            recover(lake, self.scorer.store.answers())
        # committed when a day ends (``end_day``), not by the clock: one file a day
        self.log = self.scorer.served_log = ServedLog(lake, every=float(2**31))

    @property
    def model_id(self) -> str:
        return self.scorer.model_id

    def score(self, table: pa.Table) -> int:
        txs = transactions(table)
        alerts = 0
        for a in range(0, len(txs), IN_PROCESS_BATCH):
            alerts += sum(answer.alert for answer in self.scorer.score(txs[a : a + IN_PROCESS_BATCH]))
        return alerts

    def add_labels(self, ids: Sequence[int]) -> None:
        self.scorer.store.add_labels({int(i): 1 for i in ids})

    def end_day(self, day: dt.date, ids: np.ndarray) -> None:
        self.log.flush()
        # the store holds the day now: a restart's materialization starts after it
        self.scorer.store.set_meta(WATERMARK, day.isoformat())

    def follow(self, model_id: str) -> bool:
        if model_id != self.scorer.model_id:
            model, threshold = served_model(self.lake, model_id, self.scorer.feature_set.version)
            self.scorer.use_model(model, model_id, threshold)
        return True

    def close(self) -> None:
        self.log.close()
        self.scorer.store.close()


class Service:
    """A running ``fraudflow serve`` of the same lake, at ``url``."""

    def __init__(self, lake: Lake, url: str, api_key: str | None = None) -> None:
        self.lake = lake
        self.url = url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=120)
        self._model_id = self._ready_model()

    @property
    def model_id(self) -> str:
        return self._model_id

    def _ready_model(self) -> str:
        body = self._call("GET", "/readyz")
        model_id = body.get("model_id")
        if not model_id:
            raise ServiceError(f"the service at {self.url} serves no model")
        return str(model_id)

    def _call(self, method: str, path: str, body: object = None) -> dict[str, object]:
        try:
            response = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ServiceError(f"no fraudflow service answers at {self.url} ({exc})") from exc
        if response.status_code != 200:
            raise ServiceError(
                f"{method} {self.url}{path}: the service answered {response.status_code} {response.text[:200]}"
            )
        answer: dict[str, object] = response.json()
        return answer

    def score(self, table: pa.Table) -> int:
        bodies = request_bodies(table)
        alerts = 0
        for a in range(0, len(bodies), MAX_BATCH):
            answer = self._call("POST", "/v1/score/batch", {"transactions": bodies[a : a + MAX_BATCH]})
            results = answer["results"]
            assert isinstance(results, list)
            alerts += sum(bool(r["alert"]) for r in results)
            if results:
                self._model_id = str(results[-1]["model_id"])
        return alerts

    def add_labels(self, ids: Sequence[int]) -> None:
        for a in range(0, len(ids), 10_000):
            chunk = ids[a : a + 10_000]
            self._call(
                "POST", "/v1/labels", {"labels": [{schema.TRANSACTION_ID: int(i), schema.TX_FRAUD: 1} for i in chunk]}
            )

    def end_day(self, day: dt.date, ids: np.ndarray) -> None:
        deadline = time.monotonic() + SERVICE_WAIT_SECONDS
        while True:
            held = _logged_ids(self.lake, day)
            missing = len(np.setdiff1d(ids, held))
            if missing == 0:
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the service at {self.url} answered the {len(ids):,} transactions of {day}, but after "
                    f"{SERVICE_WAIT_SECONDS:g} s the prediction log of {self.lake.url} lacks {missing:,} of them: "
                    "does it serve this lake?"
                )
            time.sleep(0.5)

    def follow(self, model_id: str) -> bool:
        deadline = time.monotonic() + SERVICE_WAIT_SECONDS
        while self._ready_model() != model_id:
            if time.monotonic() > deadline:
                print(
                    f"warning: the service at {self.url} still serves {self._model_id}, not the production model "
                    f"{model_id} (started with --model, or --production-poll 0?)",
                    file=sys.stderr,
                    flush=True,
                )
                return False
            time.sleep(0.5)
        self._model_id = model_id
        return True

    def close(self) -> None:
        self.client.close()


def _logged_ids(lake: Lake, day: dt.date) -> np.ndarray:
    """The TRANSACTION_IDs the prediction log holds for ``day``."""
    dataset = predictions.log_table(lake).dataset(day, day)
    if dataset is None:
        return np.empty(0, dtype=np.int64)
    return np.asarray(dataset.to_table(columns=[schema.TRANSACTION_ID])[schema.TRANSACTION_ID].to_numpy())
