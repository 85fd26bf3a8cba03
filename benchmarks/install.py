"""Benchmark: installing fraudflow on a fresh clone from the lock, as `make demo` and `make test` do.

    .venv/bin/python -m benchmarks.install

A fresh clone of this repository's HEAD in a temporary folder; for each set (runtime: `make
install`, what `make demo` runs first; development: `make install-dev`, what `make test` and `make
check` run first) the wall time of the make target, which bootstraps uv from the registry into
`.tools/` and then syncs `.venv` from `uv.lock`:
- cold: empty uv and pip caches (every wheel downloaded from the package registry);
- warm: the clone's `.venv` and `.tools` removed, uv's cache kept (a second clone on the same machine).
Also the size of the resulting `.venv`. Prints a Markdown table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._measure import machine, table

ROOT = Path(__file__).resolve().parent.parent
SETS = (
    ("runtime (`make install`, run by `make demo`)", "install"),
    ("development (`make install-dev`, run by `make test`)", "install-dev"),
)


def _make(clone: Path, target: str, cache: Path) -> float:
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "PIP_NO_CACHE_DIR": "1"}
    env.pop("VIRTUAL_ENV", None)
    t0 = time.perf_counter()
    subprocess.run(["make", "-s", target], cwd=clone, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def _fresh(clone: Path) -> None:
    for name in (".venv", ".tools"):
        shutil.rmtree(clone / name, ignore_errors=True)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "fraudflow"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for label, target in SETS:
            cache = Path(tmp) / f"uv-cache-{target}"
            cold = _make(clone, target, cache)
            size = _size_mb(clone / ".venv")
            _fresh(clone)
            warm = _make(clone, target, cache)
            _fresh(clone)
            rows.append([label, f"{cold:.1f}", f"{warm:.1f}", f"{size:,.0f}"])
    print(f"Machine: {machine()}\n")
    print(table(["set installed from uv.lock", "cold cache s", "warm cache s", ".venv MB"], rows))


if __name__ == "__main__":
    main()
