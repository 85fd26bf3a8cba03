"""Shared fixtures: the handbook oracle (when ../shared is beside the project) and small lakes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The handbook's published files (the oracle); FRAUDFLOW_HANDBOOK points elsewhere.
HANDBOOK = Path(os.environ.get("FRAUDFLOW_HANDBOOK") or ROOT.parent / "shared" / "handbook")
GOLDEN = Path(__file__).parent / "golden"


def in_ci() -> bool:
    """CI sets CI=true: there every check must run, none may be skipped for a missing file."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def handbook_file(name: str) -> Path:
    path = HANDBOOK / name
    if not path.exists():
        if in_ci():
            pytest.fail(
                f"{path} not present, and CI=true: CI checks against the handbook's files. Put them in "
                "../shared/handbook beside the project or point FRAUDFLOW_HANDBOOK at their folder",
                pytrace=False,
            )
        # A user's clone has no ../shared; the golden fingerprints check the same facts there.
        pytest.skip(f"{path} not present (the golden-fingerprint tests cover this check)")
    return path


def golden(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


def read_lake_table(root: Path | str, table: str = "transactions") -> pa.Table:
    """A lake table as one Arrow table (partition column dropped), sorted by TRANSACTION_ID."""
    t = ds.dataset(f"{root}/{table}", format="parquet", partitioning="hive").to_table()
    t = t.drop_columns([c for c in t.column_names if c == "tx_date"])
    return t.sort_by("TRANSACTION_ID")


@pytest.fixture(scope="session")
def default_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default world (the handbook's), generated once per session."""
    from fraudflow import generate

    root = tmp_path_factory.mktemp("default-lake")
    generate(root)
    return root


#: The 10 same-customer, same-second pairs the handbook processed in swapped order (FEATURES.md).
SWAPPED_PAIRS = (
    (121453, 121454),
    (163831, 163832),
    (174806, 174807),
    (619758, 619759),
    (1240489, 1240490),
    (1350833, 1350834),
    (1472490, 1472491),
    (1553976, 1553977),
    (1633924, 1633926),
    (1653669, 1653670),
)


@pytest.fixture(scope="session")
def handbook_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The handbook's published transactions ingested into a lake, with features computed."""
    from fraudflow import ingest
    from fraudflow.features import build_features

    root = tmp_path_factory.mktemp("handbook-lake")
    ingest(handbook_file("transactions.parquet"), root)
    build_features(root)
    return root


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    """A real redis-server on a loopback port, for the session (installed by .ci/run)."""
    import shutil
    import subprocess
    import time

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: `make test` installs it (.ci/ensure-system)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server, started as a separate process on a loopback port."""
    import subprocess
    import sys
    import time

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(200):
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    yield endpoint
    proc.terminate()
    proc.wait(10)


def s3_environment(endpoint: str) -> dict[str, str]:
    """The standard AWS variables that point every client (boto3, s3fs) at the moto server."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture
def s3_root(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto server; the standard AWS variables point every client at it."""
    import uuid

    import boto3

    for name, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    import fsspec

    fsspec.filesystem("s3").invalidate_cache() if "s3" in fsspec.available_protocols() else None
    return f"s3://{bucket}/fraudflow"
