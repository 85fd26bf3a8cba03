"""Background threads give way to the requests: the SQLite checkpoints and the prediction log's commits run
at a low priority (niceness 10), on the ordinary policy even when the service was started at a real-time one."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from fraudflow.lake import Lake
from fraudflow.serving.served_log import ServedLog
from fraudflow.store.online.sqlite import SQLiteStore
from fraudflow.threads import BACKGROUND_NICE, run_in_background


def niceness(thread: threading.Thread) -> int:
    """The thread's niceness once it has started (and set it)."""
    deadline = time.monotonic() + 5
    while thread.native_id is None or os.getpriority(os.PRIO_PROCESS, thread.native_id) != BACKGROUND_NICE:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


def test_a_background_thread_runs_at_a_low_niceness_and_the_caller_does_not() -> None:
    seen: dict[str, object] = {}

    def work() -> None:
        run_in_background()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        seen["policy"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == {"nice": BACKGROUND_NICE, "policy": os.SCHED_OTHER}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != BACKGROUND_NICE


def test_the_checkpoints_run_in_the_background(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "online.sqlite"))
    try:
        assert niceness(store._checkpoints._thread) == BACKGROUND_NICE
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "SCHED_FIFO"), reason="no real-time policies on this system")
def test_the_prediction_log_commits_in_the_background(tmp_path: Path) -> None:
    log = ServedLog(Lake(str(tmp_path)), every=3600)
    try:
        assert niceness(log._thread) == BACKGROUND_NICE
    finally:
        log.close()


def test_a_thread_started_at_a_real_time_policy_leaves_it(tmp_path: Path) -> None:
    """A service started under ``chrt`` (real-time): its threads inherit the policy; the background
    ones leave it (a real-time thread is never preempted by the requests' thread of equal priority)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        pytest.skip("real-time policies need a privilege this process lacks")
    try:
        store = SQLiteStore(str(tmp_path / "online.sqlite"))
        try:
            thread = store._checkpoints._thread
            niceness(thread)
            assert thread.native_id is not None and os.sched_getscheduler(thread.native_id) == os.SCHED_OTHER
        finally:
            store.close()
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
