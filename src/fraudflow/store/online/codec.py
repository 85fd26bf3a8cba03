"""The stored answer's codec: what the online store keeps of an answered transaction, as JSON text.

    {"features": {"<name>": <value>, ...},
     "request": {"TRANSACTION_ID": …, "TX_DATETIME": "<ISO 8601>", "CUSTOMER_ID": …, "TERMINAL_ID": …,
                 "TX_AMOUNT": …}}

The served feature vector gives a transaction sent again its first answer; the request lets the
consistency job recompute the vector in batch. The stores keep the text as it is (``Recorded.answer``,
``answers``); ``Encoder`` (and ``encode``) and ``decode`` are the only writer and reader of its fields.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fraudflow.records import Transaction


@dataclass(frozen=True)
class StoredAnswer:
    """An answered transaction as stored: the feature vector it was served, and the transaction."""

    features: dict[str, float]
    request: Transaction


class Encoder:
    """Stored answers of one feature set's vectors: the JSON text of the names written once.

    On every request's path, so written by hand (several times faster than ``json.dumps``): the
    vector's text is one %-template over the values, whose ``repr`` is valid JSON when finite.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._template = "{" + ",".join(f"{json.dumps(name)}:%r" for name in self.names) + "}"

    def vector(self, values: Sequence[float]) -> str:
        """The JSON object of a feature vector (Python floats, in ``names`` order)."""
        if not math.isfinite(sum(values)):  # any inf or nan (or an overflow): the careful way
            return json.dumps(dict(zip(self.names, values, strict=True)), separators=(",", ":"))
        return self._template % tuple(values)

    @staticmethod
    def answer(vector: str, tx: Transaction) -> str:
        """The stored answer of ``tx``, served the vector whose JSON text is ``vector``."""
        request = (
            f'"TRANSACTION_ID":{tx.transaction_id},"TX_DATETIME":"{tx.tx_datetime.isoformat()}",'
            f'"CUSTOMER_ID":{tx.customer_id},"TERMINAL_ID":{tx.terminal_id},"TX_AMOUNT":{float(tx.amount)!r}'
        )
        return f'{{"features":{vector},"request":{{{request}}}}}'


def encode(features: Mapping[str, float], tx: Transaction) -> str:
    """The stored answer of ``tx`` served ``features``, as JSON text."""
    return Encoder.answer(Encoder(list(features)).vector(list(features.values())), tx)


def decode(text: str) -> StoredAnswer:
    """The feature vector and transaction a stored answer holds."""
    stored = json.loads(text)
    request = stored["request"]
    tx = Transaction(
        request["TRANSACTION_ID"],
        dt.datetime.fromisoformat(request["TX_DATETIME"]),
        request["CUSTOMER_ID"],
        request["TERMINAL_ID"],
        float(request["TX_AMOUNT"]),
    )
    return StoredAnswer(stored["features"], tx)


def _request(tx: Transaction) -> dict[str, object]:
    return {
        "TRANSACTION_ID": tx.transaction_id,
        "TX_DATETIME": tx.tx_datetime.isoformat(),
        "CUSTOMER_ID": tx.customer_id,
        "TERMINAL_ID": tx.terminal_id,
        "TX_AMOUNT": float(tx.amount),
    }
