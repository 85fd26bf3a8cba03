"""The ``fraudflow`` command line: each command parses its options, runs a stage, prints the result.

Each command imports the stages it runs inside its body: ``fraudflow --help`` loads typer and
rich only (with the engine registry and the evaluation protocol, both standard library only, for
the choices and defaults it shows), and a command loads numba, DuckDB, XGBoost or FastAPI only
when it needs them (tests/test_imports.py checks which modules ``--help`` loads).

The options given before the command are read once into ``Options``, which every command opens
its lake with; a ``FraudflowError`` from any command ends it as ``error: <message>``, exit code 2
(1 for a ``CoverageError``: the command was right, the lake holds too few days or not the ones asked).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from fraudflow import engines
from fraudflow.errors import ConfigError, CoverageError, FraudflowError
from fraudflow.training import protocol
from fraudflow.training.protocol import Kind, Protocol

if TYPE_CHECKING:
    from rich.table import Table

    from fraudflow.lake import Lake
    from fraudflow.training.evaluation import Summary

PROGRAM = "fraudflow"


class App(typer.Typer):
    """The typer app. Run as the ``fraudflow`` program, it ends without the interpreter's teardown.

    Tearing down numba's and LLVM's objects at exit cost a new process 0.15-0.5 s after the
    work was done. Once a command has returned, the exit does what Python's would up to that
    teardown, in the same order (other threads joined, atexit handlers, streams flushed), then
    ends the process. Any other caller (tests, ``python -m fraudflow.cli``, a profiler, an
    unfinished thread, an exception other than the exit) gets the usual exit.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or os.path.basename(sys.argv[0]) != PROGRAM:
            return super().__call__(*args, **kwargs)
        try:
            return super().__call__()
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                _exit_now(exc.code or 0)
            raise


def _exit_now(code: int) -> None:
    """``os._exit(code)`` after the exit steps that have effects; returns if one cannot be taken."""
    import atexit

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    if others or run_exit_functions is None:
        return
    run_exit_functions()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken pipe: let Python report it as usual
        return
    os._exit(code)


class Commands(TyperGroup):
    """The commands: a ``FraudflowError`` from any of them ends it as ``error: <message>``, exit code 2
    (1 for a ``CoverageError``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except FraudflowError as exc:
            error_line(str(exc))
            raise typer.Exit(code=1 if isinstance(exc, CoverageError) else 2) from exc
        except Exception as exc:
            line = s3_client_error(exc)
            if line is None:
                raise
            error_line(line)
            raise typer.Exit(code=2) from exc


def error_line(message: str) -> None:
    """``error: <message>`` on stderr, one line whatever its length (rich wraps at 80 columns off a
    terminal), brackets kept as text."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def s3_client_error(exc: BaseException) -> str | None:
    """The line for an error of S3's client itself (botocore's: no credentials found, an endpoint not
    reached...), which s3fs lets through from any read or write of an ``s3://`` lake; None for any
    other error. By the class's module: botocore is not imported for it (the aws extra may be absent)."""
    if type(exc).__module__.split(".")[0] != "botocore":
        return None
    if type(exc).__name__ == "NoCredentialsError":
        return (
            f"S3: {exc}: give AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where a role"
            " grants them"
        )
    return f"S3: {exc}"


app = App(
    name="fraudflow",
    help="Fraud detection end to end: simulate, features, training sets, XGBoost, serving.",
    cls=Commands,
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()


@dataclass(frozen=True)
class Options:
    """The options given before the command, read once; every command opens its lake with them."""

    endpoint_url: str | None = None  # None: the lake reads AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL

    def lake(self, root: str) -> Lake:
        from fraudflow.lake import Lake

        return Lake(root, endpoint_url=self.endpoint_url)


@app.callback()
def _options(
    ctx: typer.Context,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            help="S3-compatible endpoint for s3:// roots (default: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL).",
        ),
    ] = None,
) -> None:
    """Fraud detection end to end: simulate, features, training sets, XGBoost, serving."""
    ctx.obj = Options(endpoint_url=endpoint_url)


def _lake(ctx: typer.Context, root: str) -> Lake:
    """The lake at ``root``, opened with the settings given before the command."""
    return ctx.ensure_object(Options).lake(root)


def _one_of(check: Callable[[str], object]) -> Callable[[str], str]:
    """An option's parser: the value when ``check`` accepts it, else a usage error with ``check``'s reason."""

    def parse(value: str) -> str:
        try:
            check(value)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from None
        return value

    return parse


def _engine(stage: str, help: str) -> Any:
    """The ``--engine`` option of ``stage``: one of the engines registered for it (``fraudflow.engines``)."""
    return typer.Option(
        "--engine",
        help=help,
        metavar=f"<{'|'.join(engines.names(stage))}>",
        parser=_one_of(functools.partial(engines.check, stage)),
    )


