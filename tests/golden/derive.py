"""Derive the golden fingerprints from the handbook's published files (run once; output committed).

    .venv/bin/python tests/golden/derive.py ../shared/handbook
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from fraudflow.fingerprint import transactions_fingerprint

HERE = Path(__file__).parent


def main(handbook: Path) -> None:
    tx = pq.read_table(handbook / "transactions.parquet")
    golden = {"source": "Fraud-Detection-Handbook/simulated-data-raw (2018-04-01..2018-09-30)",
              "days": transactions_fingerprint(tx)}
    (HERE / "handbook_transactions.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/handbook"))
