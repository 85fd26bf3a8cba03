"""The stored answer's codec: what the online store keeps of an answered transaction, as JSON text.

    {"features": {"<name>": <value>, ...},
     "request": {"TRANSACTION_ID": …, "TX_DATETIME": "<ISO 8601>", "CUSTOMER_ID": …, "TERMINAL_ID": …,
                 "TX_AMOUNT": …},
     "served": {"score": …, "alert": true|false, "threshold": …, "model_id": "…", "at": "<ISO 8601, UTC>"}}

The served feature vector gives a transaction sent again its first answer; the request lets the
consistency job recompute the vector in batch; ``served`` (absent when no model scored it, and in
answers stored before it existed) lets the prediction log be completed from the store after a
crash lost the rows a service still held in memory. The stores keep the text as it is (``Recorded.answer``,
``answers``); ``Encoder`` (and ``encode``) and ``decode`` are the only writer and reader of its fields.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from fraudflow.records import Transaction, TxColumns


@dataclass(frozen=True)
class Served:
    """What the model answered: the score, the alert, and which model at which threshold when."""

    score: float
    alert: bool
    threshold: float
    model_id: str
    at: dt.datetime  # naive UTC


@dataclass(frozen=True)
class StoredAnswer:
    """An answered transaction as stored: the feature vector it was served, the transaction, the model's answer."""

    features: dict[str, float]
    request: Transaction
    served: Served | None = None


@dataclass(frozen=True)
class ServedBatch:
    """What the model answered a batch: each row's score and alert as JSON text (``json_values``),
    and the model, threshold and time they share."""

    scores: Sequence[str]
    alerts: Sequence[str]
    threshold: float
    model_id: str
    at: dt.datetime  # naive UTC


class Encoder:
    """Stored answers of one feature set's vectors: the JSON text of the names written once.

    On every request's path, so written in C, a batch at a time: the vectors by orjson (3 µs a
    vector of 16 numbers here, ``repr`` of each number 14 µs), the stored answers around them by
    ``Rows`` (one join for the batch), their numbers by ``json_values``.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)

    def vector(self, values: Sequence[float]) -> str:
        """The JSON object of a feature vector (Python numbers, in ``names`` order)."""
        if not math.isfinite(sum(values)):  # any inf or nan (or an overflow): the careful way
            return json.dumps(dict(zip(self.names, values, strict=True)), separators=(",", ":"))
        return orjson.dumps(dict(zip(self.names, values, strict=True))).decode()

    def vectors(self, matrix: np.ndarray) -> list[str]:
        """The JSON objects of a batch's feature vectors (rows of ``matrix``, columns in ``names`` order)."""
        if not np.isfinite(matrix).all():  # an inf or a nan: row by row
            return [self.vector(values) for values in matrix.tolist()]
        names, dumps = self.names, orjson.dumps
        return [dumps(dict(zip(names, values, strict=True))).decode() for values in matrix.tolist()]

    @staticmethod
    def answers(vectors: Sequence[str], txs: TxColumns, served: ServedBatch | None = None) -> list[str]:
        """The stored answer of each transaction of ``txs``, served the vector whose JSON text is
        ``vectors[i]`` (and the model's answer ``served``, when a model scored them)."""
        columns = [
            vectors,
            json_values(txs.tx_id),
            iso_datetimes(txs.ts_us),
            json_values(txs.customer),
            json_values(txs.terminal),
            json_values(txs.amount),
        ]
        if served is None:
            return _STORED.fill_columns(columns)
        at = served.at.isoformat()
        template = _STORED_HEAD + (
            f',"served":{{"score":{SLOT},"alert":{SLOT},"threshold":{json_values([served.threshold])[0]},'
            f'"model_id":{json.dumps(served.model_id)},"at":"{at}"}}}}'
        )
        return Rows(template).fill_columns([*columns, served.scores, served.alerts])


