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
import json
import math
from collections.abc import Mapping, Sequence
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
    """What the model answered a batch: each row's score and alert as JSON text (``Texts.numbers``),
    and the model, threshold and time they share."""

    scores: Texts
    alerts: Texts
    threshold: float
    model_id: str
    at: dt.datetime  # naive UTC


class Encoder:
    """Stored answers of one feature set's vectors: the JSON text of the names written once.

    On every request's path, so written in C, a batch at a time: the numbers by orjson
    (``Texts.numbers``), the vectors and the stored answers around them by ``Rows.write``.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        # a vector's template: the names as orjson writes a dict's keys
        self._rows = Rows("{" + ",".join(f"{orjson.dumps(name).decode()}:{SLOT}" for name in self.names) + "}")

    def vector(self, values: Sequence[float]) -> str:
        """The JSON object of a feature vector (Python numbers, in ``names`` order)."""
        if not math.isfinite(sum(values)):  # any inf or nan (or an overflow): the careful way
            return json.dumps(dict(zip(self.names, values, strict=True)), separators=(",", ":"))
        return orjson.dumps(dict(zip(self.names, values, strict=True))).decode()

    def vectors(self, matrix: np.ndarray) -> list[str]:
        """The JSON objects of a batch's feature vectors (rows of ``matrix``, columns in ``names`` order)."""
        return self.vector_texts(matrix).strings()

    def vector_texts(self, matrix: np.ndarray) -> Texts:
        """``vectors`` as ``Texts``: the same text, written in C (an inf or a nan: row by row)."""
        if not np.isfinite(matrix).all():
            return Texts.of([self.vector(values) for values in matrix.tolist()])
        return self._rows.write([Texts.numbers(matrix)], len(matrix))

    @staticmethod
    def answers(vectors: Texts, txs: TxColumns, served: ServedBatch | None = None, ids: Texts | None = None) -> Texts:
        """The stored answer of each transaction of ``txs``, served the vector whose JSON text is
        ``vectors``' i-th (and the model's answer ``served``, when a model scored them); ``ids``:
        ``Texts.numbers(txs.tx_id)`` when the caller has it already."""
        columns = [
            vectors,
            Texts.numbers(txs.tx_id) if ids is None else ids,
            Texts.fixed(_iso_datetimes(txs.ts_us).astype(np.bytes_)),
            Texts.numbers(txs.customer),
            Texts.numbers(txs.terminal),
            Texts.numbers(txs.amount),
        ]
        if served is None:
            return _STORED.write(columns, len(txs))
        at = served.at.isoformat()
        template = _STORED_HEAD + (
            f',"served":{{"score":{SLOT},"alert":{SLOT},"threshold":{json_values([served.threshold])[0]},'
            f'"model_id":{json.dumps(served.model_id)},"at":"{at}"}}}}'
        )
        return Rows(template).write([*columns, served.scores, served.alerts], len(txs))


#: Where a value goes in a ``Rows`` template: a control character, which JSON text always escapes.
SLOT = "\x00"
#: A stored answer up to its ``served`` part: the vector's text, the request's fields.
_STORED_HEAD = (
    f'{{"features":{SLOT},"request":{{"TRANSACTION_ID":{SLOT},"TX_DATETIME":"{SLOT}","CUSTOMER_ID":{SLOT},'
    f'"TERMINAL_ID":{SLOT},"TX_AMOUNT":{SLOT}}}'
)


class Texts:
    """A column of texts as UTF-8 bytes: text i is ``buf[starts[i]:ends[i]]``; ``sep`` when the
    texts lie one after the other from ``starts[0]``, that separator between two (none in any)."""

    __slots__ = ("buf", "ends", "sep", "starts")

    def __init__(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, sep: bytes | None = None) -> None:
        self.buf, self.starts, self.ends, self.sep = buf, starts, ends, sep

    def __len__(self) -> int:
        return len(self.starts)

    @classmethod
    def numbers(cls, values: np.ndarray) -> Texts:
        """The JSON text of each of ``values`` (``json_values``' texts, in C order)."""
        text = _json_array(values)
        buf = np.frombuffer(text, dtype=np.uint8)
        if len(text) == 2:  # "[]"
            return cls(buf, _NO_POSITIONS, _NO_POSITIONS, b",")
        commas = np.flatnonzero(buf == ord(","))
        starts = np.concatenate([_ONE, commas + 1])
        ends = np.concatenate([commas, [len(text) - 1]])
        return cls(buf, starts, ends, b",")

    @classmethod
    def of(cls, texts: Sequence[str]) -> Texts:
        """``texts`` (none holding a newline: JSON written compactly, dates)."""
        text = "\n".join(texts).encode()
        buf = np.frombuffer(text, dtype=np.uint8)
        newlines = np.flatnonzero(buf == ord("\n"))
        if len(texts) and len(newlines) != len(texts) - 1:
            raise ValueError("a text to write holds a newline")
        if not texts:
            return cls(buf, _NO_POSITIONS, _NO_POSITIONS, b"\n")
        return cls(buf, np.concatenate([[0], newlines + 1]), np.concatenate([newlines, [len(text)]]), b"\n")

    @classmethod
    def fixed(cls, texts: np.ndarray) -> Texts:
        """The texts of a numpy bytes array (fixed width, padded with NULs)."""
        width = texts.dtype.itemsize
        starts = np.arange(len(texts), dtype=np.int64) * width
        return cls(np.ascontiguousarray(texts).view(np.uint8), starts, starts + np.char.str_len(texts))

    def take(self, rows: np.ndarray) -> Texts:
        """The texts at ``rows`` (positions, any shape: read in C order)."""
        return Texts(self.buf, self.starts[rows].ravel(), self.ends[rows].ravel())

    @staticmethod
    def zip(a: Texts, b: Texts, n: int) -> Texts:
        """For each of ``n`` rows, its texts of ``a`` (as many a row) and of ``b``, alternately."""
        buf = np.concatenate([a.buf, b.buf])
        starts = np.stack([a.starts.reshape(n, -1), b.starts.reshape(n, -1) + len(a.buf)], axis=2)
        ends = np.stack([a.ends.reshape(n, -1), b.ends.reshape(n, -1) + len(a.buf)], axis=2)
        return Texts(buf, starts.ravel(), ends.ravel())

    def strings(self) -> list[str]:
        """The texts."""
        if not len(self):
            return []
        if self.sep is not None:
            return self.buf[self.starts[0] : self.ends[-1]].tobytes().decode().split(self.sep.decode())
        data = self.buf.tobytes()
        return [data[a:b].decode() for a, b in zip(self.starts.tolist(), self.ends.tolist(), strict=True)]

    def joined(self, sep: bytes) -> bytes:
        """The texts one after the other, ``sep`` between two."""
        if self.sep is None:
            return sep.join(text.encode() for text in self.strings())
        text = self.buf[self.starts[0] : self.ends[-1]].tobytes() if len(self) else b""
        return text if sep == self.sep else text.replace(self.sep, sep)


