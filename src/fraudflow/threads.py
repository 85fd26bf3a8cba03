"""A service's background work gives way to its requests.

A service answers on one thread (its event loop); the SQLite store's checkpoints and the prediction
log's commits run on threads of their own, work that can wait a few milliseconds. Left at the same
priority, a checkpoint that woke up with 10-30 ms of copying held the core while the requests queued
behind it: at 1,000 requests/s on one core, every checkpoint left a trail of answers over 5 ms. Only
for threads that do their work without the interpreter's lock (SQLite's copying, Arrow's writing)
or hold it a few milliseconds at a time: a low-priority thread holding that lock would keep the
requests' thread waiting for as long as other processes keep it off the CPU.
"""

from __future__ import annotations

import contextlib
import os
import threading

#: The niceness of a background thread: a tenth of an ordinary thread's share of a busy core (its
#: weight 110 against 1,024), enough to keep up with 3,000 commits a second; at 19 (weight 15) a
#: store committing without pause beside two busy processes outran its checkpoints, and the WAL
#: grew past 50 MB (``test_the_wal_starts_over_under_steady_commits``).
BACKGROUND_NICE = 10


def run_in_background() -> None:
    """Make the calling thread give way to the others: the ordinary policy (not a real-time one it
    may have inherited) at ``BACKGROUND_NICE``. Where the system has no per-thread priorities, nothing."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # 0: the calling thread (Linux)
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
