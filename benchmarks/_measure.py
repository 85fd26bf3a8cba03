"""Helpers for the benchmark scripts: run a case in a fresh process, read its time and peak RSS."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from typing import Any


def run_case(module: str, case: str, *args: str) -> dict[str, Any]:
    """Run ``python -m benchmarks.<module> --case CASE ARGS`` and return the JSON it prints last."""
    cmd = [sys.executable, "-m", f"benchmarks.{module}", "--case", case, *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=os.getcwd())
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {python}"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def throughput_row(
    what: str, rows: int, seconds: float, peak_rss_mb: float | None = None, digits: int = 2
) -> list[str]:
    """A table row: what, rows, seconds, rows/s, peak RSS (blank when not measured)."""
    rss = "" if peak_rss_mb is None else f"{peak_rss_mb:,.0f}"
    return [what, f"{rows:,}", f"{seconds:.{digits}f}", f"{rows / seconds:,.0f}", rss]
