"""Request and response bodies of the service, with precise validation."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictFloat,
    StrictInt,
    Tag,
    field_validator,
)

from fraudflow.records import Transaction

MAX_BATCH = 1000


#: The years a TX_DATETIME may be written in (published as a pattern, so the schema says it too).
YEARS = "^(19[7-9][0-9]|2[01][0-9][0-9])-"


def _iso_datetime(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time string such as 2018-10-01T08:30:00")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time (e.g. 2018-10-01T08:30:00)") from None
    if not 1970 <= parsed.year <= 2199:  # as written: the published pattern can only see that
        raise ValueError(f"{value!r} is outside 1970..2199")
    if parsed.tzinfo is not None:  # the lake's datetimes are naive: keep the UTC wall time
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def _whole_number(value: object) -> object:
    """JSON Schema counts 7.0 as an integer, so the service takes it as 7 (strings and bools stay refused).

    Above 2**53 a JSON parser may already have rounded a number written with a fraction or an
    exponent: send such ids as digits only.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


IsoDatetime = Annotated[dt.datetime, BeforeValidator(_iso_datetime), Field(json_schema_extra={"pattern": YEARS})]
NonNegativeId = Annotated[StrictInt, Field(ge=0, lt=2**62), BeforeValidator(_whole_number)]


class TransactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    TRANSACTION_ID: NonNegativeId
    TX_DATETIME: IsoDatetime
    CUSTOMER_ID: NonNegativeId
    TERMINAL_ID: NonNegativeId
    TX_AMOUNT: Annotated[StrictFloat, Field(ge=0, le=1e12)]  # ints too (as floats); the bounds published

    @field_validator("TX_AMOUNT")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return float(v)

    def transaction(self) -> Transaction:
        """The transaction this body describes."""
        return Transaction(self.TRANSACTION_ID, self.TX_DATETIME, self.CUSTOMER_ID, self.TERMINAL_ID, self.TX_AMOUNT)


class Contribution(BaseModel):
    feature: str
    contribution: float


class ScoreOut(BaseModel):
    TRANSACTION_ID: int
    score: float
    alert: bool
    threshold: float
    model_id: str
    features: dict[str, float]
    top_features: list[Contribution]
    duplicate: bool = Field(description="true when this TRANSACTION_ID was answered before (counted once)")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactions: Annotated[list[TransactionIn], Field(min_length=1, max_length=MAX_BATCH)]


class BatchOut(BaseModel):
    results: list[ScoreOut]


def _invocation_kind(body: object) -> str:
    """``batch`` for a body with ``transactions``, else ``transaction``: each kind is then validated
    alone, so a refusal names the fields of the kind that was sent."""
    return "batch" if isinstance(body, dict) and "transactions" in body else "transaction"


#: The body of SageMaker's ``POST /invocations``: one transaction (as /v1/score) or a batch (as /v1/score/batch).
Invocation = Annotated[
    Annotated[TransactionIn, Tag("transaction")] | Annotated[BatchIn, Tag("batch")],
    Discriminator(_invocation_kind),
]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    TRANSACTION_ID: NonNegativeId
    TX_FRAUD: Annotated[StrictInt, Field(ge=0, le=1), BeforeValidator(_whole_number)]


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: Annotated[list[LabelIn], Field(min_length=1, max_length=100_000)]


class LabelsOut(BaseModel):
    accepted: int


class ErrorOut(BaseModel):
    """An error the service explains in one sentence (400, 401, 409, 413, 503)."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidOut(BaseModel):
    """422: the fields that failed validation."""

    detail: list[FieldError]


class Health(BaseModel):
    status: str
    model_id: str | None = None
    detail: str | None = None
