"""``RedisStore``: the online store in Redis, shared by service processes on several hosts.

The log: ``seq`` (a counter), ``log`` (a sorted set by seq of entries ``seq,T,tx_id,ts,customer,
terminal,amount`` and ``seq,L,tx_id,fraud``), ``logts`` (the same entries by time, to trim),
``txseq`` (TRANSACTION_ID -> seq while its entry is in the log), ``answers`` and ``answer_seqs``
(TRANSACTION_ID -> answer, seq), ``labels`` (TRANSACTION_ID -> fraud), ``newest`` (the newest
transaction's time: a label entry's, for trimming), ``answers_to`` (the time up to which answers
were forgotten, in a window shorter than the log's). ``record`` appends a batch and reads the
entries after ``since`` in one Lua script (atomic: no other process's entry comes between), and
stores its answers in one more (both hashes at once). Durable as Redis is configured to be (AOF with
``appendfsync``). One Redis (or a primary and its replicas), not a cluster: a script's keys are on
one node. A namespace written before the store was a log (answers without a seq) is refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fraudflow.errors import ConfigError, LakeError
from fraudflow.records import TxColumns
from fraudflow.store.online.interface import (
    CaughtUp,
    EventRow,
    LabelEntry,
    Recorded,
    TxEntry,
    columns,
    forget_limit,
    forget_times,
)

# Commands over many fields in slices (Lua's unpack has a stack limit of a few thousand values).
LUA_HELPERS = """
local function hmget(key, fields)
  local out = {}
  for a = 1, #fields, 1000 do
    local part = redis.call('HMGET', key, unpack(fields, a, math.min(a + 999, #fields)))
    for j = 1, #part do out[a + j - 1] = part[j] end
  end
  return out
end
local function each_slice(command, key, args, per)
  for a = 1, #args, 1000 * per do
    redis.call(command, key, unpack(args, a, math.min(a + 1000 * per - 1, #args)))
  end
end
"""

# Append a batch and read the log: KEYS seq, log, logts, txseq, answers, answer_seqs, labels, newest,
# answers_to; ARGV since ('': read nothing), cutoff (trim entries at or before it; '': none), the batch
# (lines "tx_id,ts,customer,terminal,amount"), the answers' window (forget the answers of transactions
# that much older than the newest, from answers_to on, a bounded number a call; '': none), the latest
# time that moves the answers' window (``interface.forget_limit``; '' with no window). Returns, as
# text (a few long strings travel faster than thousands of short ones): the batch's seqs ("s,s,…"), new flags
# ("1" or "0" each), the stored answers of the answered ones ({index, answer, …}), labels ("f,f,…");
# the entries after since (before this batch's; lines) and their transactions' labels ("f,f,…"), the
# answers' cutoff ('': none).
RECORD_SCRIPT = (
    LUA_HELPERS
    + """
local ids, lines = {}, {}
for line in string.gmatch(ARGV[3], '[^\\n]+') do
  ids[#ids + 1], lines[#lines + 1] = string.match(line, '^([^,]+),'), line
end
local n = #ids
local answers, recorded, fraud = hmget(KEYS[5], ids), hmget(KEYS[4], ids), hmget(KEYS[7], ids)
local caught, caught_fraud = {}, {}
if ARGV[1] ~= '' then
  caught = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
  local caught_ids = {}
  for _, e in ipairs(caught) do
    local id = string.match(e, '^%d+,T,(%-?%d+),')
    if id then caught_ids[#caught_ids + 1] = id end
  end
  caught_fraud = hmget(KEYS[7], caught_ids)
end
-- an answer's seq, a recorded transaction's, or a new one (relative, negative, until the counter moves)
local seqs, new, given, count, duplicates, answered = {}, {}, {}, 0, {}, {}
for i = 1, n do
  new[i] = '0'
  if answers[i] then
    duplicates[#duplicates + 1], duplicates[#duplicates + 2] = i - 1, answers[i]
    answered[#answered + 1] = i
  elseif recorded[i] then seqs[i] = tonumber(recorded[i])
  elseif given[ids[i]] then seqs[i] = -given[ids[i]]
  else count = count + 1; given[ids[i]] = count; seqs[i] = -count; new[i] = '1' end
end
local answered_ids = {}
for j, i in ipairs(answered) do answered_ids[j] = ids[i] end
for j, seq in ipairs(hmget(KEYS[6], answered_ids)) do seqs[answered[j]] = tonumber(seq) or 0 end
local base = redis.call('INCRBY', KEYS[1], count) - count
local newest = tonumber(redis.call('GET', KEYS[8]) or '0')
local by_seq, by_time, seq_of = {}, {}, {}
for i = 1, n do
  if seqs[i] < 0 then seqs[i] = base - seqs[i] end
  seqs[i] = string.format('%d', seqs[i])
  if new[i] == '1' then
    local entry = seqs[i] .. ',T,' .. lines[i]
    local ts = string.match(lines[i], '^[^,]+,([^,]+),')
    by_seq[#by_seq + 1], by_seq[#by_seq + 2] = seqs[i], entry
    by_time[#by_time + 1], by_time[#by_time + 2] = ts, entry
    seq_of[#seq_of + 1], seq_of[#seq_of + 2] = ids[i], seqs[i]
    newest = math.max(newest, tonumber(ts))
  end
  fraud[i] = fraud[i] or '0'
end
if count > 0 then
  each_slice('ZADD', KEYS[2], by_seq, 2)
  each_slice('ZADD', KEYS[3], by_time, 2)
  each_slice('HSET', KEYS[4], seq_of, 2)
  redis.call('SET', KEYS[8], string.format('%d', newest))
end
if ARGV[2] ~= '' then
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2], 'LIMIT', 0, 1000 + 2 * n)
  each_slice('ZREM', KEYS[2], old, 1)
  each_slice('ZREM', KEYS[3], old, 1)
  for _, e in ipairs(old) do
    local seq, id = string.match(e, '^(%d+),T,(%-?%d+),')
    if id and redis.call('HGET', KEYS[4], id) == seq then
      redis.call('HDEL', KEYS[4], id)
      -- its answer and its label go with it: the store stays bounded
      if redis.call('HGET', KEYS[6], id) == seq then
        redis.call('HDEL', KEYS[5], id)
        redis.call('HDEL', KEYS[6], id)
      end
      redis.call('HDEL', KEYS[7], id)
    end
  end
end
local answers_cut = ''
if ARGV[4] ~= '' then
  answers_cut = string.format('%d', math.min(newest, tonumber(ARGV[5])) - tonumber(ARGV[4]))
  local from = redis.call('GET', KEYS[9])
  if not from or tonumber(from) < tonumber(answers_cut) then
    local limit = 1000 + 2 * n
    local old = redis.call('ZRANGEBYSCORE', KEYS[3], from and '(' .. from or '-inf', answers_cut,
                           'WITHSCORES', 'LIMIT', 0, limit)
    for j = 1, #old, 2 do
      local seq, id = string.match(old[j], '^(%d+),T,(%-?%d+),')
      if id and redis.call('HGET', KEYS[6], id) == seq then
        redis.call('HDEL', KEYS[5], id)
        redis.call('HDEL', KEYS[6], id)
      end
    end
    -- up to the cutoff, or (a full page) to just before the last time read: the next call goes on from there
    local to = answers_cut
    if #old == 2 * limit then to = string.format('%d', tonumber(old[#old]) - 1) end
    redis.call('SET', KEYS[9], to)
  end
end
for j = 1, #caught_fraud do caught_fraud[j] = caught_fraud[j] or '0' end
return {table.concat(seqs, ','), table.concat(new), duplicates, table.concat(fraud, ','),
        table.concat(caught, '\\n'), table.concat(caught_fraud, ','), answers_cut}
"""
)

# Store a batch's answers (an answered TRANSACTION_ID keeps its first): KEYS answers, answer_seqs;
# ARGV lines "tx_id,seq,length" and the answers, one after the other.
ANSWER_SCRIPT = """
local at = 1
for id, seq, length in string.gmatch(ARGV[1], '([^,\\n]+),([^,\\n]+),(%d+)') do
  local text = string.sub(ARGV[2], at, at + length - 1)
  at = at + length
  if redis.call('HSETNX', KEYS[1], id, text) == 1 then redis.call('HSET', KEYS[2], id, seq) end
end
"""

# Keep labels and append them to the log: KEYS seq, log, logts, labels, newest; ARGV the latest time a
# label entry takes (``interface.forget_limit``: its time is the newest transaction's, up to that),
# then tx_id, fraud, ...
LABELS_SCRIPT = (
    LUA_HELPERS
    + """
local limit = table.remove(ARGV, 1)
local n = #ARGV / 2
local base = redis.call('INCRBY', KEYS[1], n) - n
local newest = string.format('%d', math.min(tonumber(redis.call('GET', KEYS[5]) or '0'), tonumber(limit)))
local by_seq, by_time = {}, {}
for i = 1, n do
  local seq = string.format('%d', base + i)
  local entry = seq .. ',L,' .. ARGV[2 * i - 1] .. ',' .. ARGV[2 * i]
  by_seq[2 * i - 1], by_seq[2 * i] = seq, entry
  by_time[2 * i - 1], by_time[2 * i] = newest, entry
end
each_slice('ZADD', KEYS[2], by_seq, 2)
each_slice('ZADD', KEYS[3], by_time, 2)
each_slice('HSET', KEYS[4], ARGV, 2)
return n
"""
)

#: The log's keys (in the namespace), in the order ``RECORD_SCRIPT`` takes them.
LOG_KEYS = ("seq", "log", "logts", "txseq", "answers", "answer_seqs", "labels", "newest", "answers_to")
#: Log entries a ``catch_up`` reads per round trip.
PAGE = 10_000
#: Transactions ``load`` appends per script.
LOAD_CHUNK = 1000


class RedisStore:
    """Redis: shared by several service processes and hosts."""

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
        self._record = self._r.register_script(RECORD_SCRIPT)
        self._answer = self._r.register_script(ANSWER_SCRIPT)
        self._labels = self._r.register_script(LABELS_SCRIPT)
        key = self._key_of = {name: f"{namespace}:{name}" for name in LOG_KEYS}
        self._record_keys = [key[k] for k in LOG_KEYS]
        self._label_keys = [key[k] for k in ("seq", "log", "logts", "labels", "newest")]
        read = self._r.pipeline()  # MULTI: both as of one moment
        read.hlen(key["answers"])
        read.hlen(key["answer_seqs"])
        answers, seqs = read.execute()
        if answers != seqs:
            raise LakeError(
                f"{url}: the online store {namespace!r} was written by an earlier fraudflow (answers outside the log);"
                f" delete its keys ({namespace}:*): serving again loads a new one from the lake"
            )

    @contextmanager
    def record(self, txs: TxColumns, since: int, keep_us: int, answers_us: int | None = None) -> Iterator[Recorded]:
        ids = txs.tx_id.tolist()
        cutoff, window = forget_times(int(txs.ts_us.max()) if ids else None, keep_us, answers_us)
        seqs, new, duplicates, fraud, caught, caught_fraud, forgot = self._append(
            txs, str(since), _text(cutoff), _text(window)
        )
        answers_cut = int(forgot) if forgot else cutoff
        answers: list[str | None] = [None] * len(ids)
        for i, text in zip(duplicates[::2], duplicates[1::2], strict=True):
            answers[i] = text.decode()
        recorded = Recorded.of(
            _ints(seqs),
            answers,
            [flag == ord("1") for flag in new],
            _ints(fraud),
            _caught_up(caught.split(b"\n") if caught else [], _ints(caught_fraud), since),
            ids,
        )
        yield recorded
        given = recorded.to_store(txs.ts_us, answers_cut)
        if given:
            texts = [text.encode() for _, _, text in given]
            index = "\n".join(f"{tx_id},{seq},{len(text)}" for (tx_id, seq, _), text in zip(given, texts, strict=True))
            self._answer(keys=[self._key_of["answers"], self._key_of["answer_seqs"]], args=[index, b"".join(texts)])

    def _append(self, txs: TxColumns, since: str, cutoff: str, answers_window: str) -> list[Any]:
        lines = "\n".join(
            f"{tx_id},{ts},{customer},{terminal},{amount!r}"
            for tx_id, ts, customer, terminal, amount in zip(
                txs.tx_id.tolist(),
                txs.ts_us.tolist(),
                txs.customer.tolist(),
                txs.terminal.tolist(),
                txs.amount.tolist(),
                strict=True,
            )
        )
        limit = str(forget_limit()) if answers_window else ""
        reply: list[Any] = self._record(keys=self._record_keys, args=[since, cutoff, lines, answers_window, limit])
        return reply

    def catch_up(self, since: int) -> CaughtUp:
        entries: list[bytes] = []
        after = since
        while True:
            page = self._r.zrangebyscore(self._key_of["log"], f"({after}", "+inf", start=0, num=PAGE)
            entries += page
            if len(page) < PAGE:
                break
            after = int(page[-1].split(b",", 1)[0])
        ids = [e.split(b",", 3)[2] for e in entries if e.split(b",", 2)[1] == b"T"]
        fraud = [v for a in range(0, len(ids), PAGE) for v in self._r.hmget(self._key_of["labels"], ids[a : a + PAGE])]
        return _caught_up(entries, [0 if v is None else int(v) for v in fraud], since)

    def add_labels(self, labels: dict[int, int]) -> int:
        if labels:
            self._labels(keys=self._label_keys, args=[str(forget_limit()), *_flat(labels.items())])
        return len(labels)

    def load(self, rows: Iterable[EventRow], labels: dict[int, int]) -> int:
        """Append the transactions to the log (those recorded before skipped) in slices of
        ``LOAD_CHUNK``, one script each, reading nothing, trimming nothing; then the labels."""
        n = 0
        it = iter(rows)
        while chunk := list(itertools.islice(it, LOAD_CHUNK)):
            self._append(columns(chunk), "", "", "")
            n += len(chunk)
        self.add_labels(labels)
        return n

    def get_meta(self, key: str) -> str | None:
        v = self._r.hget(f"{self.ns}:meta", key)
        return None if v is None else v.decode()

    def set_meta(self, key: str, value: str) -> None:
        self._r.hset(f"{self.ns}:meta", key, value)

    def answers(self) -> Iterable[tuple[int, int, str]]:
        read = self._r.pipeline()  # MULTI: both as of one moment
        read.hgetall(self._key_of["answer_seqs"])
        read.hgetall(self._key_of["answers"])
        seqs, answers = read.execute()
        return sorted((int(seqs[k]), int(k), v.decode()) for k, v in answers.items())

    def clear(self) -> None:
        keys = list(self._r.scan_iter(f"{self.ns}:*"))
        for i in range(0, len(keys), 1000):
            self._r.delete(*keys[i : i + 1000])

    def close(self) -> None:
        self._r.close()


def _text(cutoff: int | None) -> str:
    """A cut-off as the scripts take it ('': none)."""
    return "" if cutoff is None else str(cutoff)


def _flat(rows: Iterable[Sequence[str | int]]) -> list[str | int]:
    return [value for row in rows for value in row]


def _ints(text: bytes) -> list[int]:
    """The numbers of "n,n,…"."""
    return [int(v) for v in text.split(b",")] if text else []


def _caught_up(entries: Sequence[bytes], fraud: Sequence[int], since: int) -> CaughtUp:
    """The log entries as Redis keeps them, and the labels of their transactions."""
    txs: list[TxEntry] = []
    labels: list[LabelEntry] = []
    for entry in entries:
        f = entry.decode().split(",")
        if f[1] == "T":
            txs.append((int(f[0]), int(f[2]), int(f[3]), int(f[4]), int(f[5]), float(f[6])))
        else:
            labels.append((int(f[0]), int(f[2]), int(f[3])))
    return CaughtUp.of(txs, fraud, labels, since)