#: Where a value goes in a ``Rows`` template: a control character, which JSON text always escapes.
SLOT = "\x00"
#: A stored answer up to its ``served`` part: the vector's text, the request's fields.
_STORED_HEAD = (
    f'{{"features":{SLOT},"request":{{"TRANSACTION_ID":{SLOT},"TX_DATETIME":"{SLOT}","CUSTOMER_ID":{SLOT},'
    f'"TERMINAL_ID":{SLOT},"TX_AMOUNT":{SLOT}}}'
)


class Rows:
    """Rows of text of one template (``SLOT`` where each value goes), a batch at a time.

    A batch's rows are written by one ``str.join`` of the template's pieces between the values
    (all in C; a %-template of the batch costs twice as much, scanning its text), then split at the
    rows' ends: a newline, which JSON written compactly never holds.
    """

    def __init__(self, template: str) -> None:
        pieces = template.split(SLOT)
        self.slots = len(pieces) - 1
        self._first, self._end = pieces[0], pieces[-1]
        # the text before each value of a row; before its first, the previous row's end too
        self._before = [f"{self._end}\n{self._first}", *pieces[1:-1]]

    def fill(self, values: Iterable[str], n: int) -> list[str]:
        """The ``n`` rows of ``values`` (texts, all the rows' one row after the other)."""
        if not self.slots:
            return [self._first] * n
        text = "".join(itertools.chain.from_iterable(zip(itertools.cycle(self._before), values))) + self._end
        return text.split("\n")[1:]  # the first piece: the end of no row

    def fill_columns(self, columns: Sequence[Sequence[str]]) -> list[str]:
        """The rows of ``columns`` (a column of texts per slot, one text a row)."""
        return self.fill(itertools.chain.from_iterable(zip(*columns, strict=True)), len(columns[0]))


_STORED = Rows(_STORED_HEAD + "}")


def json_values(values: Sequence[float] | np.ndarray) -> list[str]:
    """The JSON text of each of ``values``: a flat sequence of Python numbers, or an array of
    floats, ints or bools (read in C order). Numbers finite (a nan or an inf would be written
    null): the shortest text that reads back as the same float64, an int as an int. Written by
    orjson in C, 10-20 times faster than ``repr`` one at a time."""
    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        values = np.ascontiguousarray(values if kind in "biu" else values.astype(np.float64, copy=False)).ravel()
    text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    return text[1:-1].decode().split(",") if len(text) > 2 else []


def iso_datetimes(ts_us: np.ndarray) -> list[str]:
    """``datetime.isoformat()`` of each time (µs since the epoch, naive UTC): to the second, with
    the microseconds only when there are some. In C, for a batch."""
    times = np.asarray(ts_us, dtype=np.int64)
    seconds = np.datetime_as_string(times.astype("datetime64[us]").astype("datetime64[s]"))
    fraction = times % 1_000_000 != 0
    if fraction.any():
        seconds = np.where(fraction, np.datetime_as_string(times.astype("datetime64[us]")), seconds)
    texts: list[str] = seconds.tolist()
    return texts


def encode(features: Mapping[str, float], tx: Transaction, served: Served | None = None) -> str:
    """The stored answer of ``tx`` served ``features`` (and the model's answer ``served``), as JSON text."""
    batch = None
    if served is not None:
        score, alert = json_values([served.score, served.alert])
        batch = ServedBatch([score], [alert], served.threshold, served.model_id, served.at)
    vector = Encoder(list(features)).vector(list(features.values()))
    return Encoder.answers([vector], TxColumns.of([tx]), batch)[0]


def decode(text: str) -> StoredAnswer:
    """The feature vector, transaction and model's answer a stored answer holds."""
    stored = json.loads(text)
    request = stored["request"]
    tx = Transaction(
        request["TRANSACTION_ID"],
        dt.datetime.fromisoformat(request["TX_DATETIME"]),
        request["CUSTOMER_ID"],
        request["TERMINAL_ID"],
        float(request["TX_AMOUNT"]),
    )
    given = stored.get("served")
    served = None
    if given is not None:
        at = dt.datetime.fromisoformat(given["at"])
        served = Served(float(given["score"]), bool(given["alert"]), float(given["threshold"]), given["model_id"], at)
    return StoredAnswer(stored["features"], tx, served)