def _world(flag: str, help: str) -> Any:
    """An option of the simulated world: left out, the handbook's value (``WorldParams``'s default)."""
    return typer.Option(flag, help=f"{help} \\[default: the handbook's]")  # escaped: not rich markup


def _check_feature_set(name: str) -> None:
    from fraudflow.features import FEATURE_SETS

    if name not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {name!r}; expected one of {sorted(FEATURE_SETS)}")


def _check_dialect(name: str) -> None:
    from fraudflow.training.datasets import check_dialect

    check_dialect(name)


def _day(value: str, flag: str) -> dt.date:
    from fraudflow.simulate.world import parse_date

    return parse_date(value, flag)


def _time(value: str, flag: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag}: {value!r} is not a time (YYYY-MM-DD[THH:MM:SS])") from None


Root = Annotated[str, typer.Option("--out", "-o", help="Lake root: a folder or any fsspec URL (s3://bucket/prefix).")]
Data = Annotated[str, typer.Option("--data", "-d", help="Lake root: a folder or any fsspec URL.")]
SparkMaster = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL for --engine spark (default local[*]; or FRAUDFLOW_SPARK_MASTER).",
        envvar="FRAUDFLOW_SPARK_MASTER",
    ),
]
Start = Annotated[
    str | None,
    typer.Option("--start", help="First training day, YYYY-MM-DD (default: the newest split whose labels are mature)."),
]
ProtocolName = Annotated[
    Protocol,
    typer.Option(
        "--protocol",
        help="lake: the newest splits whose labels are mature (last day minus the 7-day delay); "
        "handbook: its published days.",
    ),
]
AlertBudget = Annotated[
    float,
    typer.Option(
        "--alert-budget",
        min=1,
        help="Cards a day the investigators check: the alert threshold stored with the model alerts that "
        "many on average on its test week.",
    ),
]
SPLIT_START = protocol.SINGLE_SPLIT_START.isoformat()
SplitKind = Annotated[Kind, typer.Option("--kind", help="train, or test (the handbook's test rule).")]


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar as a ``progress(stage, done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

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


@app.command()
def generate(
    ctx: typer.Context,
    out_: Root,
    customers: Annotated[int | None, _world("--customers", "Number of customers.")] = None,
    terminals: Annotated[int | None, _world("--terminals", "Number of terminals.")] = None,
    days: Annotated[int | None, _world("--days", "Number of days to generate from --from-day.")] = None,
    start_date: Annotated[str | None, _world("--start-date", "Date of day 0, YYYY-MM-DD.")] = None,
    radius: Annotated[float | None, _world("--radius", "A customer uses terminals closer than this.")] = None,
    from_day: Annotated[int, typer.Option("--from-day", help="First day index: continue a world from day N.")] = 0,
    change: Annotated[
        list[str] | None,
        typer.Option(
            "--change",
            help="Change the world from a day: KIND:FROM_DAY[:NAME=VALUE,...], repeatable; kinds spending, "
            "terminals, under_threshold (docs/WORLD_CHANGES.md). Recorded in the lake, kept by continuations.",
        ),
    ] = None,
    changes_file: Annotated[
        str | None, typer.Option("--changes", help="A JSON list of changes (docs/WORLD_CHANGES.md).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Threads (default: all cores).")] = None,
    engine: Annotated[
        str, _engine("simulate", "local (compiled kernel, threads) or spark (the same kernel in Spark tasks).")
    ] = engines.names("simulate")[0],
    spark_master: SparkMaster = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate the handbook's transaction world into the lake (exact, any scale)."""
    from rich.table import Table

    from fraudflow.simulate import WorldParams
    from fraudflow.simulate import generate as run
    from fraudflow.simulate.changes import changes_from_options

    handbook = WorldParams()
    params = WorldParams.from_options(
        n_customers=customers,
        n_terminals=terminals,
        nb_days=from_day + (handbook.nb_days if days is None else days),
        start_date=None if start_date is None else _day(start_date, "--start-date"),
        radius=radius,
        changes=changes_from_options(change or [], changes_file) or None,
    )
    lake = _lake(ctx, out_)
    with progress_bar(not as_json) as bar:
        summary = run(
            lake, params, from_day=from_day, workers=workers, progress=bar, engine=engine, spark_master=spark_master
        )
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
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="Transactions table, .parquet or .csv, in the lake's columns.")],
    out_: Root,
) -> None:
    """Load an existing transactions table into the lake, validated before anything is written."""
    from fraudflow.ingest import ingest as run

    t0 = time.perf_counter()
    lake = _lake(ctx, out_)
    with console.status(f"validating {file}"):
        summary = run(file, lake)
    out.print(
        f"ingested {summary.rows:,} transactions ({summary.frauds:,} frauds), {summary.days} days "
        f"{summary.first_day} .. {summary.last_day} into {out_} in {time.perf_counter() - t0:.1f} s"
    )


