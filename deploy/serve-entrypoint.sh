#!/bin/sh
# The service image's entrypoint (deploy/serve.Dockerfile).
#
# SageMaker starts a hosting container as `docker run <image> serve`: `serve` runs the scoring
# service on port 8080 (GET /ping, POST /invocations, and the /v1 routes), its settings from the
# container's environment:
#
#   FRAUDFLOW_DATA       the lake, e.g. s3://my-bucket/fraudflow (required)
#   FRAUDFLOW_ONLINE     the online store, e.g. rediss://host:6379/0 (required with an s3:// lake)
#   FRAUDFLOW_MODEL      a model id (default: the newest in the lake)
#   FRAUDFLOW_THRESHOLD  alert when the score is at least this (default: fraudflow serve's, 0.5)
#   FRAUDFLOW_WORKERS    service processes sharing the online store (default: 1)
#   FRAUDFLOW_API_KEY    the API key the /v1 routes and /invocations then require (unset: none;
#                        leave it unset under SageMaker, whose InvokeEndpoint sends no such header)
#   SAGEMAKER_BIND_TO_PORT  the port, when SageMaker sets it (inference pipelines); else 8080
#
# Any other command runs fraudflow itself: `docker run <image> materialize --data ...`.
set -eu

if [ "${1:-}" != serve ]; then
    exec fraudflow "$@"
fi
shift
set -- serve --host 0.0.0.0 --port "${SAGEMAKER_BIND_TO_PORT:-8080}" \
    --data "${FRAUDFLOW_DATA:?set FRAUDFLOW_DATA to the lake, e.g. s3://my-bucket/fraudflow}" "$@"
[ -z "${FRAUDFLOW_ONLINE:-}" ] || set -- "$@" --online "$FRAUDFLOW_ONLINE"
[ -z "${FRAUDFLOW_MODEL:-}" ] || set -- "$@" --model "$FRAUDFLOW_MODEL"
[ -z "${FRAUDFLOW_THRESHOLD:-}" ] || set -- "$@" --threshold "$FRAUDFLOW_THRESHOLD"
[ -z "${FRAUDFLOW_WORKERS:-}" ] || set -- "$@" --workers "$FRAUDFLOW_WORKERS"
exec fraudflow "$@"
