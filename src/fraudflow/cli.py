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

from fraudflow import schema
from fraudflow.errors import ConfigError, FraudflowError
from fraudflow.features.definitions import DEFAULT

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
    bar = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not enabled,
    )
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
        params = WorldParams(
            n_customers=customers,
            n_terminals=terminals,
            nb_days=from_day + days,
            start_date=parse_date(start_date, "--start-date"),
            radius=radius,
        )
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
    out.print(
        f"ingested {summary.rows:,} transactions ({summary.frauds:,} frauds), {summary.days} days "
        f"{summary.first_day} .. {summary.last_day} into {out_} in {time.perf_counter() - t0:.1f} s"
    )


Data = Annotated[str, typer.Option("--data", "-d", help="Lake root: a folder or any fsspec URL.")]


def _date(value: str | None, flag: str) -> dt.date | None:
    from fraudflow.simulate.world import parse_date

    return None if value is None else parse_date(value, flag)


@app.command()
def features(
    data: Data,
    from_date: Annotated[
        str | None, typer.Option("--from-date", help="First day, YYYY-MM-DD (default: first in the lake).")
    ] = None,
    to_date: Annotated[
        str | None, typer.Option("--to-date", help="Last day, YYYY-MM-DD (default: last in the lake).")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="compiled (fast) or duckdb (the SQL).")] = "compiled",
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Recompute every day (after changing definitions).")
    ] = False,
) -> None:
    """Compute the features of a range of days into the offline store (incremental, exact)."""
    from fraudflow.features import build_features

    try:
        with progress_bar() as bar:
            summary = build_features(
                data,
                from_date=_date(from_date, "--from-date"),
                to_date=_date(to_date, "--to-date"),
                engine=engine,
                rebuild=rebuild,
                progress=bar,
            )
    except FraudflowError as exc:
        raise fail(exc) from exc
    out.print(
        f"features: {summary.rows:,} rows, {summary.days} days, feature set {summary.version}, "
        f"{summary.seconds:.2f} s ({summary.rows_per_second:,.0f} rows/s, engine {summary.engine})"
    )


@app.command("training-set")
def training_set(
    data: Data,
    start: Annotated[str, typer.Option("--start", help="First training day, YYYY-MM-DD.")] = "2018-07-25",
    kind: Annotated[str, typer.Option("--kind", help="train, or test (the handbook's test rule).")] = "train",
    days: Annotated[int, typer.Option("--days", help="Days in the set.")] = 7,
    delay: Annotated[int, typer.Option("--delay", help="Label delay in days between train and test.")] = 7,
    dialect: Annotated[
        str | None, typer.Option("--dialect", help="Print the SQL for duckdb, spark, athena or trino.")
    ] = None,
    out_file: Annotated[str | None, typer.Option("--out", help="Write the set to this Parquet file.")] = None,
) -> None:
    """Build a training or test set with SQL over the offline store (or print the SQL)."""
    import pyarrow.parquet as pq

    from fraudflow.lake import Lake
    from fraudflow.store import offline
    from fraudflow.training import datasets

    try:
        first = _date(start, "--start")
        assert first is not None
        if kind not in ("train", "test"):
            raise ConfigError(f"--kind must be train or test, got {kind!r}")
        lake = Lake(data)
        if dialect is not None:
            fs = offline.registered(lake)
            names = fs.names if fs is not None else DEFAULT.names
            sql = datasets.training_set_sql(first, names, kind=kind, days=days, delay=delay, dialect=dialect)  # type: ignore[arg-type]
            typer.echo(sql)  # not rich: it would wrap long lines inside the SQL
            if out_file is None:
                return
        table = datasets.training_set(lake, first, kind=kind, days=days, delay=delay)  # type: ignore[arg-type]
    except FraudflowError as exc:
        raise fail(exc) from exc
    frauds = sum(table[schema.TX_FRAUD].to_pylist())
    if out_file:
        pq.write_table(table, out_file)
    lo, hi = datasets.split_days(first, kind, days, delay)  # type: ignore[arg-type]
    out.print(
        f"{kind} set {lo} .. {hi}: {table.num_rows:,} transactions, {frauds:,} frauds"
        + (f", written to {out_file}" if out_file else "")
    )


def main() -> None:  # pragma: no cover - console entry point
    app()
