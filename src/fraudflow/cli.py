"""The ``fraudflow`` command line: thin commands over the package."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from fraudflow.errors import FraudflowError

app = typer.Typer(
    name="fraudflow",
    help="Fraud detection end to end: simulate, features, training sets, XGBoost, serving.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()

Root = Annotated[str, typer.Option("--out", "-o", help="Lake root: a folder or any fsspec URL (s3://bucket/prefix).")]


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar as a ``progress(stage, done, total)`` callback."""
    bar = Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True, disable=not enabled)
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


def fail(exc: FraudflowError) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=2)


@app.command()
def generate(
    out_: Root,
    customers: Annotated[int, typer.Option("--customers", help="Number of customers.")] = 5000,
    terminals: Annotated[int, typer.Option("--terminals", help="Number of terminals.")] = 10000,
    days: Annotated[int, typer.Option("--days", help="Number of days to generate (from --from-day).")] = 183,
    start_date: Annotated[str, typer.Option("--start-date", help="Date of day 0, YYYY-MM-DD.")] = "2018-04-01",
    radius: Annotated[float, typer.Option("--radius", help="A customer uses terminals closer than this.")] = 5.0,
    from_day: Annotated[int, typer.Option("--from-day", help="First day index: continue a world from day N.")] = 0,
    workers: Annotated[int | None, typer.Option("--workers", help="Threads (default: all cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate the handbook's transaction world into the lake (exact, any scale)."""
    from fraudflow.simulate import WorldParams
    from fraudflow.simulate import generate as run
    from fraudflow.simulate.world import parse_date

    try:
        params = WorldParams(n_customers=customers, n_terminals=terminals, nb_days=from_day + days,
                             start_date=parse_date(start_date, "--start-date"), radius=radius)
        with progress_bar(not as_json) as bar:
            summary = run(out_, params, from_day=from_day, workers=workers, progress=bar)
    except FraudflowError as exc:
        raise fail(exc) from exc
    if as_json:
        out.print_json(json.dumps(summary.to_json()))
        return
    first = params.start_date + dt.timedelta(days=from_day)
    last = params.start_date + dt.timedelta(days=params.nb_days - 1)
    t = Table(title=f"generated {first} .. {last} into {out_}", show_header=False)
    t.add_row("transactions", f"{summary.rows:,}")
    for k, v in summary.frauds_by_scenario.items():
        t.add_row(f"frauds, scenario {k}", f"{v:,}")
    t.add_row("fraud rate", f"{summary.fraud_rate:.3%}")
    t.add_row("seconds", f"{summary.seconds:.2f}")
    t.add_row("rows/s", f"{summary.rows_per_second:,.0f}")
    out.print(t)


@app.command()
def ingest(
    file: Annotated[str, typer.Argument(help="Transactions table, .parquet or .csv, in the lake's columns.")],
    out_: Root,
) -> None:
    """Load an existing transactions table into the lake, validated before anything is written."""
    from fraudflow.ingest import ingest as run

    t0 = time.perf_counter()
    try:
        with console.status(f"validating {file}"):
            summary = run(file, out_)
    except FraudflowError as exc:
        raise fail(exc) from exc
    out.print(f"ingested {summary.rows:,} transactions ({summary.frauds:,} frauds), {summary.days} days "
              f"{summary.first_day} .. {summary.last_day} into {out_} in {time.perf_counter() - t0:.1f} s")


def main() -> None:  # pragma: no cover - console entry point
    app()
