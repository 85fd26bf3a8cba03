"""One local Spark session for every Spark test (they share an xdist worker: group "spark")."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    from fraudflow.distributed.session import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()
