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


def _tree_rss_mb(root: int) -> float:
    """Resident memory of process ``root`` and all its descendants (Linux /proc), in MiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21])  # pages
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_case_tree(module: str, case: str, *args: str, interval: float = 0.2) -> dict[str, Any]:
    """``run_case``, also sampling the peak resident memory of the whole process tree (a JVM and
    its Python workers included), returned as ``peak_tree_rss_mb``."""
    import time

    cmd = [sys.executable, "-m", f"benchmarks.{module}", "--case", case, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=os.getcwd())
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(interval)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out)
    return {**json.loads(out.strip().splitlines()[-1]), "peak_tree_rss_mb": peak}
