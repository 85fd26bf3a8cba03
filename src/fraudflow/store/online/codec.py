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

from fraudflow.records import Transaction


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

    def vectors(self, matrix: np.ndarray) -> list[str]:
        """The JSON objects of a batch's feature vectors (rows of ``matrix``, columns in ``names`` order)."""
        if len(matrix) < 8 or not np.isfinite(matrix).all():  # a few rows, or an inf or a nan: row by row
            return [self.vector(values) for values in matrix.tolist()]
        template = self._template
        return [template % tuple(values) for values in matrix.tolist()]

    @staticmethod
    def answer(vector: str, tx: Transaction, served: str = "") -> str:
        """The stored answer of ``tx``, served the vector whose JSON text is ``vector`` (and the
        model's answer whose text is ``served``, from ``served_text``)."""
        request = (
            f'"TRANSACTION_ID":{tx.transaction_id},"TX_DATETIME":"{tx.tx_datetime.isoformat()}",'
            f'"CUSTOMER_ID":{tx.customer_id},"TERMINAL_ID":{tx.terminal_id},"TX_AMOUNT":{float(tx.amount)!r}'
        )
        served = f',"served":{served}' if served else ""
        return f'{{"features":{vector},"request":{{{request}}}{served}}}'

    @staticmethod
    def served_text(score: float, alert: bool, threshold: float, model_id_json: str, at_iso: str) -> str:
        """The JSON object of the model's answer (``model_id_json``: the id already as JSON text)."""
        return Encoder.served_template(threshold, model_id_json, at_iso) % (repr(score), "true" if alert else "false")

    @staticmethod
    def served_template(threshold: float, model_id_json: str, at_iso: str) -> str:
        """``served_text`` of a batch (one model, threshold and time) as a %-template of the score's
        text and the alert's (``true``/``false``): what is the same for every answer, written once."""
        model_id = model_id_json.replace("%", "%%")
        return f'{{"score":%s,"alert":%s,"threshold":{threshold!r},"model_id":{model_id},"at":"{at_iso}"}}'


def encode(features: Mapping[str, float], tx: Transaction, served: Served | None = None) -> str:
    """The stored answer of ``tx`` served ``features`` (and the model's answer ``served``), as JSON text."""
    text = (
        ""
        if served is None
        else Encoder.served_text(
            served.score, served.alert, served.threshold, json.dumps(served.model_id), served.at.isoformat()
        )
    )
    return Encoder.answer(Encoder(list(features)).vector(list(features.values())), tx, text)


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
