# The bot's image: the core, the adapters and the policy library. The model runs in the
# separate `ollama` service of docker-compose.yml (or any OpenAI-compatible server).
#
# Slim and reproducible: dependencies come from requirements.lock, every download checked
# against its hash (ops/lock.sh regenerates the lock). They are installed into a virtual
# environment in a build stage, which also has the compiler PyICU needs (it ships no
# wheels and builds against Debian's ICU); the final image gets that environment and ICU's
# runtime library, no build tools. It runs as an unprivileged user (uid 10001) and keeps
# its state in the /data volume.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ pkg-config libicu-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/modbot
ENV PATH=/opt/modbot/bin:$PATH
WORKDIR /src
COPY requirements.lock ./
RUN pip install --no-deps --require-hashes --requirement requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE}
# ICU's runtime library, the one PyICU was built against (bookworm's ICU 72).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libicu72 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/modbot /opt/modbot
ENV PATH=/opt/modbot/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
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
