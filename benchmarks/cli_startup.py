"""Benchmark: how long the ``fraudflow`` program takes in a new process, and where the time goes.

    .venv/bin/python -m benchmarks.cli_startup            # 5 runs of each, medians
    .venv/bin/python -m benchmarks.cli_startup --runs 9

For ``fraudflow --help``, ``fraudflow generate --out <tmp>`` (the default world) and
``fraudflow features --data <tmp>``: the wall time of the real program in a new process (median of
``--runs``, after a warm-up run: numba's kernel cache, the page cache and Python's bytecode cache
are warm), the same command run in process (its compute), and the breakdown of one new process
into phases, each the median over ``--runs`` processes that stop at a mark after every phase:

    python      interpreter start (``python -c pass`` is the floor of every process)
    harness     importing this module (argparse, json, subprocess...; not part of the program)
    numpy       ``import numpy``
    numba       ``import numba``
    fraudflow   fraudflow's imports for the command (typer, rich, pyarrow, fsspec, our modules)
    numba init  numba's target context: its typing and lowering registries, which import
                scipy.linalg (numba probes BLAS) and cffi, and compile its runtime (NRT)
    first calls the kernels loaded from numba's cache, thread pools, Arrow's first write
                (a tiny world generated, or the features of a tiny lake computed)
    compute     the command itself, in that process
    exit        from the command's return to the parent seeing the process end

Also printed: the floor of the same stack doing nothing (Python, numpy, numba, numba with one
trivial cached kernel), and the exit with Python's own teardown for comparison. When the
environment forbids writing bytecode (PYTHONDONTWRITEBYTECODE) and the installed packages hold
none, every import compiles its module from source in every process; the figures are then given
twice: as the environment runs, and with a bytecode cache (PYTHONPYCACHEPREFIX in a temporary
folder, what a default Python does after its first run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._measure import machine, table

PROGRAM = str(Path(sys.executable).parent / "fraudflow")
COMMANDS = ("help", "generate", "features")
PHASES = ("python", "harness", "numpy", "numba", "fraudflow", "numba init", "first calls", "compute", "exit")
TINY = {"n_customers": 5, "n_terminals": 10, "nb_days": 3}
TRIVIAL_KERNEL = """
import numba

@numba.njit(cache=True)
def one(x):
    return x + 1
"""


# --- child: one process stopping at a mark after each phase ---------------------------------


def case_phases(
    command: str, spawned: float, started: tuple[float, float], lake: str, tiny: str, normal_exit: bool
) -> None:
    """Run ``command`` in this process; print the wall and CPU seconds each phase took (JSON).

    ``started``: ``time.time()`` and ``time.process_time()`` before anything was imported.
    """
    marks = {"python": started[0] - spawned, "harness": time.time() - started[0]}
    cpu = {"python": started[1], "harness": time.process_time() - started[1]}
    last = (time.time(), time.process_time())

    def mark(phase: str) -> None:
        nonlocal last
        now = (time.time(), time.process_time())
        marks[phase] = now[0] - last[0]
        cpu[phase] = now[1] - last[1]
        last = now

    if command != "help":
        import numpy  # noqa: F401

        mark("numpy")
        import numba
        import numba.core.registry

        mark("numba")
    import fraudflow.cli

    if command == "generate":
        import fraudflow.simulate.generate
    elif command == "features":
        import fraudflow.features.batch
    mark("fraudflow")
    if command != "help":
        numba.core.registry.cpu_target.target_context.refresh()
        mark("numba init")
        _first_calls(command, tiny)
        mark("first calls")
    args = {
        "help": ["--help"],
        "generate": ["generate", "--out", lake, "--json"],
        "features": ["features", "--data", lake],
    }[command]
    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            fraudflow.cli.app(args, standalone_mode=False)
        finally:
            sys.stdout = stdout
    mark("compute")
    print(json.dumps({"marks": marks, "cpu": cpu, "end": time.time(), "end_cpu": time.process_time()}), flush=True)
    exit_now = getattr(fraudflow.cli, "_exit_now", None)  # absent before the fast exit existed
    if exit_now is not None and not normal_exit:
        exit_now(0)  # the way the fraudflow program ends


def _first_calls(command: str, tiny: str) -> None:
    if command == "generate":
        from fraudflow import WorldParams, generate

        with tempfile.TemporaryDirectory() as tmp:
            generate(tmp, WorldParams(**TINY))  # type: ignore[arg-type]
    else:
        from fraudflow.features import build_features

        build_features(tiny)


# --- parent ---------------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], env: dict[str, str], **kwargs: Any) -> tuple[float, float, Any]:
    """Wall and CPU (user + system, all threads) seconds of ``cmd`` in a new process, and its result."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    out = subprocess.run(cmd, check=True, env=env, **kwargs)
    return time.perf_counter() - t0, _children_cpu() - cpu0, out


