"""Request and response bodies of the service, with precise validation."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictInt, field_validator

MAX_BATCH = 1000


def _iso_datetime(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time string such as 2018-10-01T08:30:00")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time (e.g. 2018-10-01T08:30:00)") from None
    if parsed.tzinfo is not None:  # the lake's datetimes are naive: keep the UTC wall time
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if not dt.datetime(1970, 1, 1) <= parsed < dt.datetime(2200, 1, 1):
        raise ValueError(f"{value!r} is outside 1970..2199")
    return parsed


IsoDatetime = Annotated[dt.datetime, BeforeValidator(_iso_datetime)]
NonNegativeId = Annotated[StrictInt, Field(ge=0, lt=2**62)]


class TransactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    TRANSACTION_ID: NonNegativeId
    TX_DATETIME: IsoDatetime
    CUSTOMER_ID: NonNegativeId
    TERMINAL_ID: NonNegativeId
    TX_AMOUNT: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1e12)]

    @field_validator("TX_AMOUNT")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return float(v)


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


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    TRANSACTION_ID: NonNegativeId
    TX_FRAUD: Annotated[StrictInt, Field(ge=0, le=1)]


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: Annotated[list[LabelIn], Field(min_length=1, max_length=100_000)]


class LabelsOut(BaseModel):
    accepted: int


class Health(BaseModel):
    status: str
    model_id: str | None = None
    detail: str | None = None
