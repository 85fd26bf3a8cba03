"""A service's background work gives way to its requests.

A service answers on one thread (its event loop); the SQLite store's checkpoints run on a thread of
their own, work that can wait a few milliseconds. Left at the same priority, a checkpoint that woke
up with 10-30 ms of copying held the core while the requests queued behind it: at 1,000 requests/s
on one core, every checkpoint left a trail of answers over 5 ms. Only for threads that do their
work without the interpreter's lock (SQLite's, here): a low-priority thread holding that lock would
keep the requests' thread waiting for as long as other processes keep it off the CPU.
"""

from __future__ import annotations

import contextlib
import os
import threading

#: The niceness of a background thread: the lowest priority that still gets a share of a busy core.
BACKGROUND_NICE = 19


def run_in_background() -> None:
    """Make the calling thread run after the others: the ordinary policy (not a real-time one it
    may have inherited) at the lowest niceness. Where the system has no per-thread priorities, nothing."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # 0: the calling thread (Linux)
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