@app.command()
def features(
    ctx: typer.Context,
    data: Data,
    from_date: Annotated[
        str | None, typer.Option("--from-date", help="First day, YYYY-MM-DD (default: first in the lake).")
    ] = None,
    to_date: Annotated[
        str | None, typer.Option("--to-date", help="Last day, YYYY-MM-DD (default: last in the lake).")
    ] = None,
    engine: Annotated[
        str, _engine("features", "compiled (fast), duckdb (the SQL) or spark (the SQL on Spark).")
    ] = engines.names("features")[0],
    spark_master: SparkMaster = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Recompute every day (after changing definitions).")
    ] = False,
    feature_set: Annotated[
        str,
        typer.Option(
            "--feature-set",
            help="handbook (its 15 inputs), fraudflow (those and one ratio), or the candidates fraudflow-2 (26), "
            "fraudflow-3 (30) and fraudflow-4 (36; docs/MODEL.md).",
            metavar="<name>",
            parser=_one_of(_check_feature_set),
        ),
    ] = "handbook",
) -> None:
    """Compute the features of a range of days into the offline store (incremental, exact)."""
    from fraudflow.features import FEATURE_SETS, build_features

    lake = _lake(ctx, data)
    with progress_bar() as bar:
        summary = build_features(
            lake,
            FEATURE_SETS[feature_set],
            from_date=None if from_date is None else _day(from_date, "--from-date"),
            to_date=None if to_date is None else _day(to_date, "--to-date"),
            engine=engine,
            rebuild=rebuild,
            progress=bar,
            spark_master=spark_master,
        )
    out.print(
        f"features: {summary.rows:,} rows, {summary.days} days, feature set {summary.version}, "
        f"{summary.seconds:.2f} s ({summary.rows_per_second:,.0f} rows/s, engine {summary.engine})"
    )


@app.command("training-set")
def training_set(
    ctx: typer.Context,
    data: Data,
    start: Start = None,
    kind: SplitKind = "train",
    days: Annotated[int, typer.Option("--days", help="Days in the set.")] = protocol.SPLIT_DAYS,
    delay: Annotated[
        int, typer.Option("--delay", help="Label delay in days between train and test.")
    ] = protocol.DELAY_DAYS,
    dialect: Annotated[
        str | None,
        typer.Option(
            "--dialect",
            help="Print the SQL for duckdb, spark, athena or trino.",
            metavar="<name>",
            parser=_one_of(_check_dialect),
        ),
    ] = None,
    out_file: Annotated[str | None, typer.Option("--out", help="Write the set to this Parquet file.")] = None,
    labels_as_of: Annotated[
        str | None,
        typer.Option(
            "--labels-as-of",
            help="On a lake with a labels table: use the labels known at this time, YYYY-MM-DD[THH:MM:SS] "
            "(default: the set's last day plus the delay).",
        ),
    ] = None,
) -> None:
    """Build a training or test set with SQL over the offline store (or print the SQL)."""
    import pyarrow.parquet as pq

    from fraudflow import schema
    from fraudflow.training import datasets
    from fraudflow.training.calendar import lake_days

    lake = _lake(ctx, data)
    if start is None:
        first = protocol.newest_mature_start(lake_days(lake)[1], days, delay)
    else:
        first = _day(start, "--start")
    cutoff = None if labels_as_of is None else _time(labels_as_of, "--labels-as-of")
    if dialect is not None:
        sql = datasets.training_set_query(
            lake, first, kind=kind, days=days, delay=delay, dialect=dialect, labels_as_of=cutoff
        )
        typer.echo(sql)  # not rich: it would wrap long lines inside the SQL
        if out_file is None:
            return
    table = datasets.training_set(lake, first, kind=kind, days=days, delay=delay, labels_as_of=cutoff)
    frauds = sum(table[schema.TX_FRAUD].to_pylist())
    known = datasets.labels_cutoff_of(lake, first, kind, days, delay, cutoff)
    if out_file:
        pq.write_table(table, out_file)
    lo, hi = protocol.split_days(first, kind, days, delay)
    out.print(
        f"{kind} set {lo} .. {hi}: {table.num_rows:,} transactions, {frauds:,} frauds"
        + ("" if known is None else f" (labels known at {known})")
        + (f", written to {out_file}" if out_file else "")
    )


@app.command("labels")
def labels_(
    ctx: typer.Context,
    data: Data,
    file: Annotated[
        str,
        typer.Argument(
            help="CSV or Parquet file: TRANSACTION_ID, TX_FRAUD (0 or 1), optional LABEL_TIME (ISO 8601; default now).",
            show_default=False,
        ),
    ],
    source: Annotated[
        str, typer.Option("--source", help="Where the labels come from: chargeback, analyst, api, ...")
    ] = "analyst",
    analyst: Annotated[str | None, typer.Option("--analyst", help="Who labelled them.")] = None,
) -> None:
    """Record fraud labels with their arrival time in the lake's labels table (all or none)."""
    from fraudflow.store import labels

    loaded = labels.load_file(_lake(ctx, data), file, source=source, analyst=analyst)
    out.print(
        f"labels: {loaded.rows:,} labels ({loaded.frauds:,} fraud{'' if loaded.frauds == 1 else 's'}) from {file}"
        + ("" if loaded.first is None else f", arrived {loaded.first} .. {loaded.last}")
    )


