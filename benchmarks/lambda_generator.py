"""Benchmark: what the Lambda generator costs in one process with one worker thread.

    .venv/bin/python -m benchmarks.lambda_generator

Lambda gives about one vCPU at 1,769 MB, so the handler runs the simulator with ``workers=1``.
Measured: cold import of the handler and the simulator, the default world generated in one process
(JIT cache cold, as in a fresh container whose image carries no numba cache, and warm), its peak
RSS, and the size on disk of the packages the image needs (the zip limit is 250 MB unzipped).
Written to a local folder: S3 upload time depends on the region's bandwidth, not on fraudflow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._measure import machine, table

CASE = """
import json, resource, sys, time, tempfile
t0 = time.perf_counter()
from fraudflow.cloud.lambda_handler import handler, parse_event
from fraudflow.simulate import generate, WorldParams
imported = time.perf_counter() - t0
with tempfile.TemporaryDirectory() as out:
    t1 = time.perf_counter()
    s = generate(out, WorldParams(), workers=1)
    seconds = time.perf_counter() - t1
print(json.dumps({"import_s": imported, "generate_s": seconds, "rows": s.rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PACKAGES = (
    "numba",
    "llvmlite",
    "numpy",
    "numpy.libs",
    "pyarrow",
    "duckdb",
    "fsspec",
    "s3fs",
    "aiobotocore",
    "botocore",
    "boto3",
    "sqlglot",
    "xgboost",
    "sklearn",
    "scipy",
    "scipy.libs",
    "matplotlib",
    "fraudflow",
)


def run(cache_dir: str) -> dict[str, float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", CASE], env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20 if path.exists() else 0.0


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        cold = run(cache)
        warm = run(cache)
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    sizes = {p: size_mb(site / p) for p in PACKAGES}
    print(f"machine: {machine()}\n")
    rows = [
        ["cold import (handler + simulator), new process", f"{cold['import_s']:.2f} s"],
        ["default world, 1 thread, JIT cache cold (a fresh container)", f"{cold['generate_s']:.1f} s"],
        ["default world, 1 thread, JIT cache warm", f"{warm['generate_s']:.1f} s"],
        ["peak RSS (cold run)", f"{cold['peak_rss_mb']:,.0f} MB"],
        ["peak RSS (warm run)", f"{warm['peak_rss_mb']:,.0f} MB"],
        ["rows", f"{warm['rows']:,}"],
        [
            "installed size: numba + llvmlite + numpy + pyarrow",
            f"{sum(sizes[p] for p in ('numba', 'llvmlite', 'numpy', 'numpy.libs', 'pyarrow')):,.0f} MB",
        ],
        ["installed size: everything fraudflow[aws] pulls in (listed packages)", f"{sum(sizes.values()):,.0f} MB"],
    ]
    print(table(["what", "value"], rows))


if __name__ == "__main__":
    sys.exit(main())
