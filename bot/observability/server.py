"""The health and metrics endpoint: /healthz, /livez and /metrics on a small aiohttp server.

Off unless `MODBOT_HTTP_PORT` is set. `modbot run` builds it (bot.observability.wiring)
over the app's metrics and health checks: the model probe, a database write, and each
running platform's connection. The app starts it before anything else and stops it
first.

- `/healthz`: 200 when every check passes, 503 when one does not; the body is JSON with
  each check's result and problem. Results are reused for `cache_seconds`, so a burst of
  probes (Docker, Kubernetes, a person with curl) costs one round of checks.
- `/livez`: 200 while the event loop answers. For Kubernetes' liveness probe: restarting
  the bot does not bring a stopped model server back, so liveness must not include it.
- `/metrics`: the registry in Prometheus' text format, or OpenMetrics when asked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from types import TracebackType

from aiohttp import web

from bot.observability.health import HealthCheck, HealthReport, run_checks
from bot.observability.metrics import ModbotMetrics

log = logging.getLogger(__name__)


class ObservabilityServer:
    def __init__(
        self,
        metrics: ModbotMetrics,
        checks: Sequence[HealthCheck],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_seconds: float = 1.0,
    ) -> None:
        names = [c.name for c in checks]
        if len(set(names)) != len(names):
            raise ValueError(f"health check names must be unique: {names}")
        self.metrics = metrics
        self.checks = list(checks)
        self.host = host
        self.requested_port = port
        self.cache_seconds = cache_seconds
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._health_lock = asyncio.Lock()
        self._last_report: tuple[float, HealthReport] | None = None
        self._problems: dict[str, str | None] = {}

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        # No access log: a scrape every few seconds would drown the lines that matter.
        self._runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.requested_port)
        await self._site.start()
        log.info("health and metrics endpoint listening on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    async def __aenter__(self) -> ObservabilityServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port bound, which differs from the one asked for when that was 0."""
        addresses = self._runner.addresses if self._runner is not None else []
        if not addresses:
            raise RuntimeError("the endpoint is not listening")
        return int(addresses[0][1])

    async def health(self) -> HealthReport:
        """The current report; concurrent callers share one round of checks."""
        async with self._health_lock:
            now = time.monotonic()
            if self._last_report is not None and now - self._last_report[0] < self.cache_seconds:
                return self._last_report[1]
            report = await run_checks(self.checks)
            self._last_report = (time.monotonic(), report)
            self._log_changes(report)
        return report

    def _log_changes(self, report: HealthReport) -> None:
        # Probes come every few seconds for as long as an outage lasts: say when a check
        # starts failing, changes its reason or recovers, not at every probe.
        for result in report.results:
            before = self._problems.get(result.name)
            if result.problem is not None and result.problem != before:
                log.warning("health check %s failing: %s", result.name, result.problem)
            elif result.problem is None and before is not None:
                log.info("health check %s passes again", result.name)
            self._problems[result.name] = result.problem

    async def _healthz(self, request: web.Request) -> web.Response:
        report = await self.health()
        return web.Response(
            status=200 if report.ok else 503,
            text=json.dumps(report.as_json()),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def _livez(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.metrics.refresh()
        body, content_type = self.metrics.exposition(request.headers.get("Accept"))
        response = web.Response(body=body)
        # The exposition's content type carries parameters (version, charset) that
        # aiohttp's content_type argument would refuse; set the header as it is.
        response.headers["Content-Type"] = content_type
        return response
