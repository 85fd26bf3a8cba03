"""The floor of the scoring service: FastAPI + uvicorn, fraudflow's request validation, a constant answer.

    .venv/bin/python -m benchmarks.floor_app --port 18800

What ``fraudflow serve`` would cost if its own work (features, store, model, answer) were free:
``POST /v1/score`` parses and validates the body as ``TransactionIn`` (fraudflow.serving.schemas)
exactly as the service does, then returns a fixed answer the size and shape of a real one,
encoded once. Served by uvicorn with the service's options (one process, uvloop and httptools as
installed, log level warning, no access log). ``GET /readyz`` answers 200 for the harness.
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI, Response

from fraudflow.serving.schemas import Contribution, ScoreOut, TransactionIn
from fraudflow.training.workflow import FRAUDFLOW_FEATURES

#: A real answer's shape and size: the default feature set's values, 3 contributions.
ANSWER = ScoreOut(
    TRANSACTION_ID=1_754_155,
    score=0.012345678901234,
    alert=False,
    threshold=0.5,
    model_id="20260101T000000-abcdef",
    features={name: 12.345678901234 for name in FRAUDFLOW_FEATURES.names},
    top_features=[Contribution(feature=name, contribution=-0.12345678901234) for name in FRAUDFLOW_FEATURES.names[:3]],
    duplicate=False,
).model_dump_json()


def create_app() -> FastAPI:
    app = FastAPI(title="floor: validation and a constant answer")

    async def score(tx: TransactionIn) -> Response:
        return Response(ANSWER, media_type="application/json")

    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    app.add_api_route("/v1/score", score, methods=["POST"], response_model=None)
    app.add_api_route("/readyz", readyz, methods=["GET"])
    return app


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
