"""numba settings shared by every compiled kernel; import this before defining one.

The ``workqueue`` threading layer: OpenMP's worker threads spin after each parallel region and
took CPU from the Parquet writer threads that follow the kernels (the feature build measured
~20 % slower with it on 2 cores). A user's NUMBA_THREADING_LAYER still wins.
"""

from __future__ import annotations

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]
