"""Group commit for single-transaction requests: the requests in flight are scored as one batch.

The routes run on one event loop. A request that reaches the scorer joins the pending group; the
group is scored once the loop has run everything else that was ready (``call_soon``), so every
request the server parsed meanwhile is in it. One batch means one store commit (one SQLite
transaction, one Redis round trip) and one model call for all of them; under light load a group is
one request and costs one loop turn more. Each answer leaves only after its batch is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from fraudflow.records import Transaction

A = TypeVar("A")
A_co = TypeVar("A_co", covariant=True)


class Scores(Protocol[A_co]):
    """What the batcher needs of a scorer (``engine.Scorer`` is one): answers, in order."""

    def score(self, txs: Sequence[Transaction]) -> Sequence[A_co]: ...


class Batcher(Generic[A]):
    """Scores single transactions in groups of at most ``max_size``, in arrival order."""

    def __init__(self, scorer: Scores[A], max_size: int = 1000) -> None:
        self.scorer = scorer
        self.max_size = max_size
        self._pending: list[tuple[Transaction, asyncio.Future[A]]] = []

    async def score(self, tx: Transaction) -> A:
        """The answer to ``tx``, scored with the other requests in flight."""
        return await self.submit(tx)

    def submit(self, tx: Transaction) -> asyncio.Future[A]:
        """``score`` for a caller that is not a coroutine (the HTTP protocol's callbacks): the future
        of the answer, set once its batch is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[A] = loop.create_future()
        self._pending.append((tx, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        elif len(self._pending) >= self.max_size:
            self._flush()
        return future

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        if not group:
            return
        try:
            answers = self.scorer.score([tx for tx, _ in group])
        except Exception as exc:  # the whole batch failed (its commit did not happen): each request says so
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(group, answers, strict=True):
            if not future.done():  # a client that went away
                future.set_result(answer)
