"""Serving: the scoring engine (online features + model) and the HTTP service around it.

    engine.py       ``Scorer``: a transaction's online features, committed to the store, and its answer
    schemas.py      request and response bodies
    app.py          ``create_app``: the pieces below put together
    settings.py     ``Settings``, built once at the edge
    routes.py       the routes; deps.py their dependencies (scorer, metrics, API key)
    middleware.py   the body-size limit and request metrics; http_errors.py errors as HTTP answers
    metrics.py      Prometheus metrics (``prometheus_client``, one total across worker processes)
"""
