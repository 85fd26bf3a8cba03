"""The answers' JSON text written a batch at a time (``codec.json_values``, ``Rows``, ``Encoder``):
the same numbers, to the last bit, and the same text as one answer written alone."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest

from fraudflow.records import ONE_US, Transaction, TxColumns
from fraudflow.store.online import codec

NAMES = ["TX_AMOUNT", "CUSTOMER_ID_NB_TX_1DAY_WINDOW", "TERMINAL_ID_RISK_7DAY_WINDOW", 'odd "name" %s\\']
#: Floats whose shortest text is written in each of its forms: exponents both ways, subnormal, -0.0.
AWKWARD = [0.1 + 0.2, 1e-5, 2.5e-7, 1e16, 1.2345678901234568e17, 1e300, 5e-324, -0.0, 76.0, 2**53 + 2.0, -1.5e-300]


def random_floats(n: int) -> np.ndarray:
    """``n`` finite float64 of every magnitude (random bit patterns)."""
    bits = np.random.default_rng(7).integers(0, 2**64, size=n, dtype=np.uint64)
    values = bits.view(np.float64)
    return values[np.isfinite(values)]


def test_json_values_read_back_as_the_same_float64_ints_and_bools() -> None:
    values = np.concatenate([random_floats(20_000), AWKWARD])
    texts = codec.json_values(values)
    assert len(texts) == len(values)
    back = np.array([json.loads(t) for t in texts], dtype=np.float64)
    assert back.tobytes() == values.tobytes()  # bit for bit, -0.0 included
    assert codec.json_values(values.tolist()) == texts  # Python floats: the same writer
    assert codec.json_values(np.array([[3, 2**62], [0, -1]])) == ["3", str(2**62), "0", "-1"]
    assert codec.json_values(np.array([True, False])) == ["true", "false"]
    assert codec.json_values(np.zeros(0)) == []


def test_a_batch_of_vectors_is_each_vector_written_alone() -> None:
    rows = np.array(AWKWARD[:8] + AWKWARD[3:] + random_floats(4 * 5000)[: 4 * 3].tolist()).reshape(-1, 4)
    encoder = codec.Encoder(NAMES)
    texts = encoder.vectors(rows)
    assert texts == [encoder.vector(row) for row in rows.tolist()]
    for text, row in zip(texts, rows.tolist(), strict=True):
        parsed = json.loads(text)
        assert list(parsed) == NAMES
        assert np.array(list(parsed.values())).tobytes() == np.array(row).tobytes()
    with_nan = rows.copy()
    with_nan[1, 2] = math.nan
    careful = encoder.vectors(with_nan)
    assert careful[0] == texts[0] and math.isnan(json.loads(careful[1])[NAMES[2]])


@pytest.mark.parametrize("served", [True, False], ids=["model", "no-model"])
def test_a_batch_of_stored_answers_is_each_answer_encoded_alone(served: bool) -> None:
    at = dt.datetime(2026, 11, 27, 7, 30, 1, 5)
    txs = [
        Transaction(1, dt.datetime(2018, 10, 1, 8, 30), 3, 4, 57.1),
        Transaction(2**62 - 1, dt.datetime(2018, 10, 1, 8, 30, 0, 250), 0, 2**40, 0.0),
        Transaction(3, dt.datetime(1970, 1, 1), 5, 6, 1e12),
    ]
    vectors = [{NAMES[0]: 0.1 + 0.2, NAMES[1]: 2.0}, {NAMES[0]: 1e-7, NAMES[1]: 0.0}, {NAMES[0]: 5.0, NAMES[1]: 1e16}]
    scores = [0.25, 0.5000000000000001, 1e-9]
    alerts = [False, True, False]
    expected = [
        codec.encode(v, tx, codec.Served(s, a, 0.5, 'm"1', at) if served else None)
        for v, tx, s, a in zip(vectors, txs, scores, alerts, strict=True)
    ]
    texts = codec.Encoder(list(vectors[0])).vector_texts(np.array([list(v.values()) for v in vectors]))
    numbers = codec.Texts.numbers
    batch = codec.ServedBatch(numbers(np.array(scores)), numbers(np.array(alerts)), 0.5, 'm"1', at) if served else None
    assert codec.Encoder.answers(texts, TxColumns.of(txs), batch).strings() == expected
    for text, tx, v, s in zip(expected, txs, vectors, scores, strict=True):
        stored = codec.decode(text)
        assert stored.request == tx and stored.features == v
        assert stored.served == (codec.Served(s, s >= 0.5, 0.5, 'm"1', at) if served else None)


def test_iso_datetimes_are_isoformat() -> None:
    times = [
        dt.datetime(2018, 10, 1, 8, 30),
        dt.datetime(2018, 10, 1, 8, 30, 0, 250),
        dt.datetime(2199, 12, 31, 23, 59, 59),
    ]
    ts = np.array(times, dtype="datetime64[us]").astype(np.int64)
    assert codec.iso_datetimes(ts) == [t.isoformat() for t in times]
    assert codec.iso_datetimes(ts[[0, 2]]) == [times[0].isoformat(), times[2].isoformat()]


def test_rows_fill_a_template_for_each_row() -> None:
    slot = codec.SLOT
    rows = codec.Rows(f"[{slot},{slot}]")
    assert rows.write([codec.Texts.numbers(np.array([[1, 2], [3, 4]]))], 2).strings() == ["[1,2]", "[3,4]"]
    assert rows.write([codec.Texts.of(["1", "3"]), codec.Texts.of(["2", "4"])], 2).strings() == ["[1,2]", "[3,4]"]
    assert rows.write([codec.Texts.numbers(np.zeros(0))], 0).strings() == []
    assert codec.Rows("{}").write([], 2).strings() == ["{}", "{}"]
    with pytest.raises(ValueError, match="3 values a row for a template of 2"):
        rows.write([codec.Texts.numbers(np.arange(6))], 2)


def test_texts_of_each_kind_read_back_as_given() -> None:
    """Numbers (``json_values``' texts), strings (UTF-8), fixed-width bytes, taken, zipped, joined."""
    values = np.concatenate([random_floats(2000), AWKWARD])
    numbers = codec.Texts.numbers(values)
    assert numbers.strings() == codec.json_values(values)
    words = ["a", "", '"é"', "{}"]
    texts = codec.Texts.of(words)
    assert texts.strings() == words and codec.Texts.of([]).strings() == []
    assert texts.take(np.array([[3, 0], [2, 2]])).strings() == ["{}", "a", '"é"', '"é"']
    assert codec.Texts.fixed(np.array([b"ab", b"", b"abc"])).strings() == ["ab", "", "abc"]
    pairs = codec.Texts.zip(texts.take(np.array([0, 1, 2, 3])), codec.Texts.numbers(np.array([1, 2, 3, 4])), 2)
    assert pairs.strings() == ["a", "1", "", "2", '"é"', "3", "{}", "4"]
    assert texts.joined(b",") == ",".join(words).encode()
    assert pairs.joined(b";") == ";".join(pairs.strings()).encode()
    with pytest.raises(ValueError, match="newline"):
        codec.Texts.of(["a\nb"])


def test_a_template_with_a_non_ascii_name_is_written_as_orjson_writes_it() -> None:
    encoder = codec.Encoder(["é", 'q"'])
    rows = np.array([[1.0, 0.1 + 0.2], [1e-7, 2.0]])
    assert encoder.vectors(rows) == [encoder.vector(row) for row in rows.tolist()]


@pytest.mark.parametrize("n", [1, 3, 16, 17, 40])
def test_small_batches_kept_as_lists_are_written_as_arrays_write_them(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of up to ``codec.SMALL`` texts is kept and written as lists of bytes (one request's
    answer); the same batch written by the arrays and the compiled loop gives the same text."""
    rng = np.random.default_rng(n)
    matrix = random_floats(4 * n * 3)[: 4 * n].reshape(n, 4)
    txs = TxColumns.of(
        [
            Transaction(int(i), dt.datetime(2018, 10, 1) + dt.timedelta(microseconds=int(us)), int(i) % 7, 9, 1.5 * i)
            for i, us in zip(rng.integers(0, 2**62, n), rng.integers(0, 10**12, n) * rng.integers(0, 2, n), strict=True)
        ]
    )
    names = codec.Texts.of(['"a"', '"b"', '"c"', '"d"'])
    order = rng.integers(0, 4, size=(n, 3))

    def written() -> list[list[str]]:
        numbers = codec.Texts.numbers
        vectors = codec.Encoder(NAMES).vector_texts(matrix)
        scores, alerts = numbers(matrix[:, 0]), numbers(matrix[:, 1] > 0)
        tops = codec.Texts.zip(names.take(order), numbers(matrix[:, :3]), n)
        body = codec.Rows("{" + ",".join([codec.SLOT] * 8) + "}").write([scores, vectors, tops], n)
        at = dt.datetime(2026, 11, 27, 11, 0, 0, 7)
        stored = codec.Encoder.answers(vectors, txs, codec.ServedBatch(scores, alerts, 0.25, "m", at))
        return [vectors.strings(), body.strings(), [body.joined(b",").decode()], stored.strings(), tops.strings()]

    monkeypatch.setattr(codec, "SMALL", 0)  # every batch by the arrays
    by_arrays = written()
    monkeypatch.setattr(codec, "SMALL", 10**9)  # every batch as lists
    assert written() == by_arrays
    assert [json.loads(text)["request"]["TX_DATETIME"] for text in by_arrays[3]] == codec.iso_datetimes(txs.ts_us)


def test_iso_texts_are_isoformat_for_every_year_of_datetime() -> None:
    """The compiled calendar against ``datetime``: random times over years 1-9999 (leap days, the
    century rules), each end, whole seconds and not; times beyond ``datetime`` by numpy, as before."""
    rng = np.random.default_rng(5)
    first, last = (
        (dt.datetime.min - dt.datetime(1970, 1, 1)) // ONE_US,
        (dt.datetime.max - dt.datetime(1970, 1, 1)) // ONE_US,
    )
    leap_days = [dt.datetime(y, 2, 29, 23, 59, 59) for y in (4, 400, 1600, 2000, 2024, 9996)]
    special = [first, last, 0, -1, *((t - dt.datetime(1970, 1, 1)) // ONE_US for t in leap_days)]
    ts = np.concatenate(
        [rng.integers(first, last, 100_000), rng.integers(first // 10**6, last // 10**6, 1000) * 10**6, special]
    )
    expected = [(dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=t)).isoformat() for t in ts.tolist()]
    assert codec.iso_texts(ts).strings() == expected
    beyond = np.array([last + 1, 0])
    assert codec.iso_texts(beyond).strings() == ["10000-01-01T00:00:00", "1970-01-01T00:00:00"]
