"""``RedisStore``: the online store in Redis, shared by service processes on several hosts."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from fraudflow.errors import ConfigError, LakeError
from fraudflow.records import CUSTOMER, TERMINAL, Events, Transaction
from fraudflow.store.online.interface import KIND_CODES, EventRow

# Atomic commit: refuse a TRANSACTION_ID answered before; else add the event to both entities,
# trim each entity's history, store the answer. KEYS: answers, customer zset, terminal zset.
COMMIT_SCRIPT = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
for i = 2, 3 do
  redis.call('ZADD', KEYS[i], ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[3 + i])
end
return 1
"""


class RedisStore:
    """Redis: shared by several service processes. Events are sorted sets scored by time."""

    def __init__(self, url: str, namespace: str = "fraudflow") -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ConfigError("the Redis online store needs the redis extra: pip install 'fraudflow[redis]'") from exc
        self._r: Any = redis.Redis.from_url(url)
        self.ns = namespace
        try:
            self._r.ping()
        except redis.RedisError as exc:
            raise LakeError(f"{url}: cannot reach Redis: {exc}") from exc
        self._commit = self._r.register_script(COMMIT_SCRIPT)
        self._lock = threading.RLock()

    def exclusive(self) -> AbstractContextManager[object]:
        return self._lock

    def _key(self, kind: str, entity: int) -> str:
        return f"{self.ns}:ev:{KIND_CODES[kind]}:{entity}"

    @staticmethod
    def _member(tx_id: int, amount: float) -> str:
        return f"{tx_id}:{float(amount)!r}"

    def events(self, kind: str, entity: int, since_us: int) -> Events:
        raw = self._r.zrangebyscore(self._key(kind, entity), f"({since_us}", "+inf", withscores=True)
        parsed = []
        for member, score in raw:
            tx_id, amount = member.decode().split(":", 1)
            parsed.append((int(score), int(tx_id), float(amount)))
        parsed.sort(key=lambda e: (e[0], e[1]))
        labels = self._r.hmget(f"{self.ns}:labels", [e[1] for e in parsed]) if parsed else []
        return Events.from_rows(
            [(t, i, a, int(v) if v is not None else 0) for (t, i, a), v in zip(parsed, labels, strict=True)]
        )

    def answer(self, tx_id: int) -> str | None:
        v = self._r.hget(f"{self.ns}:answers", tx_id)
        return None if v is None else v.decode()

    def commit(self, tx: Transaction, answer: str, keep_us: dict[str, int]) -> bool:
        t = tx.ts_us
        keys = [f"{self.ns}:answers", self._key(CUSTOMER, tx.customer_id), self._key(TERMINAL, tx.terminal_id)]
        # scores are microseconds (exact in a double up to 2**53: until the year 2255)
        args: list[str | int] = [
            tx.transaction_id,
            answer,
            t,
            self._member(tx.transaction_id, tx.amount),
            f"{t - keep_us.get(CUSTOMER, 0)}",
            f"{t - keep_us.get(TERMINAL, 0)}",
        ]
        return bool(self._commit(keys=keys, args=args))

    def add_labels(self, labels: dict[int, int]) -> int:
        if labels:
            self._r.hset(f"{self.ns}:labels", mapping={str(k): v for k, v in labels.items()})
        return len(labels)

    def load(self, rows: Iterable[EventRow], labels: dict[int, int]) -> int:
        n = 0
        pipe = self._r.pipeline(transaction=False)
        for ts, tx_id, customer, terminal, amount in rows:
            member = self._member(tx_id, amount)
            pipe.zadd(self._key(CUSTOMER, customer), {member: ts})
            pipe.zadd(self._key(TERMINAL, terminal), {member: ts})
            n += 1
            if n % 10_000 == 0:
                pipe.execute()
        pipe.execute()
        self.add_labels(labels)
        return n

    def get_meta(self, key: str) -> str | None:
        v = self._r.hget(f"{self.ns}:meta", key)
        return None if v is None else v.decode()

    def set_meta(self, key: str, value: str) -> None:
        self._r.hset(f"{self.ns}:meta", key, value)

    def answers(self) -> Iterable[tuple[int, str]]:
        return sorted((int(k), v.decode()) for k, v in self._r.hgetall(f"{self.ns}:answers").items())

    def clear(self) -> None:
        keys = list(self._r.scan_iter(f"{self.ns}:*"))
        for i in range(0, len(keys), 1000):
            self._r.delete(*keys[i : i + 1000])

    def close(self) -> None:
        self._r.close()
