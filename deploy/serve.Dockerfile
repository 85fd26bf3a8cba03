# The scoring service's image: `fraudflow serve` on port 8080, answering SageMaker's hosting
# contract (GET /ping, POST /invocations) beside the /v1 routes; the model and the online store come
# from the S3 lake and Redis named in the environment (deploy/serve-entrypoint.sh lists the variables,
# deploy/serve-template.yaml deploys it). Installed from the committed lock, as `make install` does:
# the versions the tests ran with, with the aws (S3) and redis extras.
#
#   docker build -f deploy/serve.Dockerfile -t fraudflow-serve .
#   docker run -p 8080:8080 -e FRAUDFLOW_DATA=s3://my-bucket/fraudflow \
#       -e FRAUDFLOW_ONLINE=redis://redis-host:6379/0 fraudflow-serve serve
FROM python:3.11-slim-bookworm

# uv at the Makefile's pinned version; it installs into /opt/fraudflow with this image's Python
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/opt/fraudflow \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/fraudflow/bin:$PATH \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONUNBUFFERED=1

WORKDIR /build
# the dependencies first, a layer reused while only fraudflow's source changes; then fraudflow
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-cache --no-install-project --extra aws --extra redis
COPY src/ src/
RUN uv sync --frozen --no-cache --no-editable --extra aws --extra redis && rm -rf /build

WORKDIR /
COPY deploy/serve-entrypoint.sh /usr/local/bin/serve-entrypoint

# the port is SAGEMAKER_BIND_TO_PORT when SageMaker sets it (inference pipelines), else 8080
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/serve-entrypoint"]
CMD ["serve"]
