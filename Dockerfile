# The bot's image: the core, the adapters and the policy library. The model runs in the
# separate `ollama` service of docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install .

COPY policies ./policies
RUN useradd --system --uid 10001 modbot && mkdir -p /data && chown modbot /data
USER modbot

ENV MODBOT_DB=/data/modbot.db MODBOT_POLICY_DIR=/app/policies
VOLUME ["/data"]
ENTRYPOINT ["modbot"]
CMD ["run"]
