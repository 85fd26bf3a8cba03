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
import functools
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

    def shared(self) -> list[bytes]:
        """The texts of what the rows share: the threshold, the model's id, the time."""
        return ServedBatch.texts(self.threshold, self.model_id, self.at)

    @staticmethod
    def texts(threshold: float, model_id: str, at: dt.datetime) -> list[bytes]:
        """``shared``'s texts of these values."""
        return [*_model_texts(threshold, model_id), at.isoformat().encode()]


@functools.lru_cache(maxsize=16)
def _model_texts(threshold: float, model_id: str) -> tuple[bytes, bytes]:
    """The JSON texts of a threshold and a model's id (the same for every answer of a model)."""
    return json_values([threshold])[0].encode(), json.dumps(model_id).encode()


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
        return self.vector_text(values).decode()

    def vector_text(self, values: Sequence[float]) -> bytes:
        """``vector`` as UTF-8 bytes."""
        if not math.isfinite(sum(values)):  # any inf or nan (or an overflow): the careful way
            return json.dumps(dict(zip(self.names, values, strict=True)), separators=(",", ":")).encode()
        return orjson.dumps(dict(zip(self.names, values, strict=True)))

    def vectors(self, matrix: np.ndarray) -> list[str]:
        """The JSON objects of a batch's feature vectors (rows of ``matrix``, columns in ``names`` order)."""
        return self.vector_texts(matrix).strings()

    def vector_texts(self, matrix: np.ndarray) -> Texts:
        """``vectors`` as ``Texts``: the same text, written in C (an inf or a nan, or a small batch:
        row by row)."""
        if len(matrix) <= SMALL or not np.isfinite(matrix).all():
            return Texts.of_items([self.vector_text(values) for values in matrix.tolist()])
        return self._rows.write([Texts.numbers(matrix)], len(matrix))

    @staticmethod
    def answers(vectors: Texts, txs: TxColumns, served: ServedBatch | None = None, ids: Texts | None = None) -> Texts:
        """The stored answer of each transaction of ``txs``, served the vector whose JSON text is
        ``vectors``' i-th (and the model's answer ``served``, when a model scored them); ``ids``:
        ``Texts.numbers(txs.tx_id)`` when the caller has it already."""
        n = len(txs)
        columns = [
            vectors,
            Texts.numbers(txs.tx_id) if ids is None else ids,
            iso_texts(txs.ts_us),
            Texts.numbers(txs.customer),
            Texts.numbers(txs.terminal),
            Texts.numbers(txs.amount),
        ]
        if served is None:
            return _STORED.write(columns, n)
        repeated = [Texts.repeat(text, n) for text in served.shared()]
        return _STORED_SERVED.write([*columns, served.scores, served.alerts, *repeated], n)

    def vector_row(self, values: Sequence[bytes]) -> bytes:
        """``vector`` of the JSON texts of a vector's values (finite numbers, in ``names`` order)."""
        return self._rows.row(values)

    @staticmethod
    def answer(request: Sequence[bytes], served: Sequence[bytes] | None = None) -> bytes:
        """``answers`` of one transaction from its texts, by one join (``Rows.row``): ``request`` its
        vector's and its fields' (TRANSACTION_ID, TX_DATETIME as ``iso_text`` writes it, CUSTOMER_ID,
        TERMINAL_ID, TX_AMOUNT), ``served`` the model's score and alert and then ``ServedBatch.shared``'s;
        the same text without the columns' fixed cost (a request's answer at light load)."""
        if served is None:
            return _STORED.row(request)
        return _STORED_SERVED.row([*request, *served])


#: Batches of at most this many texts are kept and written as lists of ``bytes`` (``Texts``).
SMALL = 16
#: Where a value goes in a ``Rows`` template: a control character, which JSON text always escapes.
SLOT = "\x00"
#: A stored answer up to its ``served`` part: the vector's text, the request's fields.
_STORED_HEAD = (
    f'{{"features":{SLOT},"request":{{"TRANSACTION_ID":{SLOT},"TX_DATETIME":"{SLOT}","CUSTOMER_ID":{SLOT},'
    f'"TERMINAL_ID":{SLOT},"TX_AMOUNT":{SLOT}}}'
)


