"""Derive the golden fingerprints from the handbook's published files (run once; output committed).

.venv/bin/python tests/golden/derive.py ../shared/handbook
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tests.fingerprint import features_fingerprint, quantise, transactions_fingerprint

from fraudflow.features import HANDBOOK

HERE = Path(__file__).parent
#: Least distance (in units of 1e-6) of any oracle float from a rounding boundary of the hash:
#: engines agree with the oracle within 1e-9 relative, which moves these values by < 1e-3 units.
MIN_MARGIN = 0.01


def oracle_features(handbook: Path) -> tuple[pa.Table, pa.Table]:
    tx = pq.read_table(handbook / "transactions.parquet")
    feats = pq.read_table(handbook / "features.parquet")
    return tx, feats.append_column("TX_AMOUNT", tx["TX_AMOUNT"])  # the 15th input is the raw amount


def check_margin(feats: pa.Table) -> None:
    """Refuse a golden file a 1e-9 difference could flip: no value may lie near a boundary."""
    _, margin = quantise({n: feats[n].to_numpy() for n in HANDBOOK.names}, HANDBOOK)
    if margin < MIN_MARGIN:
        raise SystemExit(f"a feature value lies {margin:.2e} units from a rounding boundary of the hash")


def main(handbook: Path) -> None:
    tx, feats = oracle_features(handbook)
    golden = {
        "source": "Fraud-Detection-Handbook/simulated-data-raw (2018-04-01..2018-09-30)",
        "days": transactions_fingerprint(tx),
    }
    (HERE / "handbook_transactions.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    check_margin(feats)
    golden = {
        "source": "Fraud-Detection-Handbook/simulated-data-transformed (2018-04-01..2018-09-30)",
        "features": HANDBOOK.names,
        "hash": "per day, every feature of every row in canonical order, as int64 (tests/fingerprint.py)",
        "days": features_fingerprint(tx, feats, HANDBOOK),
    }
    (HERE / "handbook_features.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/handbook"))