_ONE = np.ones(1, dtype=np.int64)
_NO_POSITIONS = np.empty(0, dtype=np.int64)


class Rows:
    """Rows of text of one template (``SLOT`` where each value goes), a batch at a time.

    A batch's rows are written by a compiled loop (``text_kernel.fill_rows``) copying the
    template's pieces and the values' bytes, one after the other: no Python object per value.
    """

    def __init__(self, template: str) -> None:
        pieces = [piece.encode() for piece in template.split(SLOT)]
        self.slots = len(pieces) - 1
        self._template = np.frombuffer(b"".join(pieces), dtype=np.uint8)
        self._bounds = np.cumsum([0, *(len(p) for p in pieces)], dtype=np.int64)

    def write(self, columns: Sequence[Texts], n: int) -> Texts:
        """The ``n`` rows of ``columns``: each column's texts fill as many slots (its texts a row,
        row after row), the columns one after the other; the rows' texts, separated by newlines
        (which JSON written compactly never holds)."""
        from fraudflow.store.online.text_kernel import fill_rows

        if not n:
            return Texts(np.empty(0, dtype=np.uint8), _NO_POSITIONS, _NO_POSITIONS, b"\n")
        starts = np.empty((n, self.slots), dtype=np.int64)
        ends = np.empty((n, self.slots), dtype=np.int64)
        given = sum(len(column) for column in columns)
        if given != n * self.slots:
            raise ValueError(f"{given / n:g} values a row for a template of {self.slots}")
        slot = offset = 0
        for column in columns:
            k = len(column) // n
            starts[:, slot : slot + k] = column.starts.reshape(n, k) + offset
            ends[:, slot : slot + k] = column.ends.reshape(n, k) + offset
            slot += k
            offset += len(column.buf)
        buf = np.concatenate([column.buf for column in columns]) if columns else np.empty(0, dtype=np.uint8)
        out, row_starts, row_ends = fill_rows(self._template, self._bounds, buf, starts, ends)
        return Texts(out, row_starts, row_ends, b"\n")

    def fill_columns(self, columns: Sequence[Sequence[str]]) -> list[str]:
        """The rows of ``columns`` (a column of texts per slot, one text a row)."""
        return self.write([Texts.of(column) for column in columns], len(columns[0])).strings()


_STORED = Rows(_STORED_HEAD + "}")


def json_values(values: Sequence[float] | np.ndarray) -> list[str]:
    """The JSON text of each of ``values``: a flat sequence of Python numbers, or an array of
    floats, ints or bools (read in C order). Numbers finite (a nan or an inf would be written
    null): the shortest text that reads back as the same float64, an int as an int. Written by
    orjson in C, 10-20 times faster than ``repr`` one at a time."""
    text = _json_array(values)
    return text[1:-1].decode().split(",") if len(text) > 2 else []


def _json_array(values: Sequence[float] | np.ndarray) -> bytes:
    """The JSON array of ``values`` (``json_values``), as orjson writes it."""
    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        values = np.ascontiguousarray(values if kind in "biu" else values.astype(np.float64, copy=False)).ravel()
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)


def iso_datetimes(ts_us: np.ndarray) -> list[str]:
    """``datetime.isoformat()`` of each time (µs since the epoch, naive UTC): to the second, with
    the microseconds only when there are some. In C, for a batch."""
    texts: list[str] = _iso_datetimes(ts_us).tolist()
    return texts


def _iso_datetimes(ts_us: np.ndarray) -> np.ndarray:
    """``iso_datetimes`` as a numpy array of texts."""
    times = np.asarray(ts_us, dtype=np.int64)
    seconds = np.datetime_as_string(times.astype("datetime64[us]").astype("datetime64[s]"))
    fraction = times % 1_000_000 != 0
    if fraction.any():
        seconds = np.where(fraction, np.datetime_as_string(times.astype("datetime64[us]")), seconds)
    return seconds


def encode(features: Mapping[str, float], tx: Transaction, served: Served | None = None) -> str:
    """The stored answer of ``tx`` served ``features`` (and the model's answer ``served``), as JSON text."""
    batch = None
    if served is not None:
        score, alert = Texts.numbers(np.array([served.score])), Texts.numbers(np.array([served.alert]))
        batch = ServedBatch(score, alert, served.threshold, served.model_id, served.at)
    vector = Texts.of([Encoder(list(features)).vector(list(features.values()))])
    return Encoder.answers(vector, TxColumns.of([tx]), batch).strings()[0]


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