def _metrics_table(title: str, rows: dict[str, Summary], bound: float) -> Table:
    """Models' test-fold metrics (mean ± sd) above the handbook's published ones."""
    from rich.table import Table

    t = Table(title=title)
    for col in ("model", "AUC ROC", "Average precision", "CP@100"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name, summary in rows.items():
        t.add_row(f"[bold]{name}[/]", *(f"{e.mean:.3f} ± {e.std:.3f}" for e in summary.headline()))
    for name, values in protocol.PUBLISHED.items():
        t.add_row(f"handbook: {name}", *(f"{v:.3f}" for v in values))
    t.caption = f"CP@100 upper bound (perfect ranking): {bound:.3f}"
    return t


@app.command()
def train(
    ctx: typer.Context,
    data: Data,
    start: Start = None,
    protocol_name: ProtocolName = "lake",
    tune: Annotated[bool, typer.Option("--tune", help="Choose parameters on the validation folds first.")] = False,
    engine: Annotated[
        str, _engine("training", "local (XGBoost here) or spark (Spark SQL sets, XGBoost's Spark estimator).")
    ] = engines.names("training")[0],
    spark_master: SparkMaster = None,
    alert_budget: AlertBudget = protocol.K,
) -> None:
    """Train fraudflow's XGBoost on one split, evaluate it, save it with its report and its alert threshold."""
    from fraudflow.training import workflow
    from fraudflow.training.calendar import lake_plan
    from fraudflow.training.report import write as write_report

    given = None if start is None else _day(start, "--start")
    lake = _lake(ctx, data)
    workflow.ensure_features(lake, say=console.print)
    plan = lake_plan(lake, protocol_name, "split", tune=tune, start=given)
    (first,) = plan.judged
    params = None
    if tune:
        with console.status(f"choosing parameters on the validation folds from {plan.validation}"):
            params = workflow.tune(lake, plan).params
    with console.status("training"):
        trained = workflow.train(
            lake, first, params, engine=engine, spark_master=spark_master, cards_per_day=alert_budget
        )
        path = write_report(lake, trained.model_id, trained.folds)
    summary = trained.results.summary
    title = f"model {trained.model_id}, single split {first} ({plan.origin})"
    out.print(_metrics_table(title, {"fraudflow": summary}, summary.card_precision_bound.mean))
    out.print(f"saved to {lake.path('models', trained.model_id)}; report: {path}")


@app.command()
def evaluate(
    ctx: typer.Context,
    data: Data,
    protocol_name: ProtocolName = "lake",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    reproduce: Annotated[bool, typer.Option(help="Also rerun the handbook's own grid (exact trees, ~2.5 min).")] = True,
    previous: Annotated[
        bool,
        typer.Option(
            help="Also select and judge the model fraudflow-4 replaced (FRAUDFLOW's 16 inputs, exact trees, "
            "its grid; ~2 min) and count the test folds fraudflow beats it on."
        ),
    ] = True,
) -> None:
    """Judge fraudflow's configuration on prequential test folds and print it beside the handbook's results."""
    from fraudflow.training import workflow

    lake = _lake(ctx, data)
    workflow.ensure_features(lake, say=console.print)
    with console.status(f"evaluating by the {protocol_name} protocol") as status:
        evaluation = workflow.evaluate(
            lake, protocol=protocol_name, reproduce=reproduce, with_previous=previous, step=status.update
        )
    if as_json:
        typer.echo(json.dumps(evaluation.to_json()))
        return
    test = evaluation.fraudflow.test.summary
    fs, before = workflow.FRAUDFLOW_FEATURES, workflow.PREVIOUS_FEATURES
    judged = [(f"fraudflow ({fs.name}, {len(fs.names)} inputs, hist trees)", "fraudflow", evaluation.fraudflow)]
    if evaluation.previous is not None:
        judged.append((f"previous model ({len(before.names)} inputs, exact trees)", "previous", evaluation.previous))
    if evaluation.handbook is not None:
        judged.append(("fraudflow, handbook grid reproduced", "handbook grid", evaluation.handbook))
    rows = {label: selection.test.summary for label, _, selection in judged}
    plan = evaluation.plan
    title = f"test folds from {plan.judged[0]} ({plan.origin}), validation-selected, prequential mean ± sd"
    wide = Console(width=max(out.width, 140))  # whole rows and lines, also when piped (80 columns)
    wide.print(_metrics_table(title, rows, test.card_precision_bound.mean))
    if test.card_precision_observable is not None:
        shares = ", ".join(
            f"{short} {share:.1%}"
            for _, short, selection in judged
            if (share := selection.test.summary.observable_share) is not None
        )
        wide.print(
            f"CP@100 of an oracle knowing only what was observable (docs/MODEL.md): "
            f"{test.card_precision_observable.mean:.3f}; the models' share of it: {shares}"
        )
    if evaluation.gap_closed is not None:
        wide.print(f"CP@100 gap to the perfect ranking closed beyond the handbook's best: {evaluation.gap_closed:.1%}")
    wins = evaluation.wins_over_previous
    if wins is not None:
        auc, ap, cp = wins.values()
        n = len(plan.judged)
        wide.print(f"folds where fraudflow beats the previous model: AUC {auc}/{n}, AP {ap}/{n}, CP@100 {cp}/{n}")
    times = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in evaluation.seconds.items())
    wide.print(f"selection time (validation grid and test folds): {times}")


