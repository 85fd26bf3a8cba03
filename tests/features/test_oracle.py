"""The batch engines against the handbook's published features, and against each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudflow.features import HANDBOOK, build_features, compute
from tests.conftest import SWAPPED_PAIRS, golden, handbook_file, read_lake_table
from tests.fingerprint import features_fingerprint, quantise

CUSTOMER_FEATURES = [n for n in HANDBOOK.names if n.startswith("CUSTOMER_ID_")]


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
    assert_features_equal(got, expected, HANDBOOK.names, skip=documented)
    # the 20 documented rows: every feature but the customer ones matches as is...
    assert_features_equal(got, expected, [n for n in HANDBOOK.names if n not in CUSTOMER_FEATURES])
    # ...and the customer ones are what the spec's rule gives with each pair in swapped order
    tx = pq.read_table(handbook_file("transactions.parquet"))
    ids = tx["TRANSACTION_ID"].to_numpy().copy()
    for a, b in SWAPPED_PAIRS:
        ia, ib = np.searchsorted(ids, [a, b])
        ids[ia], ids[ib] = b, a
    swapped = tx.set_column(0, "TRANSACTION_ID", pa.array(ids))
    order = np.lexsort((ids, tx["TX_DATETIME"].to_numpy()))
    recomputed = compute(swapped.take(order), HANDBOOK)
    # label each row with its real id again, so it meets its own oracle row
    recomputed = recomputed.set_column(0, "TRANSACTION_ID", tx["TRANSACTION_ID"].take(order)).sort_by("TRANSACTION_ID")
    rows = np.flatnonzero(documented)
    assert_features_equal(recomputed.take(rows), expected.take(rows), CUSTOMER_FEATURES)
    assert documented.sum() == 20


@pytest.mark.slow
def test_regenerated_world_features_match_the_golden_fingerprints_row_by_row(default_lake: Path) -> None:
    """On any clone (no ../shared): every feature of every row of all 183 days, as the oracle's."""
    expected = golden("handbook_features.json")
    assert expected["features"] == HANDBOOK.names
    build_features(default_lake)
    got = features_fingerprint(read_lake_table(default_lake), read_lake_table(default_lake, "features"), HANDBOOK)
    assert sorted(got, key=int) == sorted(expected["days"], key=int) == [str(d) for d in range(183)]
    bad = [day for day, want in expected["days"].items() if got[day] != want]
    assert not bad, f"{len(bad)} days differ from the oracle's fingerprints, e.g. day {bad[0]}: {got[bad[0]]}"
    assert sum(d["tied_rows"] for d in got.values()) == 58  # 29 same-second ties, the 10 swapped pairs among them


@pytest.mark.slow
def test_golden_feature_fingerprints_are_the_oracles(handbook_lake: Path) -> None:
    """The committed golden file is what derive.py gives from the oracle; the handbook lake's too."""
    from tests.golden.derive import MIN_MARGIN, oracle_features

    tx, feats = oracle_features(handbook_file("transactions.parquet").parent)
    expected = golden("handbook_features.json")["days"]
    assert features_fingerprint(tx, feats, HANDBOOK) == expected
    _, margin = quantise({n: feats[n].to_numpy() for n in HANDBOOK.names}, HANDBOOK)
    assert margin > MIN_MARGIN
    lake = features_fingerprint(read_lake_table(handbook_lake), read_lake_table(handbook_lake, "features"), HANDBOOK)
    assert lake == expected


@pytest.mark.slow
def test_duckdb_engine_equals_compiled_engine_on_the_full_dataset(handbook_lake: Path) -> None:
    tx = read_lake_table(handbook_lake).sort_by([("TX_DATETIME", "ascending"), ("TRANSACTION_ID", "ascending")])
    compiled = compute(tx, HANDBOOK, "compiled").sort_by("TRANSACTION_ID")
    duck = compute(tx, HANDBOOK, "duckdb").sort_by("TRANSACTION_ID")
    assert_features_equal(duck, compiled, HANDBOOK.names)
