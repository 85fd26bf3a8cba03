"""One local Spark session for every Spark test (they share an xdist worker: group "spark")."""

from __future__ import annotations

import os

import pytest

from tests.conftest import s3_environment


@pytest.fixture(scope="session")
def spark(s3_endpoint: str):
    """``local[2]``; its Python workers inherit the environment of the moment it starts, so the
    AWS variables that point at the moto server are set first (fake credentials, loopback only)."""
    from fraudflow.distributed.session import spark_session

    os.environ.update(s3_environment(s3_endpoint))
    session = spark_session("local[2]")
    yield session
    session.stop()