@app.command()
def report(
    ctx: typer.Context, model_dir: Annotated[str, typer.Argument(help="A model folder: <root>/models/<id>.")]
) -> None:
    """Write (again) a model's self-contained HTML report."""
    from fraudflow.training.report import write as write_report

    root, _, model_id = model_dir.rstrip("/").rpartition("/models/")
    if not root:
        raise ConfigError(f"{model_dir}: expected a path like <root>/models/<id>")
    out.print(f"report: {write_report(_lake(ctx, root), model_id)}")


@app.command()
def pipeline(
    ctx: typer.Context,
    out_: Root = "demo-lake",
    customers: Annotated[int | None, _world("--customers", "Number of customers.")] = None,
    terminals: Annotated[int | None, _world("--terminals", "Number of terminals.")] = None,
    days: Annotated[int | None, _world("--days", "Number of days.")] = None,
    start_date: Annotated[str | None, _world("--start-date", "Date of day 0, YYYY-MM-DD.")] = None,
    radius: Annotated[float | None, _world("--radius", "A customer uses terminals closer than this.")] = None,
    protocol_name: ProtocolName = "lake",
    tune: Annotated[bool, typer.Option(help="Choose the parameters on the validation folds.")] = True,
) -> None:
    """Everything on one world (the handbook's unless told): generate, features, tune, train, evaluate, report."""
    from fraudflow.pipeline import run_pipeline
    from fraudflow.simulate import WorldParams

    t0 = time.perf_counter()
    params = WorldParams.from_options(
        n_customers=customers,
        n_terminals=terminals,
        nb_days=days,
        start_date=None if start_date is None else _day(start_date, "--start-date"),
        radius=radius,
    )
    lake = _lake(ctx, out_)
    with console.status("pipeline") as status:
        result = run_pipeline(
            lake, params, tune=tune, protocol=protocol_name, step=lambda name: status.update(f"pipeline: {name}")
        )
    summary = result.results.summary
    title = f"fraudflow pipeline: test folds from {max(result.results.folds)} (prequential mean ± sd)"
    out.print(_metrics_table(title, {"fraudflow XGBoost": summary}, summary.card_precision_bound.mean))
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    out.print(f"{steps}; total {time.perf_counter() - t0:.1f} s")
    out.print(f"model {result.model_id}; report: {result.report}")


Online = Annotated[
    str | None,
    typer.Option("--online", help="Online store: redis://host:6379/0, sqlite:///path (default: SQLite in the lake)."),
]
AnswersWindow = Annotated[
    float | None,
    typer.Option(
        "--answers-window-days",
        help="Days the online store keeps each answer: a TRANSACTION_ID sent again within them gets its first "
        "answer, later it is answered anew (default 1; at most the feature set's longest history, 37).",
    ),
]


@app.command()
def materialize(ctx: typer.Context, data: Data, online: Online = None) -> None:
    """Load the online store from the lake (the last 37 days and their labels), incrementally."""
    from fraudflow.features import registry
    from fraudflow.store.online.connect import open_store
    from fraudflow.store.online.materialize import materialize as run

    lake = _lake(ctx, data)
    feature_set = registry.required(lake)
    store = open_store(online, lake.root if lake.local else None)
    with console.status("materializing"):
        summary = run(lake, store, feature_set)
    store.close()
    if summary.up_to_date:
        out.print(f"online store already holds the lake through {summary.through}")
    else:
        out.print(
            f"materialized {summary.rows:,} transactions ({summary.frauds:,} fraud labels) of {summary.days} days, "
            f"through {summary.through}"
        )


