"""Starts every platform whose credentials are set, in one process, around one app.

Each platform is one entry in PLATFORMS: the dotted name of a light module in its adapter
package, imported only when needed, which provides

    capabilities(environ) -> PlatformCapabilities   what it can do (and, as configured, cannot)
    credentials_set(environ) -> bool               whether `modbot run` starts it
    async connect(settings, environ) -> a running platform with
        .adapter                                    its EffectSink + ModChannel (execute, post)
        async .serve(app)                           delivers its messages to app.pipeline.submit
                                                    until cancelled (or its input ends)
        (optional) async .aclose()

The Discord and Slack adapters each add one entry. This module lives outside every
adapter package, so that adapters never import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.app import ModbotApp
    from bot.classifier import RetryPolicy
    from bot.observability.metrics import ModbotMetrics
    from bot.platforms import PlatformAdapter, PlatformCapabilities
    from bot.settings import ModbotSettings

log = logging.getLogger("modbot.run")


class RunningPlatform(Protocol):
    @property
    def adapter(self) -> PlatformAdapter: ...

    async def serve(self, app: ModbotApp) -> None: ...


class PlatformModule(Protocol):
    def capabilities(self, environ: Mapping[str, str]) -> PlatformCapabilities: ...

    def credentials_set(self, environ: Mapping[str, str]) -> bool: ...

    async def connect(self, settings: ModbotSettings, environ: Mapping[str, str]) -> RunningPlatform: ...


@dataclass(frozen=True)
class PlatformEntry:
    name: str
    module: str  # the adapter's light platform module, imported on first use

    def load(self) -> PlatformModule:
        loaded: Any = importlib.import_module(self.module)
        return loaded  # type: ignore[no-any-return]


CONSOLE = PlatformEntry("console", "adapters.console.platform")
DISCORD = PlatformEntry("discord", "adapters.discord.platform")
SLACK = PlatformEntry("slack", "adapters.slack.platform")
# One entry per platform; the console is always there (stdin, and every admin command).
PLATFORMS: tuple[PlatformEntry, ...] = (CONSOLE, DISCORD, SLACK)


def declared_capabilities(environ: Mapping[str, str] | None = None) -> list[PlatformCapabilities]:
    """Every platform's declaration, whether or not it runs here: settings are checked against them."""
    env = os.environ if environ is None else environ
    return [entry.load().capabilities(env) for entry in PLATFORMS]


def platforms_to_start(environ: Mapping[str, str] | None = None) -> list[PlatformEntry]:
    """The platforms whose credentials are set (the console is never among them: it is stdin)."""
    env = os.environ if environ is None else environ
    return [entry for entry in PLATFORMS if entry is not CONSOLE and entry.load().credentials_set(env)]


async def console_app(settings: ModbotSettings, *, retry: RetryPolicy | None = None) -> ModbotApp:
    """The app for one admin command: the console adapter runs, every platform is declared, no jobs."""
    from adapters.console.sink import ConsoleAdapter
    from bot.bootstrap import bootstrap

    return await bootstrap(
        settings,
        {CONSOLE.name: ConsoleAdapter()},
        capabilities=declared_capabilities(),
        retry=retry,
        run_jobs=False,
    )


def _metrics_if_served(settings: ModbotSettings) -> ModbotMetrics | None:
    """Metrics only when MODBOT_HTTP_PORT serves them: nobody else would read them."""
    if settings.http_port is None:
        return None
    from bot.observability.metrics import ModbotMetrics

    return ModbotMetrics()


async def run(
    settings: ModbotSettings,
    *,
    stdin: bool = False,
    environ: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """`modbot run`: every platform with credentials, and the console's stdin when none is set or asked for.

    The end of stdin stops the bot only when stdin is its only source; then the messages
    already accepted are decided first. SIGTERM or SIGINT stop it at once: intake stops,
    and what was accepted stays queued for the next start. Returns the exit code.

    One bot process per database: raises RunnerLockHeld, before connecting anything or
    migrating the database, when another one runs on it.
    """
    from bot.bootstrap import bootstrap
    from bot.store.sqlite import SqliteStore

    env = os.environ if environ is None else environ
    entries = platforms_to_start(env)
    if stdin or not entries:
        entries = [CONSOLE, *entries]
    store = await SqliteStore.open(settings.db, runner="modbot run")
    try:
        running: dict[str, RunningPlatform] = {}
        for entry in entries:
            running[entry.name] = await entry.load().connect(settings, env)
        metrics = _metrics_if_served(settings)
        app = await bootstrap(
            settings,
            {name: platform.adapter for name, platform in running.items()},
            capabilities=declared_capabilities(env),
            store=store,
            metrics=metrics,
        )
    except BaseException:
        await store.close()
        raise
    if metrics is not None:
        from bot.observability.wiring import observability_endpoint

        app.endpoint = observability_endpoint(app, metrics, settings, running)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    code = 0
    async with app:
        from bot.classifier.factory import describe_endpoints

        log.info("modbot running: %s; model %s", ", ".join(running), describe_endpoints(settings))
        serving = {asyncio.create_task(p.serve(app), name=f"modbot-{n}"): n for n, p in running.items()}
        stopper = asyncio.create_task(stop.wait())
        only_stdin = list(running) == [CONSOLE.name]
        pending: set[asyncio.Task[Any]] = {*serving, stopper}
        drain = False
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                break
            failed = [t for t in done if t.exception() is not None]
            for task in failed:
                log.error("platform %s stopped: %s", serving[task], task.exception(), exc_info=task.exception())
                code = 1
            if failed:
                break
            if only_stdin or not pending - {stopper}:
                drain = True  # stdin ended and was the only source
                break
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if drain:
            await app.pipeline.drain()
    return code