def _wall(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    wall, cpu, _ = _run(cmd, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return wall, cpu


def _program(command: str, root: Path, run: int) -> list[str]:
    if command == "help":
        return [PROGRAM, "--help"]
    if command == "generate":
        return [PROGRAM, "generate", "--out", str(root / f"gen-{run}"), "--json"]
    return [PROGRAM, "features", "--data", str(root / "lake")]


def _phases(command: str, root: Path, env: dict[str, str], normal_exit: bool = False) -> dict[str, dict[str, float]]:
    lake = str(root / ("phases-gen" if command == "generate" else "lake"))
    shutil.rmtree(root / "phases-gen", ignore_errors=True)
    spawned = time.time()
    # the interpreter's start is marked before anything is imported, this module included
    code = (
        "import time; started = time.time(), time.process_time()\n"
        "from benchmarks.cli_startup import case_phases\n"
        f"case_phases({command!r}, {spawned!r}, started, {lake!r}, {str(root / 'tiny')!r}, {normal_exit!r})"
    )
    _, cpu, out = _run([sys.executable, "-c", code], env, capture_output=True, text=True)
    ended = time.time()
    child = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "wall": {**child["marks"], "exit": ended - child["end"]},
        "cpu": {**child["cpu"], "exit": cpu - child["end_cpu"]},
    }


def _median(samples: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(s.get(k, 0.0) for s in samples) for k in {k for s in samples for k in s}}


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def measure(env: dict[str, str], root: Path, runs: int) -> dict[str, Any]:
    """Wall figures and phases of every command, and the floors, in environment ``env``."""
    kernel_dir = root / "kernel"
    kernel_dir.mkdir(exist_ok=True)
    (kernel_dir / "trivial_kernel.py").write_text(TRIVIAL_KERNEL)
    kernel = f"import sys; sys.path.insert(0, {str(kernel_dir)!r}); import trivial_kernel; trivial_kernel.one(1)"
    floors = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import numpy": [sys.executable, "-c", "import numpy"],
        "import numba": [sys.executable, "-c", "import numba"],
        "numba + 1 cached kernel": [sys.executable, "-c", kernel],
    }
    for cmd in floors.values():
        _wall(cmd, env)  # warm: bytecode, the kernel's cache
    result: dict[str, Any] = {"floors": {k: _medians([_wall(c, env) for _ in range(runs)]) for k, c in floors.items()}}
    for command in COMMANDS:
        _wall(_program(command, root, -1), env)  # warm-up run
        walls = []
        for run in range(runs):
            walls.append(_wall(_program(command, root, run), env))
            shutil.rmtree(root / f"gen-{run}", ignore_errors=True)
        _phases(command, root, env)  # warm-up
        samples = [_phases(command, root, env) for _ in range(runs)]
        teardown = [_phases(command, root, env, normal_exit=True) for _ in range(3)]
        result[command] = {
            "program": _medians(walls),
            "walls": [w for w, _ in walls],
            "wall": _median([p["wall"] for p in samples]),
            "cpu": _median([p["cpu"] for p in samples]),
            "teardown": _medians([(t["wall"]["exit"], t["cpu"]["exit"]) for t in teardown]),
        }
    return result


def report(title: str, r: dict[str, Any]) -> str:
    names = {
        "help": "fraudflow --help",
        "generate": "fraudflow generate --out <tmp>",
        "features": "fraudflow features --data <tmp>",
    }
    summary, phases = [], []
    for command in COMMANDS:
        c = r[command]
        fixed = {k: sum(v for p, v in c[k].items() if p not in ("compute", "harness")) for k in ("wall", "cpu")}
        wall, cpu = c["program"]
        figures = (wall, cpu, c["wall"]["compute"], fixed["wall"], fixed["cpu"], c["teardown"][0])
        summary.append([f"`{names[command]}`", *(f"{v:.2f}" for v in figures)])
        for k in ("wall", "cpu"):
            phases.append([f"`{names[command]}`", k, *(f"{c[k].get(p, 0.0):.2f}" for p in PHASES)])
    headers = [
        "command",
        "new process: wall s",
        "new process: CPU s",
        "in process: compute s",
        "fixed cost: wall s",
        "fixed cost: CPU s",
        "exit if Python tore down",
    ]
    floors = ", ".join(f"{k} {w:.2f} s (CPU {c:.2f} s)" for k, (w, c) in r["floors"].items())
    return "\n".join(
        [
            f"### {title}",
            "",
            table(headers, summary),
            "",
            "Breakdown of one new process (seconds, median per phase):",
            "",
            table(["command", "", *PHASES], phases),
            "",
            f"Floor (the same stack doing nothing, new process, wall): {floors}.",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="processes per figure (medians)")
    args = ap.parse_args()
    before = os.getloadavg()
    env = dict(os.environ)
    modes = [("as this environment runs", env)]
    if env.get("PYTHONDONTWRITEBYTECODE"):
        cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        modes[0] = ("as this environment runs (PYTHONDONTWRITEBYTECODE: imports compile from source)", env)
        modes.append(("with a bytecode cache (PYTHONPYCACHEPREFIX)", cached))
    out = []
    with tempfile.TemporaryDirectory(prefix="ff-startup-") as tmp:
        root = Path(tmp)
        if len(modes) > 1:
            modes[1][1]["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        subprocess.run([PROGRAM, "generate", "--out", str(root / "lake"), "--json"], check=True, capture_output=True)
        tiny = ["--customers", str(TINY["n_customers"]), "--terminals", str(TINY["n_terminals"])]
        tiny += ["--days", str(TINY["nb_days"])]
        tiny_cmd = [PROGRAM, "generate", "--out", str(root / "tiny"), *tiny, "--json"]
        subprocess.run(tiny_cmd, check=True, capture_output=True)
        subprocess.run([PROGRAM, "features", "--data", str(root / "tiny")], check=True, capture_output=True)
        for title, mode_env in modes:
            out.append(report(title, measure(mode_env, root, args.runs)))
    after = os.getloadavg()
    print(f"machine: {machine()}")
    print(f"load average (1 min) before {before[0]:.2f}, after {after[0]:.2f}; medians of {args.runs} processes\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