@app.command()
def serve(
    ctx: typer.Context,
    data: Data,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model id, served until stopped (default: the registry's production model, followed as it "
            "changes; the newest finished model before any promotion).",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8000,
    online: Online = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Alert when the score is at least this (default: the threshold stored with the model for its "
            "alert budget, else 0.5).",
        ),
    ] = None,
    api_key_env: Annotated[
        str, typer.Option("--api-key-env", help="Environment variable holding the API key (unset: no key).")
    ] = "FRAUDFLOW_API_KEY",
    workers: Annotated[
        int, typer.Option("--workers", help="Service processes sharing the online store (SQLite or Redis).")
    ] = 1,
    production_poll: Annotated[
        float,
        typer.Option(
            "--production-poll",
            help="Seconds between looks at the registry's production alias (a promoted model answers from the "
            "next batch, no restart); 0: never.",
        ),
    ] = 10.0,
    answers_window_days: AnswersWindow = None,
) -> None:
    """Serve POST /v1/score with online features (materializes the store on start when behind).

    Everything the service needs is checked before a port opens: a refusal (no features, no model,
    a model of another feature-set version, an online store out of reach) is one line and exit 2.
    """
    from fraudflow.serving.server import run
    from fraudflow.serving.settings import Settings

    settings = Settings(
        data=data,
        endpoint_url=ctx.ensure_object(Options).endpoint_url,
        model_id=model,
        online=online,
        threshold=threshold,
        api_key=os.environ.get(api_key_env) or None,
        production_poll_seconds=production_poll,
        answers_window_days=answers_window_days,
    )
    status = run(settings, host=host, port=port, workers=workers)
    if status:
        raise typer.Exit(code=status)


