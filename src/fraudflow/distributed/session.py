"""One Spark session per process, configured for fraudflow (UTC, Arrow, quiet)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fraudflow import errors
from fraudflow.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"
INSTALL_HINT = "install the spark extra (pip install 'fraudflow[spark]') and Java 17"


def spark_session(master: str | None = None) -> SparkSession:
    """The process's Spark session (created on first use; ``master`` defaults to ``local[*]``).

    Timestamps are read and written in UTC, so Spark's calendar features equal DuckDB's.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(f"the spark engine needs pyspark: {INSTALL_HINT}") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise ConfigError(
            "the spark engine needs Java 17 (no JAVA_HOME, no java on PATH): "
            "on Debian/Ubuntu `apt-get install openjdk-17-jre-headless`"
        )
    # Spark's Python workers must run this interpreter (the one fraudflow is installed in).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    cores = os.cpu_count() or 1
    builder = (
        SparkSession.builder.master(master or os.environ.get("FRAUDFLOW_SPARK_MASTER", DEFAULT_MASTER))
        .appName("fraudflow")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(4, 4 * cores)))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", os.environ.get("FRAUDFLOW_SPARK_DRIVER_MEMORY", "4g"))
    )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: report why, with the fix
        raise ConfigError(f"could not start Spark ({exc}); {INSTALL_HINT}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def spark_job(
    what: str, spark: SparkSession | None = None, progress: Callable[[str, int, int], None] | None = None
) -> Iterator[None]:
    """Run Spark actions; a task's fraudflow error comes back as itself, not as a Java trace.

    With ``spark`` and ``progress``, the running stages' tasks are reported twice a second as
    ``progress("<what> tasks", done, total)``.
    """
    stop = threading.Event()
    if spark is not None and progress is not None:
        threading.Thread(target=_report_tasks, args=(spark, f"{what} tasks", progress, stop), daemon=True).start()
    try:
        yield
    except Exception as exc:
        from pyspark.errors import PySparkException

        if not isinstance(exc, PySparkException):
            raise
        text = str(exc)
        found = re.findall(r"fraudflow\.errors\.(\w+): (.+)", text)
        if found:
            name, message = found[-1]
            cls = getattr(errors, name, None)
            if isinstance(cls, type) and issubclass(cls, errors.FraudflowError):
                raise cls(message.strip()) from exc
        first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
        raise errors.FraudflowError(f"{what} failed on Spark: {first.strip()}") from exc
    finally:
        stop.set()


def _report_tasks(
    spark: SparkSession, label: str, progress: Callable[[str, int, int], None], stop: threading.Event
) -> None:
    tracker = spark.sparkContext.statusTracker()
    while not stop.wait(0.5):
        done = total = 0
        for stage in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage)
            if info is not None:
                done, total = done + info.numCompletedTasks, total + info.numTasks
        if total:
            progress(label, done, total)
