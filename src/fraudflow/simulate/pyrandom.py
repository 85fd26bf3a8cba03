"""Python's ``random.Random(seed).choice`` reproduced inside compiled code.

``random.Random(n)`` seeds MT19937 with ``init_by_array`` on the 32-bit words of ``abs(n)``
(NumPy's ``RandomState(n)`` uses ``init_genrand`` instead: a different stream). ``choice(seq)``
draws an index by rejection: ``k = len(seq).bit_length()``, take the top ``k`` bits of the next
32-bit output, retry while the value is ``>= len(seq)``. The tests check both against CPython.
"""

from __future__ import annotations

import numba
import numpy as np

import fraudflow._numba  # noqa: F401  (threading layer, before any kernel)

N = 624
M = 397
MATRIX_A = np.uint32(0x9908B0DF)
UPPER = np.uint32(0x80000000)
LOWER = np.uint32(0x7FFFFFFF)


@numba.njit(cache=True)
def seed_state(seed: int) -> np.ndarray:
    """MT19937 state of ``random.Random(seed)`` for ``0 <= seed < 2**32``; index in slot N."""
    mt = np.empty(N + 1, dtype=np.uint32)
    mt[0] = np.uint32(19650218)
    for i in range(1, N):
        prev = np.uint64(mt[i - 1])
        v = np.uint64(1812433253) * (prev ^ (prev >> np.uint64(30))) + np.uint64(i)
        mt[i] = np.uint32(v & np.uint64(0xFFFFFFFF))
    i = 1
    j = 0
    key = np.uint64(seed)
    for _ in range(N):  # max(N, key_length) with key_length == 1
        prev = np.uint64(mt[i - 1])
        v = (np.uint64(mt[i]) ^ ((prev ^ (prev >> np.uint64(30))) * np.uint64(1664525))) + key + np.uint64(j)
        mt[i] = np.uint32(v & np.uint64(0xFFFFFFFF))
        i += 1
        j = 0  # j wraps at key_length == 1
        if i >= N:
            mt[0] = mt[N - 1]
            i = 1
    for _ in range(N - 1):
        prev = np.uint64(mt[i - 1])
        v = (np.uint64(mt[i]) ^ ((prev ^ (prev >> np.uint64(30))) * np.uint64(1566083941))) - np.uint64(i)
        mt[i] = np.uint32(v & np.uint64(0xFFFFFFFF))
        i += 1
        if i >= N:
            mt[0] = mt[N - 1]
            i = 1
    mt[0] = UPPER
    mt[N] = N  # position: forces a twist on the first draw
    return mt


@numba.njit(cache=True)
def _twist(mt: np.ndarray) -> None:
    for k in range(N):
        y = (mt[k] & UPPER) | (mt[(k + 1) % N] & LOWER)
        v = mt[(k + M) % N] ^ (y >> np.uint32(1))
        if y & np.uint32(1):
            v ^= MATRIX_A
        mt[k] = v


@numba.njit(cache=True)
def next_u32(mt: np.ndarray) -> np.uint32:
    if mt[N] >= N:
        _twist(mt)
        mt[N] = 0
    y: np.uint32 = mt[mt[N]]
    mt[N] += 1
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return y


@numba.njit(cache=True)
def randbelow(mt: np.ndarray, n: int) -> int:
    """``random.Random._randbelow(n)`` for ``1 <= n < 2**32``."""
    k = 0
    v = n
    while v:
        k += 1
        v >>= 1
    shift = np.uint32(32 - k)
    r = int(next_u32(mt) >> shift)
    while r >= n:
        r = int(next_u32(mt) >> shift)
    return r
