"""Operations: metrics (metrics), health checks (health), the /healthz and /metrics endpoint
(server), structured logs (logs) and the container's healthcheck command (healthcheck).

Import from the submodules. This package imports nothing itself, so that the container's
healthcheck (`python -m bot.observability.healthcheck`) starts in milliseconds.
"""