class Texts:
    """A column of texts as UTF-8 bytes: text i is ``buf[starts[i]:ends[i]]``; ``sep`` when the
    texts lie one after the other from ``starts[0]``, that separator between two (none in any).

    A column of at most ``SMALL`` texts (one request's answer: the service's usual batch at light
    load) is kept as a list of ``bytes`` instead, and written by joins in Python: the arrays and the
    compiled loop cost a fixed 10-40 µs a call each, 300 µs over one answer's parts, where a
    thousand answers' cost them 20 µs apiece less. Either form gives the other when asked (once).
    """

    __slots__ = ("_buf", "_ends", "_items", "_starts", "sep")

    def __init__(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, sep: bytes | None = None) -> None:
        self._buf, self._starts, self._ends, self.sep = buf, starts, ends, sep
        self._items: list[bytes] | None = None

    @classmethod
    def of_items(cls, items: list[bytes]) -> Texts:
        """``items`` as they are (none holding a newline)."""
        texts = cls.__new__(cls)
        texts._buf = texts._starts = texts._ends = None  # type: ignore[assignment]  # made when asked
        texts._items, texts.sep = items, b"\n"
        return texts

    @classmethod
    def repeat(cls, text: bytes, n: int) -> Texts:
        """``text`` ``n`` times (none holding a newline)."""
        if n <= SMALL:
            return cls.of_items([text] * n)
        return cls(np.frombuffer(text, dtype=np.uint8), np.zeros(n, dtype=np.int64), np.full(n, len(text)))

    @property
    def buf(self) -> np.ndarray:
        if self._buf is None:
            self._place()
        return self._buf

    @property
    def starts(self) -> np.ndarray:
        if self._starts is None:
            self._place()
        return self._starts

    @property
    def ends(self) -> np.ndarray:
        if self._ends is None:
            self._place()
        return self._ends

    def _place(self) -> None:
        """The arrays of a list of texts: one after the other, a newline between two."""
        items = self._items or []
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        self._ends = np.cumsum(lengths + 1) - 1
        self._starts = self._ends - lengths
        self._buf = np.frombuffer(b"\n".join(items), dtype=np.uint8)

    def items(self) -> list[bytes]:
        """The texts, as ``bytes``."""
        if self._items is None:
            starts, ends = self._starts, self._ends
            if not len(starts):
                self._items = []
            elif self.sep is not None:
                self._items = self._buf[starts[0] : ends[-1]].tobytes().split(self.sep)
            else:
                data = self._buf.tobytes()
                self._items = [data[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        return self._items

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else len(self._starts)

    @classmethod
    def numbers(cls, values: np.ndarray) -> Texts:
        """The JSON text of each of ``values`` (``json_values``' texts, in C order)."""
        if values.size <= SMALL:
            return cls.of_items(number_texts(values))
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
        if len(texts) <= SMALL:
            items = [text.encode() for text in texts]
            if any(b"\n" in item for item in items):
                raise ValueError("a text to write holds a newline")
            return cls.of_items(items)
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
        if rows.size <= SMALL:
            items = self.items()
            return Texts.of_items([items[i] for i in rows.ravel().tolist()])
        return Texts(self.buf, self.starts[rows].ravel(), self.ends[rows].ravel())

    @staticmethod
    def zip(a: Texts, b: Texts, n: int) -> Texts:
        """For each of ``n`` rows, its texts of ``a`` (as many a row) and of ``b``, alternately."""
        if len(a) + len(b) <= SMALL:
            return Texts.of_items([text for pair in zip(a.items(), b.items(), strict=True) for text in pair])
        buf = np.concatenate([a.buf, b.buf])
        starts = np.stack([a.starts.reshape(n, -1), b.starts.reshape(n, -1) + len(a.buf)], axis=2)
        ends = np.stack([a.ends.reshape(n, -1), b.ends.reshape(n, -1) + len(a.buf)], axis=2)
        return Texts(buf, starts.ravel(), ends.ravel())

    def strings(self) -> list[str]:
        """The texts."""
        if not len(self):
            return []
        if self._items is not None:
            return [item.decode() for item in self._items]
        if self.sep is not None:
            return self.buf[self.starts[0] : self.ends[-1]].tobytes().decode().split(self.sep.decode())
        data = self.buf.tobytes()
        return [data[a:b].decode() for a, b in zip(self.starts.tolist(), self.ends.tolist(), strict=True)]

    def joined(self, sep: bytes) -> bytes:
        """The texts one after the other, ``sep`` between two."""
        if self._items is not None:
            return sep.join(self._items)
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
        # ``row``'s format: the pieces, ``%b`` where a value goes (one C call: 0.5 µs for 15 values, a
        # join of the pieces and values made in Python 3.5)
        self._format = b"%b".join(piece.replace(b"%", b"%%") for piece in pieces)

    def write(self, columns: Sequence[Texts], n: int) -> Texts:
        """The ``n`` rows of ``columns``: each column's texts fill as many slots (its texts a row,
        row after row), the columns one after the other; the rows' texts, separated by newlines
        (which JSON written compactly never holds)."""
        if not n:
            return Texts(np.empty(0, dtype=np.uint8), _NO_POSITIONS, _NO_POSITIONS, b"\n")
        given = sum(len(column) for column in columns)
        if given != n * self.slots:
            raise ValueError(f"{given / n:g} values a row for a template of {self.slots}")
        if n <= SMALL:
            return Texts.of_items(self._joined(columns, n))
        from fraudflow.store.online.text_kernel import fill_rows

        starts = np.empty((n, self.slots), dtype=np.int64)
        ends = np.empty((n, self.slots), dtype=np.int64)
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

    def _joined(self, columns: Sequence[Texts], n: int) -> list[bytes]:
        """``write``'s rows for a small batch, each by one join of the pieces and its values."""
        values = [[] for _ in range(n)]  # type: list[list[bytes]]
        for column in columns:
            items, k = column.items(), len(column) // n
            for row in range(n):
                values[row] += items[row * k : row * k + k]
        return [self.row(row_values) for row_values in values]

    def row(self, values: Sequence[bytes]) -> bytes:
        """One row: the template's pieces with ``values`` (a slot's text each) between them."""
        if len(values) != self.slots:
            raise ValueError(f"{len(values)} values a row for a template of {self.slots}")
        return self._format % tuple(values)


_STORED = Rows(_STORED_HEAD + "}")
#: ... and with the model's answer: its score and alert, then the threshold, model and time the batch shares.
_STORED_SERVED = Rows(
    _STORED_HEAD + f',"served":{{"score":{SLOT},"alert":{SLOT},"threshold":{SLOT},"model_id":{SLOT},"at":"{SLOT}"}}}}'
)


def json_values(values: Sequence[float] | np.ndarray) -> list[str]:
    """The JSON text of each of ``values``: a flat sequence of Python numbers, or an array of
    floats, ints or bools (read in C order). Numbers finite (a nan or an inf would be written
    null): the shortest text that reads back as the same float64, an int as an int. Written by
    orjson in C, 10-20 times faster than ``repr`` one at a time."""
    text = _json_array(values)
    return text[1:-1].decode().split(",") if len(text) > 2 else []


def number_texts(values: np.ndarray) -> list[bytes]:
    """``json_values`` of an array of floats, ints or bools, as UTF-8 bytes."""
    text = _json_array(values)
    return text[1:-1].split(b",") if len(text) > 2 else []


def _json_array(values: Sequence[float] | np.ndarray) -> bytes:
    """The JSON array of ``values`` (``json_values``), as orjson writes it."""
    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        values = np.ascontiguousarray(values if kind in "biu" else values.astype(np.float64, copy=False)).ravel()
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)


def iso_datetimes(ts_us: np.ndarray) -> list[str]:
    """``datetime.isoformat()`` of each time (µs since the epoch, naive UTC): to the second, with
    the microseconds only when there are some."""
    return iso_texts(ts_us).strings()


_EPOCH = dt.datetime(1970, 1, 1)


#: The times ``datetime`` and ``iso_texts``' compiled loop write: ``datetime``'s years (1-9999).
_ISO_RANGE = (-62135596800_000_000, 253402300799_999_999)


def iso_texts(ts_us: np.ndarray) -> Texts:
    """``iso_datetimes`` as ``Texts``: a few by ``datetime``, a batch by a compiled loop (numpy's
    texts of a batch's times cost 0.9 µs a time here); times outside ``datetime``'s years by numpy."""
    times = np.asarray(ts_us, dtype=np.int64)
    if len(times) <= SMALL:
        return Texts.of_items([iso_text(t) for t in times.tolist()])
    if _ISO_RANGE[0] <= times.min() and times.max() <= _ISO_RANGE[1]:
        from fraudflow.store.online.text_kernel import iso_datetimes as write

        return Texts(*write(times))
    return Texts.fixed(_iso_datetimes(times).astype(np.bytes_))


def iso_text(ts_us: int) -> bytes:
    """``iso_texts`` of one time."""
    if _ISO_RANGE[0] <= ts_us <= _ISO_RANGE[1]:
        return (_EPOCH + dt.timedelta(microseconds=ts_us)).isoformat().encode()
    return str(_iso_datetimes(np.array([ts_us]))[0]).encode()


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
