"""Serving: the scoring engine (online features + model) and the HTTP service around it.

    engine.py       ``Scorer``: a batch recorded in the store's log, its online features, the answers
    batching.py     group commit: the single-transaction requests in flight scored as one batch
    schemas.py      request and response bodies
    server.py       ``run``: the scorer built first (every start-up refusal), then uvicorn, 1 or N processes
    app.py          ``create_app``: the pieces below put together
    fast_score.py   ``POST /v1/score`` answered without the framework when the request is accepted
    http_protocol.py  ... and a single one without ASGI: uvicorn's HTTP protocol answers it itself
    settings.py     ``Settings``, built once at the edge
    routes.py       the routes (SageMaker's /ping and /invocations too); deps.py their dependencies
    middleware.py   the body-size limit and request metrics; http_errors.py errors as HTTP answers
    metrics.py      Prometheus metrics (``prometheus_client``, one total across worker processes)
"""
