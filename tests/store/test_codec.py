"""The stored answer's codec: the hand-written JSON is the JSON of the vector and the request."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from fraudflow.records import Transaction
from fraudflow.store.online import codec

TX = Transaction(12, dt.datetime(2018, 10, 1, 8, 30, 0, 250), 3, 4, 57.1)
REQUEST = {
    "TRANSACTION_ID": 12,
    "TX_DATETIME": "2018-10-01T08:30:00.000250",
    "CUSTOMER_ID": 3,
    "TERMINAL_ID": 4,
    "TX_AMOUNT": 57.1,
}


@pytest.mark.parametrize("extra", [0.1 + 0.2, 1e300, math.inf, math.nan], ids=["float", "large", "inf", "nan"])
def test_encode_writes_the_vector_and_the_request_and_decode_reads_them_back(extra: float) -> None:
    features = {"TX_AMOUNT": 57.1, "TX_DURING_WEEKEND": 0, "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 2, "X": extra}
    text = codec.encode(features, TX)
    assert json.loads(text)["request"] == REQUEST
    stored = codec.decode(text)
    assert stored.request == TX
    assert list(stored.features) == list(features)
    for name, value in features.items():
        got = stored.features[name]
        assert got == value or (math.isnan(got) and math.isnan(value)), name
        assert type(got) is type(value), name
