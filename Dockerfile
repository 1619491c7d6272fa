# The bot's image: the core, the adapters and the policy library. The model runs in the
# separate `ollama` service of docker-compose.yml (or any OpenAI-compatible server).
#
# Slim and reproducible: dependencies come from requirements.lock, every file checked
# against its hash (ops/lock.sh regenerates it); the bot itself is built as a wheel in a
# throwaway stage, so no build tools reach the final image. It runs as an unprivileged
# user (uid 10001) and keeps its state in the /data volume.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.lock ./
RUN pip install --no-deps --require-hashes --requirement requirements.lock
COPY --from=wheel /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels

COPY policies ./policies
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin modbot \
    && mkdir -p /data && chown 10001:10001 /data
USER 10001:10001

# The health and metrics endpoint is on in the container (the healthcheck asks it), bound
# to every interface of the container's own network so Prometheus can scrape it. Publish
# the port only where it is wanted (docker-compose.yml publishes it on the host's loopback).
ENV MODBOT_DB=/data/modbot.db \
    MODBOT_POLICY_DIR=/app/policies \
    MODBOT_HTTP_HOST=0.0.0.0 \
    MODBOT_HTTP_PORT=9464
VOLUME ["/data"]
EXPOSE 9464

# /healthz: model reachable, database writable, each adapter connected. The start period
# covers a first start that waits for the model to load.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "bot.observability.healthcheck"]

ENTRYPOINT ["modbot"]
CMD ["run"]
