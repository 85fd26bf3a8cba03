"""Run the service: everything it needs checked before a port opens, then uvicorn (1 or N processes).

Every start-up refusal (no features, no model, a model of another feature-set version, an online
store that cannot be reached or opened) is a ``FraudflowError`` raised by ``open_scorer`` before
uvicorn starts, so that ``fraudflow serve`` ends with one line and a non-zero exit, never a
traceback. With N workers the parent runs the same check once (and brings the store up to date)
before it spawns them; a worker that still cannot start says why in one line and exits with
uvicorn's start-up failure code, which makes the parent stop rather than restart it.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil
import sys
import tempfile

from fraudflow.errors import ConfigError, FraudflowError, LakeError
from fraudflow.lake import Lake
from fraudflow.serving.app import service
from fraudflow.serving.engine import Scorer
from fraudflow.serving.fast_score import FastScore
from fraudflow.serving.metrics import MULTIPROC_ENV
from fraudflow.serving.served_log import recover
from fraudflow.serving.settings import SETTINGS_ENV, Settings

#: What each worker process runs (``uvicorn --factory``).
WORKER_APP = "fraudflow.serving.server:worker_app"
#: The HTTP protocol every process serves with (``http_protocol``).
PROTOCOL = "fraudflow.serving.http_protocol:ScoringProtocol"


def open_scorer(settings: Settings) -> Scorer:
    """The scorer ``settings`` describe, its online store up to date; a ``FraudflowError`` when it cannot be."""
    lake = Lake(settings.data, endpoint_url=settings.endpoint_url)
    try:
        scorer = Scorer.from_lake(lake, settings.model_id, settings.online, settings.threshold, settings.answers_us)
    except OSError as exc:  # a path the store or the lake cannot create, read or write
        raise LakeError(f"the online store or the lake cannot be opened: {exc}") from exc
    scorer.warm()
    # what start-up built stays for the process's life: out of the collector's way, whose full
    # passes over it would otherwise pause requests (a p99 of their own)
    gc.collect()
    gc.freeze()
    return scorer


def run(settings: Settings, host: str, port: int, workers: int = 1) -> int:
    """Serve until stopped; the exit status (uvicorn's start-up failure when a worker could not start)."""
    import uvicorn

    if workers < 1 or (workers > 1 and settings.online == "memory://"):
        raise ConfigError("--workers must be >= 1, and several workers need a shared store (SQLite or Redis)")
    scorer = open_scorer(settings)
    # answers a killed service had not committed to the prediction log yet: from the store, once
    recover(Lake(settings.data, endpoint_url=settings.endpoint_url), scorer.store.answers())
    if workers == 1:
        os.environ.pop(MULTIPROC_ENV, None)  # one process: its own registry, no files
        app = service(settings, scorer)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, http=PROTOCOL)
        return 0
    scorer.store.close()  # checked, and the store brought up to date: each worker opens its own
    return _run_workers(settings, host, port, workers)


def _run_workers(settings: Settings, host: str, port: int, workers: int) -> int:
    """N worker processes on one port (uvicorn's supervisor), sharing the settings and the metrics folder."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    os.environ[SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    # the workers' metrics: one fresh folder, given to them before they start (prometheus_client
    # reads the variable when first imported), so that /metrics sums every worker's counts
    metrics_dir = tempfile.mkdtemp(prefix="fraudflow-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        config = uvicorn.Config(
            WORKER_APP,
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            # by name: a class would be imported while the worker's pickled settings are read, before
            # it answers the supervisor's health checks (5 s, then it is restarted)
            http=PROTOCOL,
        )
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    failed = any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


def worker_app() -> FastScore:
    """The app of one worker process, its settings passed as JSON in the environment.

    A worker that cannot start prints why in one line and exits with uvicorn's start-up failure
    code: the parent then stops the service instead of restarting the worker over and over.
    """
    from uvicorn.config import STARTUP_FAILURE

    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    try:
        scorer = open_scorer(settings)
    except FraudflowError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILURE)
    return service(settings, scorer)
