"""Group commit: concurrent single-transaction requests are scored together, each gets its own answer."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from fraudflow.records import Transaction
from fraudflow.serving.batching import Batcher
from fraudflow.serving.schemas import ScoreOut


class CountingScorer:
    """Answers each transaction with its id as the score's numerator; records the batches it got."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on

    def score(self, txs: list[Transaction]) -> list[ScoreOut]:
        ids = [tx.transaction_id for tx in txs]
        self.batches.append(ids)
        if self.fail_on in ids:
            raise RuntimeError("the store is gone")
        return [
            ScoreOut(
                TRANSACTION_ID=i,
                score=i / 1000,
                alert=False,
                threshold=0.5,
                model_id="m",
                features={},
                duplicate=False,
                top_features=[],
            )
            for i in ids
        ]


def tx(i: int) -> Transaction:
    return Transaction(i, dt.datetime(2018, 4, 1, 0, 0, i % 60), i % 7, i % 11, 10.0 + i)


def test_requests_in_flight_share_one_batch_and_get_their_own_answers() -> None:
    scorer = CountingScorer()
    batcher = Batcher(scorer)

    async def main() -> list[ScoreOut]:
        return await asyncio.gather(*(batcher.score(tx(i)) for i in range(200)))

    answers = asyncio.run(main())
    assert [a.TRANSACTION_ID for a in answers] == list(range(200))
    assert [a.score for a in answers] == [i / 1000 for i in range(200)]
    assert scorer.batches == [list(range(200))]  # one batch, in arrival order


def test_batches_are_capped_and_later_requests_form_the_next() -> None:
    scorer = CountingScorer()
    batcher = Batcher(scorer, max_size=64)

    async def main() -> None:
        await asyncio.gather(*(batcher.score(tx(i)) for i in range(150)))
        await batcher.score(tx(999))

    asyncio.run(main())
    assert [len(b) for b in scorer.batches] == [64, 64, 22, 1]
    assert [i for b in scorer.batches for i in b] == [*range(150), 999]


def test_a_failed_batch_fails_each_of_its_requests_and_not_the_next() -> None:
    scorer = CountingScorer(fail_on=3)
    batcher = Batcher(scorer)

    async def main() -> tuple[list[object], ScoreOut]:
        failed = await asyncio.gather(*(batcher.score(tx(i)) for i in range(5)), return_exceptions=True)
        return failed, await batcher.score(tx(7))

    failed, later = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in failed)
    assert later.TRANSACTION_ID == 7


@pytest.mark.parametrize("n", [1, 2])
def test_a_lone_request_is_scored_alone(n: int) -> None:
    scorer = CountingScorer()
    batcher = Batcher(scorer)

    async def main() -> None:
        for i in range(n):
            await batcher.score(tx(i))

    asyncio.run(main())
    assert scorer.batches == [[i] for i in range(n)]
