"""How a running bot is observed: which health checks its endpoint runs, and how the endpoint is built.

The metrics themselves are fed inside `bootstrap(..., metrics=...)` (the classifier, the
sinks, the pipeline's observer, the queue, the appeals service). What is left needs the
running app and the running platforms, which only the launcher has:

    metrics = ModbotMetrics() if settings.http_port is not None else None
    app = await bootstrap(settings, adapters, ..., metrics=metrics)
    if metrics is not None:
        app.endpoint = observability_endpoint(app, metrics, settings, running_platforms)
    async with app: ...   # the app starts the endpoint first and stops it first

A platform's health is what it exposes: a `connected` property (bool), on the running
platform or on its adapter, or an async `health()` returning a problem or None. A
platform exposing neither (the console: stdin has no connection) gets no check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

from bot.observability.health import HealthCheck, ProblemCheck
from bot.observability.metrics import InstrumentedClassifier, ModbotMetrics
from bot.observability.server import ObservabilityServer

if TYPE_CHECKING:
    from bot.app import ModbotApp
    from bot.settings import ModbotSettings


def connection_flag(running: object) -> Callable[[], bool] | None:
    """The platform's `connected` flag, read on the running platform or else on its adapter."""
    for holder in (running, getattr(running, "adapter", None)):
        if holder is not None and hasattr(holder, "connected"):
            return partial(_read_connected, holder)
    return None


def _read_connected(holder: object) -> bool:
    return bool(getattr(holder, "connected"))  # noqa: B009 (a property, read at each call)


def health_probe(running: object) -> ProblemCheck | None:
    """The platform's own async `health()` (a problem in words, or None), if it has one."""
    for holder in (running, getattr(running, "adapter", None)):
        probe = getattr(holder, "health", None)
        if callable(probe):
            return probe  # type: ignore[no-any-return]
    return None


def model_check(app: ModbotApp, metrics: ModbotMetrics) -> HealthCheck | None:
    """The app's model probe; for a wrapped single-endpoint classifier it also sets that endpoint's gauge.

    A classifier that reports its own calls probes its endpoints itself (`endpoint_health`),
    under its own endpoint names: setting a gauge here too would make a second series.
    """
    probe = app.probe
    if probe is None:
        return None
    wrapped = app.classifier if isinstance(app.classifier, InstrumentedClassifier) else None

    async def check() -> str | None:
        problem = await probe.check()
        if wrapped is not None:
            metrics.set_endpoint_up(wrapped.endpoint, problem is None)
        return problem

    # The probe's own client gives up after 10 s; the check answers the scraper sooner.
    return HealthCheck("model", check, timeout_seconds=8.0)


def database_check(app: ModbotApp) -> HealthCheck | None:
    """A real write to the database (bot.store.health); for the SQLite store, the one the bot ships."""
    from bot.store.health import database_problem
    from bot.store.sqlite import SqliteStore

    if not isinstance(app.store, SqliteStore):
        return None
    return HealthCheck("database", partial(database_problem, app.store))


def health_checks(app: ModbotApp, metrics: ModbotMetrics, platforms: Mapping[str, object]) -> list[HealthCheck]:
    """Model reachable, database writable, each running platform connected; platforms' flags become gauges too."""
    checks = [c for c in (model_check(app, metrics), database_check(app)) if c is not None]
    for name, running in sorted(platforms.items()):
        probe = health_probe(running)
        flag = connection_flag(running)
        if flag is not None:
            metrics.track_adapter(name, flag)
        if probe is not None:
            checks.append(HealthCheck(f"adapter:{name}", probe, timeout_seconds=2.0))
        elif flag is not None:
            checks.append(HealthCheck.adapter(name, flag))
    return checks


def observability_endpoint(
    app: ModbotApp, metrics: ModbotMetrics, settings: ModbotSettings, platforms: Mapping[str, object]
) -> ObservabilityServer:
    """/healthz, /livez and /metrics for this app, on MODBOT_HTTP_HOST:MODBOT_HTTP_PORT."""
    if settings.http_port is None:
        raise ValueError("the endpoint needs MODBOT_HTTP_PORT")
    checks = health_checks(app, metrics, platforms)
    return ObservabilityServer(metrics, checks, host=settings.http_host, port=settings.http_port)
