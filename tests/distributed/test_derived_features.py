"""Windows over derived values (``count_above``, ``max``, ``unexplained_frauds``), spreads (``std``,
``zscore``), quotients, known frauds' ages and shares since the first in Spark SQL equal the
compiled engine's, on the aggregations' hand-built boundary rows and random rows
(tests/features/test_aggregations.py, with its tolerances)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fraudflow import schema as s
from fraudflow.distributed import features as spark_features
from fraudflow.features import FeatureSet, compute
from tests.features.test_aggregations import ABSOLUTE, CASES, HAND_BUILT, random_rows, table

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

#: the aggregations added after the Spark engine's own tests (tests/distributed/test_features.py)
NEWER = (
    "count_above",
    "max",
    "std",
    "zscore",
    "quotient",
    "days_since_first_fraud",
    "days_since_last_fraud",
    "fraud_share_since_first_fraud",
    "unexplained_frauds",
)
DERIVED = FeatureSet(tuple(f for name in NEWER for f in CASES[name]), "newer")
ORDER = [(s.TX_DATETIME, "ascending"), (s.TRANSACTION_ID, "ascending")]


@pytest.mark.parametrize("rows", ["hand-built", "random"])
def test_spark_windows_over_derived_values_equal_the_compiled_engines(spark: Any, rows: str) -> None:
    tx = table(HAND_BUILT if rows == "hand-built" else random_rows())
    expected = compute(tx, DERIVED, "compiled")
    frame = spark.createDataFrame(tx.select(list(s.INPUT_COLUMNS)).to_pandas())
    got = spark_features.compute(spark, frame, DERIVED).toArrow().sort_by(ORDER)
    assert got[s.TRANSACTION_ID].to_pylist() == expected[s.TRANSACTION_ID].to_pylist()
    for f in DERIVED.features:
        a, b = expected[f.name].to_numpy(), got[f.name].to_numpy()
        if f.dtype == "int64":
            np.testing.assert_array_equal(b, a, err_msg=f.name)
        else:
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=ABSOLUTE.get(f.aggregation, 0), err_msg=f.name)