@app.command()
def replay(
    ctx: typer.Context,
    data: Data,
    url: Annotated[str, typer.Option("--url", help="The running service.")] = "http://127.0.0.1:8000",
    days: Annotated[int, typer.Option("--days", help="Days to continue the world by.")] = 1,
    rate: Annotated[float, typer.Option("--rate", help="Transactions per second.")] = 500.0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight (1: exact order).")] = 8,
    api_key_env: Annotated[str, typer.Option("--api-key-env", help="Variable with the API key.")] = "FRAUDFLOW_API_KEY",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Continue the world past the lake's last day and send it to the service as live traffic."""
    import os

    from rich.live import Live
    from rich.table import Table

    from fraudflow.jobs.replay import ReplayStats
    from fraudflow.jobs.replay import replay as run

    def line(st: ReplayStats) -> str:
        return (
            f"sent {st.sent:,} ({st.rate:,.0f}/s)  ok {st.ok:,}  errors {st.errors}  alerts {st.alerts}  "
            f"labels {st.labels_sent}  p50 {st.percentile(50):.1f} ms  p99 {st.percentile(99):.1f} ms"
        )

    lake = _lake(ctx, data)
    with Live("starting", console=console, transient=True, refresh_per_second=4) as live:
        result = run(
            lake,
            url,
            days=days,
            rate=rate,
            concurrency=concurrency,
            api_key=os.environ.get(api_key_env) or None,
            on_tick=lambda st: live.update(line(st)),
        )
    if as_json:
        typer.echo(json.dumps(result, default=float))
        return
    t = Table(title=f"replay of {days} day(s) to {url}", show_header=False)
    for key, value in result.items():
        t.add_row(key, f"{value:,.3f}" if isinstance(value, float) else f"{value:,}")
    out.print(t)


@app.command()
def consistency(ctx: typer.Context, data: Data, online: Online = None) -> None:
    """Recompute every served feature vector in batch; report late arrivals (differences explained
    by arrival order) and skew (any other) per feature."""
    from rich.table import Table

    from fraudflow.features import registry
    from fraudflow.jobs.consistency import check
    from fraudflow.store.online.connect import open_store

    lake = _lake(ctx, data)
    store = open_store(online, lake.root if lake.local else None)
    report_ = check(lake, store, registry.required(lake))
    t = Table(title=f"{report_.compared:,} of {report_.served:,} served transactions recomputed in batch")
    t.add_column("feature")
    t.add_column("late arrivals", justify="right")
    t.add_column("skew", justify="right")
    for name, n in report_.skew.items():
        t.add_row(name, str(report_.late[name]), str(n))
    out.print(t)
    out.print(f"{report_.late_arrivals:,} late arrivals (explained by arrival order), {report_.skewed:,} with skew")
    if not report_.ok:
        raise typer.Exit(1)


@app.command()
def monitor(
    ctx: typer.Context,
    data: Data,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (flags on stderr).")] = False,
    html: Annotated[str | None, typer.Option("--html", help="Write the report as an HTML page (inline SVG).")] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Only the log's last N days.")] = None,
    psi: Annotated[float, typer.Option("--psi", help="Flag an input whose PSI exceeds this.")] = 0.2,
    ks: Annotated[float, typer.Option("--ks", help="Flag an input whose KS statistic exceeds this.")] = 0.1,
    drift_days: Annotated[int, typer.Option("--drift-days", help="Days in a drift window.")] = 7,
    alert_tolerance: Annotated[
        float, typer.Option("--alert-tolerance", help="Flag a day alerting more cards than budget x (1 + this).")
    ] = 0.5,
    late_after: Annotated[
        float, typer.Option("--late-after", help="Seconds older than the newest served before: a late transaction.")
    ] = 600.0,
    cp_drop: Annotated[
        float, typer.Option("--cp-drop", help="Flag a mature week whose live CP@100 is below (1 - this) x the model's.")
    ] = 0.5,
) -> None:
    """Watch the deployed model from its prediction log: volume, alerts against the budget, scores, drift of
    each input against the model's training window (PSI, KS), data quality, label lag, live AUC / AP /
    CP@100 on mature days, promotions. Exit status 3 when a threshold is crossed (one line each)."""
    from fraudflow.jobs import monitor_table
    from fraudflow.jobs.monitor import Thresholds
    from fraudflow.jobs.monitor import monitor as run_monitor

    limits = Thresholds(psi, ks, drift_days, alert_tolerance, late_after, cp_drop)
    with console.status("reading the prediction log"):
        report_ = run_monitor(_lake(ctx, data), days=days, thresholds=limits)
    if html:
        from pathlib import Path

        from fraudflow.jobs.monitor_html import render

        Path(html).write_text(render(report_), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(report_.to_json()))
    else:
        Console(width=max(out.width, 170)).print(monitor_table.table(report_))  # whole ids, also when piped
        for line in monitor_table.lines(report_):
            out.print(line, soft_wrap=True, highlight=False, markup=False)
    flagged = console if as_json else out
    for flag in report_.flags:
        flagged.print(flag.message, soft_wrap=True, highlight=False, markup=False)
    if not report_.ok:
        raise typer.Exit(3)


@app.command()
def operate(
    ctx: typer.Context,
    data: Data,
    days: Annotated[
        int,
        typer.Option(
            "--days",
            min=1,
            help="Days to operate since operation began (the same command after a stop finishes them; more goes on).",
        ),
    ],
    url: Annotated[
        str | None, typer.Option("--url", help="Score through the service there (default: in this process).")
    ] = None,
    online: Online = None,
    answers_window_days: AnswersWindow = None,
    change: Annotated[
        list[str] | None,
        typer.Option(
            "--change",
            help="Change the world from a day: KIND:FROM_DAY[:NAME=VALUE,...], repeatable (as `generate --change`).",
        ),
    ] = None,
    changes_file: Annotated[
        str | None, typer.Option("--changes", help="A JSON list of changes (docs/WORLD_CHANGES.md).")
    ] = None,
    retrain_every: Annotated[
        int, typer.Option("--retrain-every", min=1, help="Days between challengers (trained, then gated).")
    ] = 7,
    margin_ap: Annotated[
        float, typer.Option("--margin-ap", help="Average precision a challenger must gain over the champion.")
    ] = 0.0,
    margin_cp: Annotated[float, typer.Option("--margin-cp", help="CP@100 it must gain over the champion.")] = 0.0,
    api_key_env: Annotated[
        str, typer.Option("--api-key-env", help="Variable with the service's API key.")
    ] = "FRAUDFLOW_API_KEY",
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
) -> None:
    """Run the deployment one simulated day at a time: continue the world, score every transaction in
    arrival order, deliver the chargebacks of 7-day-old frauds, update features, monitor, and every
    --retrain-every days train a challenger on the newest mature weeks and gate it. A restart continues
    where it stopped (state in the lake's operate/)."""
    import os

    from fraudflow.jobs.operate import DayReport
    from fraudflow.jobs.operate import operate as run
    from fraudflow.simulate.changes import changes_from_options
    from fraudflow.training.registry import Margins

    lake = _lake(ctx, data)

    def said(day: DayReport) -> None:
        console.print(day.line(), soft_wrap=True, highlight=False, markup=False)

    with progress_bar(not as_json) as bar:
        report_ = run(
            lake,
            days,
            url=url,
            api_key=os.environ.get(api_key_env) or None,
            online=online,
            answers_window_days=answers_window_days,
            changes=changes_from_options(change or [], changes_file),
            retrain_every=retrain_every,
            margins=Margins(margin_ap, margin_cp),
            on_day=None if as_json else said,
            progress=lambda done, total: bar("days", done, total),
        )
    if as_json:
        typer.echo(json.dumps(report_.to_json()))
        return
    ran = f"operated {len(report_.days)} day(s)" if report_.days else "nothing to do"
    out.print(
        f"{ran}: {data} is operated from {report_.first_day} through {report_.last_day} (asked: through "
        f"{report_.target_day}); each day in {data}/operate/days/, the monitor: `fraudflow monitor --data {data}`",
        soft_wrap=True,
    )


models = typer.Typer(name="models", help="The model registry: list, promote, roll back, gate.", no_args_is_help=True)
app.add_typer(models)
ModelId = Annotated[str, typer.Argument(help="A model id (see `fraudflow models list`).")]


@models.command("list")
def models_list(
    ctx: typer.Context,
    data: Data,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """The finished models, oldest first: test metrics, aliases, alert threshold."""
    from rich.table import Table

    from fraudflow.training import registry

    entries = registry.entries(_lake(ctx, data))
    if as_json:
        typer.echo(json.dumps([e.to_json() for e in entries]))
        return
    t = Table(title=f"{len(entries)} finished model(s), oldest first; test-week metrics")
    for col in ("id", "created (UTC)", "AUC ROC", "AP", "CP@100", "aliases", "threshold (cards/day)"):
        t.add_column(col, justify="left" if col in ("id", "created (UTC)", "aliases") else "right", no_wrap=True)
    for e in entries:
        figures = (e.metrics.get(m) for m in ("auc_roc", "average_precision", f"card_precision_at_{protocol.K}"))
        created = "-" if e.created is None else e.created.replace("T", " ").rstrip("Z")
        threshold = "-" if e.threshold is None else f"{e.threshold:.4f} ({e.cards_per_day:g})"
        cells = ("-" if v is None else f"{v:.3f}" for v in figures)
        t.add_row(e.model_id, created, *cells, ", ".join(e.aliases), threshold)
    Console(width=max(out.width, 130)).print(t)  # whole ids and figures, also when piped (80 columns)


@models.command("promote")
def models_promote(
    ctx: typer.Context,
    model_id: ModelId,
    data: Data,
    alias: Annotated[str, typer.Option("--alias", help="production or candidate.")] = "production",
    reason: Annotated[str, typer.Option("--reason", help="Why, for the decision log.")] = "by hand",
) -> None:
    """Point an alias (production by default) at a finished model; recorded in the decision log."""
    from fraudflow.training import registry

    decision = registry.promote(_lake(ctx, data), model_id, alias=registry.parse_alias(alias), reason=reason)
    out.print(f"{decision.alias}: {decision.from_model or '(none)'} -> {decision.to_model}")


@models.command("rollback")
def models_rollback(
    ctx: typer.Context,
    data: Data,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the decision log.")] = "by hand",
) -> None:
    """Put the previous production model back in production; recorded in the decision log."""
    from fraudflow.training import registry

    decision = registry.rollback(_lake(ctx, data), reason=reason)
    out.print(f"production: {decision.from_model} -> {decision.to_model} (rolled back)")


@models.command("gate")
def models_gate(
    ctx: typer.Context,
    challenger: ModelId,
    data: Data,
    margin_ap: Annotated[
        float, typer.Option("--margin-ap", help="Average precision the challenger must gain over the champion.")
    ] = 0.0,
    margin_cp: Annotated[float, typer.Option("--margin-cp", help="CP@100 it must gain over the champion.")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Judge a challenger against production on the newest week whose labels are mature; promote it
    if it gains at least the margins on AP and CP@100, else make it the candidate. Recorded either way."""
    from fraudflow.training import registry

    lake = _lake(ctx, data)
    with console.status(f"judging {challenger} against production"):
        decision = registry.gate(lake, challenger, registry.Margins(margin_ap, margin_cp))
    if as_json:
        typer.echo(json.dumps(decision.to_json()))
        return
    verdict = "promoted to production" if decision.changed else "kept out (candidate)"
    week = f" on {decision.week[0]} .. {decision.week[1]}" if decision.week else ""
    out.print(f"{decision.to_model} {verdict}{week}: {decision.reason}")


@app.command()
def compact(
    ctx: typer.Context,
    data: Data,
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            help="predictions or labels (repeatable; default both).",
            metavar="TABLE",
            parser=_one_of(_check_append_table),
        ),
    ] = None,
    through: Annotated[str | None, typer.Option("--through", help="Last day to compact (default: every day).")] = None,
) -> None:
    """Rewrite each day of the prediction log and the labels as one file (safe beside running services)."""
    from fraudflow.jobs.compaction import TABLES
    from fraudflow.jobs.compaction import compact as run

    last = None if through is None else _day(through, "--through")
    with progress_bar() as bar:
        done = run(_lake(ctx, data), table or list(TABLES), last, progress=bar)
    for c in done:
        out.print(
            f"{c.table}: {c.days:,} day{'' if c.days == 1 else 's'}, {c.rewritten:,} rewritten"
            + (f" ({c.files_before:,} files now {c.rewritten:,})" if c.rewritten else "")
        )


def _check_append_table(name: str) -> None:
    from fraudflow.jobs.compaction import TABLES

    if name not in TABLES:
        raise ConfigError(f"unknown table {name!r}; expected one of {sorted(TABLES)}")


@app.command("athena-ddl")
def athena_ddl(
    ctx: typer.Context,
    data: Data,
    start: Annotated[str, typer.Option("--start", help="First training day of the query.")] = SPLIT_START,
    kind: SplitKind = "train",
) -> None:
    """Print Athena/Glue DDL for the lake (partition projection) and the training-set query."""
    from fraudflow.cloud.athena import script

    typer.echo(script(_lake(ctx, data), _day(start, "--start"), kind))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # python -m fraudflow.cli
    main()
