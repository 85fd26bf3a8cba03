"""The batch engines against the handbook's published features, and against each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudflow.features import DEFAULT, build_features, compute
from fraudflow.fingerprint import features_fingerprint
from tests.conftest import SWAPPED_PAIRS, golden, handbook_file, read_lake_table

CUSTOMER_FEATURES = [n for n in DEFAULT.names if n.startswith("CUSTOMER_ID_")]


def assert_features_equal(got: pa.Table, expected: pa.Table, names: list[str], skip: np.ndarray | None = None) -> None:
    """Integers exactly, floats within 1e-9 relative or absolute (FEATURES.md), row by row."""
    assert np.array_equal(got["TRANSACTION_ID"].to_numpy(), expected["TRANSACTION_ID"].to_numpy())
    keep = np.ones(got.num_rows, bool) if skip is None else ~skip
    for name in names:
        a, b = got[name].to_numpy()[keep], expected[name].to_numpy()[keep]
        if np.issubdtype(a.dtype, np.integer):
            bad = a != b
        else:
            bad = ~np.isclose(a, b, rtol=1e-9, atol=1e-9)
        rows = got["TRANSACTION_ID"].to_numpy()[keep][bad][:5]
        assert not bad.any(), f"{name}: {bad.sum()} rows differ, e.g. TRANSACTION_ID {rows.tolist()}"


def oracle() -> pa.Table:
    tx = pq.read_table(handbook_file("transactions.parquet"))
    feats = pq.read_table(handbook_file("features.parquet"))
    assert np.array_equal(feats["TRANSACTION_ID"].to_numpy(), tx["TRANSACTION_ID"].to_numpy())
    return feats.append_column("TX_AMOUNT", tx["TX_AMOUNT"])


@pytest.mark.slow
def test_every_feature_of_every_row_equals_the_handbook(handbook_lake: Path) -> None:
    got = read_lake_table(handbook_lake, "features")
    expected = oracle()
    documented = np.isin(got["TRANSACTION_ID"].to_numpy(), np.array(SWAPPED_PAIRS).ravel())
    assert_features_equal(got, expected, DEFAULT.names, skip=documented)
    # the 20 documented rows: every feature but the customer ones matches as is...
    assert_features_equal(got, expected, [n for n in DEFAULT.names if n not in CUSTOMER_FEATURES])
    # ...and the customer ones are what the spec's rule gives with each pair in swapped order
    tx = pq.read_table(handbook_file("transactions.parquet"))
    ids = tx["TRANSACTION_ID"].to_numpy().copy()
    for a, b in SWAPPED_PAIRS:
        ia, ib = np.searchsorted(ids, [a, b])
        ids[ia], ids[ib] = b, a
    swapped = tx.set_column(0, "TRANSACTION_ID", pa.array(ids))
    order = np.lexsort((ids, tx["TX_DATETIME"].to_numpy()))
    recomputed = compute(swapped.take(order), DEFAULT)
    # label each row with its real id again, so it meets its own oracle row
    recomputed = recomputed.set_column(0, "TRANSACTION_ID", tx["TRANSACTION_ID"].take(order)).sort_by("TRANSACTION_ID")
    rows = np.flatnonzero(documented)
    assert_features_equal(recomputed.take(rows), expected.take(rows), CUSTOMER_FEATURES)
    assert documented.sum() == 20


@pytest.mark.slow
def test_features_match_the_golden_fingerprints(handbook_lake: Path, default_lake: Path) -> None:
    """On any machine: the generated default world's features give the oracle's fingerprints."""
    expected = golden("handbook_features.json")["days"]
    build_features(default_lake)
    for root in (default_lake, handbook_lake):
        got = features_fingerprint(read_lake_table(root), read_lake_table(root, "features"), DEFAULT)
        for day, want in expected.items():
            have = got[day]
            assert (have["rows"], have["tied_rows"], have["sha256_integer_features"]) == (
                want["rows"],
                want["tied_rows"],
                want["sha256_integer_features"],
            ), (root, day)
            for name, total in want["sums"].items():
                assert have["sums"][name] == pytest.approx(total, rel=1e-9, abs=1e-9), (root, day, name)


@pytest.mark.slow
def test_duckdb_engine_equals_compiled_engine_on_the_full_dataset(handbook_lake: Path) -> None:
    tx = read_lake_table(handbook_lake).sort_by([("TX_DATETIME", "ascending"), ("TRANSACTION_ID", "ascending")])
    compiled = compute(tx, DEFAULT, "compiled").sort_by("TRANSACTION_ID")
    duck = compute(tx, DEFAULT, "duckdb").sort_by("TRANSACTION_ID")
    assert_features_equal(duck, compiled, DEFAULT.names)
