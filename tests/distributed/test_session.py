"""The spark extra is optional: never imported by the local engines, a clear hint when missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fraudflow.distributed.session import spark_session
from fraudflow.errors import ConfigError


def test_the_local_engines_never_import_pyspark(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import fraudflow.cli, fraudflow.training.workflow, fraudflow.serving.app\n"
        "from fraudflow import WorldParams, generate\n"
        "from fraudflow.features import build_features\n"
        f"generate({str(tmp_path)!r}, WorldParams(n_customers=50, n_terminals=100, nb_days=5))\n"
        f"build_features({str(tmp_path)!r})\n"
        "assert not [m for m in sys.modules if m.startswith(('pyspark', 'py4j'))], 'pyspark imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_pyspark_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    hint = r"needs pyspark: install the spark extra \(pip install 'fraudflow\[spark\]'\)"
    with pytest.raises(ConfigError, match=hint):
        spark_session()


def test_without_java_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pyspark.sql import SparkSession

    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"needs Java 17 .*apt-get install openjdk-17-jre-headless"):
        spark_session()
