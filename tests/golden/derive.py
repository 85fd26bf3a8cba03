"""Derive the golden fingerprints from the handbook's published files (run once; output committed).

.venv/bin/python tests/golden/derive.py ../shared/handbook
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from fraudflow.features import DEFAULT
from fraudflow.fingerprint import features_fingerprint, transactions_fingerprint

HERE = Path(__file__).parent


def main(handbook: Path) -> None:
    tx = pq.read_table(handbook / "transactions.parquet")
    golden = {
        "source": "Fraud-Detection-Handbook/simulated-data-raw (2018-04-01..2018-09-30)",
        "days": transactions_fingerprint(tx),
    }
    (HERE / "handbook_transactions.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    feats = pq.read_table(handbook / "features.parquet")
    feats = feats.append_column("TX_AMOUNT", tx["TX_AMOUNT"])  # the 15th input is the raw amount
    golden = {
        "source": "Fraud-Detection-Handbook/simulated-data-transformed (2018-04-01..2018-09-30)",
        "features": DEFAULT.names,
        "days": features_fingerprint(tx, feats, DEFAULT),
    }
    (HERE / "handbook_features.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/handbook"))
