"""The compiled loop of ``codec.Rows.write``: a template's rows, its values copied in.

Imported when a batch is first written (numba is not imported by ``import fraudflow``). A piece
longer than a few bytes (a feature vector's text in an answer) is copied by LLVM's memcpy: a
byte-at-a-time loop copies about 1 byte a nanosecond here, 4 times slower for a batch's answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

import fraudflow._numba  # noqa: F401  (threading layer, before any kernel)
from fraudflow.records import US_PER_DAY

if TYPE_CHECKING:
    import numpy.typing as npt

    U8 = npt.NDArray[np.uint8]
    I64 = npt.NDArray[np.int64]

#: Pieces up to this many bytes are copied byte by byte (a call costs more than the loop).
_SHORT = 16


@intrinsic
def _memcpy(typingctx: Any, dst: Any, dst_at: Any, src: Any, src_at: Any, n: Any) -> Any:
    """``dst[dst_at:dst_at + n] = src[src_at:src_at + n]`` (uint8 arrays, no overlap), one memcpy."""
    signature = types.void(dst, dst_at, src, src_at, n)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        to, to_at, source, source_at, count = args
        to_data = context.make_array(sig.args[0])(context, builder, to).data
        source_data = context.make_array(sig.args[2])(context, builder, source).data
        to_ptr, source_ptr = builder.gep(to_data, [to_at]), builder.gep(source_data, [source_at])
        cgutils.raw_memcpy(builder, to_ptr, source_ptr, count, 1)  # type: ignore[no-untyped-call]
        return context.get_dummy_value()

    return signature, codegen


@numba.njit(cache=True, inline="always")
def _copy(out: U8, pos: int, src: U8, start: int, end: int) -> int:
    """``src[start:end]`` into ``out`` at ``pos``; the position after it."""
    if end - start > _SHORT:
        _memcpy(out, pos, src, start, end - start)  # type: ignore[call-arg]  # (numba types it)
        return pos + end - start
    for b in range(start, end):
        out[pos] = src[b]
        pos += 1
    return pos


@numba.njit(cache=True)
def fill_rows(template: U8, bounds: I64, buf: U8, starts: I64, ends: I64) -> tuple[U8, I64, I64]:
    """Row i: the template's piece 0, value (i, 0), piece 1, value (i, 1), ..., its last piece; piece
    p is ``template[bounds[p]:bounds[p + 1]]``, value (i, j) ``buf[starts[i, j]:ends[i, j]]``. The
    rows one after the other, a newline between two; each row's start and end in them."""
    n, slots = starts.shape
    total = 0
    for i in range(n):
        for j in range(slots):
            total += ends[i, j] - starts[i, j]
    if n:
        total += n * (bounds[slots + 1] + 1) - 1
    out = np.empty(total, dtype=np.uint8)
    row_starts = np.empty(n, dtype=np.int64)
    row_ends = np.empty(n, dtype=np.int64)
    pos = 0
    for i in range(n):
        if i:
            out[pos] = 10  # "\n"
            pos += 1
        row_starts[i] = pos
        for j in range(slots + 1):
            pos = _copy(out, pos, template, bounds[j], bounds[j + 1])
            if j < slots:
                pos = _copy(out, pos, buf, starts[i, j], ends[i, j])
        row_ends[i] = pos
    return out, row_starts, row_ends


#: A time's ISO text at most: YYYY-MM-DDTHH:MM:SS.ffffff
ISO_WIDTH = 26


@numba.njit(cache=True, inline="always")
def _digits(out: U8, pos: int, value: int, width: int) -> None:
    """``value`` in ``width`` decimal digits, zero-padded, at ``pos``."""
    for k in range(width - 1, -1, -1):
        out[pos + k] = 48 + value % 10
        value //= 10


@numba.njit(cache=True)
def iso_datetimes(ts_us: I64) -> tuple[U8, I64, I64]:
    """``datetime.isoformat()`` of each time (µs since the epoch, years 1-9999), each in a slot of
    ``ISO_WIDTH`` bytes: the text and each one's start and end. The calendar by days (H. Hinnant's
    ``civil_from_days``, with Python's floor division)."""
    n = ts_us.shape[0]
    out = np.empty(n * ISO_WIDTH, dtype=np.uint8)
    starts = np.arange(n) * ISO_WIDTH
    ends = np.empty(n, dtype=np.int64)
    for i in range(n):
        days = ts_us[i] // US_PER_DAY
        in_day = ts_us[i] - days * US_PER_DAY
        seconds, micros = in_day // 1_000_000, in_day % 1_000_000
        z = days + 719468
        era = z // 146097
        doe = z - era * 146097
        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        day = doy - (153 * mp + 2) // 5 + 1
        month = mp + 3 if mp < 10 else mp - 9
        year = yoe + era * 400 + (1 if month <= 2 else 0)
        p = i * ISO_WIDTH
        _digits(out, p, year, 4)
        out[p + 4] = 45  # -
        _digits(out, p + 5, month, 2)
        out[p + 7] = 45
        _digits(out, p + 8, day, 2)
        out[p + 10] = 84  # T
        _digits(out, p + 11, seconds // 3600, 2)
        out[p + 13] = 58  # :
        _digits(out, p + 14, seconds // 60 % 60, 2)
        out[p + 16] = 58
        _digits(out, p + 17, seconds % 60, 2)
        if micros:
            out[p + 19] = 46  # .
            _digits(out, p + 20, micros, 6)
            ends[i] = p + 26
        else:
            ends[i] = p + 19
    return out, starts, ends
