"""The compiled loop of ``codec.Rows.write``: a template's rows, its values copied in, byte by byte.

Imported when a batch is first written (numba is not imported by ``import fraudflow``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

import fraudflow._numba  # noqa: F401  (threading layer, before any kernel)

if TYPE_CHECKING:
    import numpy.typing as npt

    U8 = npt.NDArray[np.uint8]
    I64 = npt.NDArray[np.int64]


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
            for b in range(bounds[j], bounds[j + 1]):
                out[pos] = template[b]
                pos += 1
            if j < slots:
                for b in range(starts[i, j], ends[i, j]):
                    out[pos] = buf[b]
                    pos += 1
        row_ends[i] = pos
    return out, row_starts, row_ends
