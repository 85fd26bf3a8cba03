"""`fraudflow serve` refuses to start in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port


def lake_copy(served_lake: Path, to: Path, without: str | None = None) -> Path:
    """The served lake's tables copied to ``to`` (its online store left behind), less ``without``."""
    shutil.copytree(served_lake, to, ignore=shutil.ignore_patterns("online.sqlite*", *([without] if without else [])))
    return to


def another_feature_set_version(lake: Path) -> Path:
    """The lake, its model now recorded as trained on another version of the feature set."""
    (meta,) = lake.glob("models/*/metadata.json")
    recorded = json.loads(meta.read_text())
    meta.write_text(json.dumps({**recorded, "feature_set_version": "0123456789abcdef"}))
    return lake


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "fraudflow.cli", "serve", "--port", str(free_port()), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit code 2 and one line on stderr, ``error: ...`` naming the problem."""
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and line.startswith("error: ") and all(w in line for w in words), (
        result.returncode,
        line,
    )


def test_no_features(served_lake: Path, tmp_path: Path) -> None:
    lake = lake_copy(served_lake, tmp_path / "lake", without="features")
    assert_refused(serve("--data", str(lake)), "no features", "fraudflow features")


def test_no_model(served_lake: Path, tmp_path: Path) -> None:
    lake = lake_copy(served_lake, tmp_path / "lake", without="models")
    assert_refused(serve("--data", str(lake)), "no models", "fraudflow train")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_model_of_another_feature_set_version(served_lake: Path, tmp_path: Path, workers: int) -> None:
    """With two workers the parent refuses once, before it spawns any."""
    lake = another_feature_set_version(lake_copy(served_lake, tmp_path / "lake"))
    result = serve("--data", str(lake), "--workers", str(workers), "--online", f"sqlite://{tmp_path / 'o.sqlite'}")
    assert_refused(result, "trained on feature set 0123456789abcdef")


@pytest.mark.parametrize("workers", [1, 2])
def test_redis_unreachable(served_lake: Path, workers: int) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    assert_refused(serve("--data", str(served_lake), "--online", url, "--workers", str(workers)), url, "cannot reach")


@pytest.mark.parametrize(
    ("days", "words"), [("40", ("answers window of 40 days", "longer than", "at most")), ("0", ("must be positive",))]
)
def test_an_answers_window_the_log_cannot_hold(
    served_lake: Path, tmp_path: Path, days: str, words: tuple[str, ...]
) -> None:
    url = f"sqlite://{tmp_path / 'o.sqlite'}"
    assert_refused(serve("--data", str(served_lake), "--online", url, "--answers-window-days", days), *words)


def test_an_sqlite_path_that_cannot_be_created(served_lake: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    url = f"sqlite://{tmp_path / 'a-file' / 'online.sqlite'}"
    assert_refused(serve("--data", str(served_lake), "--online", url), "cannot be opened", str(tmp_path / "a-file"))


def test_a_worker_that_cannot_start_stops_the_service(served_lake: Path, tmp_path: Path) -> None:
    """A worker refused after the parent's check (the store gone meanwhile, say) says why in one line
    and exits with uvicorn's start-up failure code; the parent then stops with that code instead of
    restarting it."""
    lake = another_feature_set_version(lake_copy(served_lake, tmp_path / "lake"))
    code = (
        "import sys\n"
        "from fraudflow.serving.server import _run_workers\n"
        "from fraudflow.serving.settings import Settings\n"
        f"settings = Settings(data={str(lake)!r}, online={'sqlite://' + str(tmp_path / 'o.sqlite')!r})\n"
        f"sys.exit(_run_workers(settings, '127.0.0.1', {free_port()}, 2))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    refusals = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert refusals and all("trained on feature set 0123456789abcdef" in line for line in refusals), result.stderr


def test_an_s3_lake_without_credentials(tmp_path: Path) -> None:
    """botocore's NoCredentialsError, which s3fs lets through, is one line too (it was a traceback)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k in ("AWS_CA_BUNDLE", "AWS_ENDPOINT_URL")
    }
    env |= {
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to ask for
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    cmd = [sys.executable, "-m", "fraudflow.cli", "serve", "--port", str(free_port()), "--data", "s3://bucket/lake"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert_refused(result, "S3: Unable to locate credentials", "AWS_ACCESS_KEY_ID")
