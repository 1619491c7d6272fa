"""`modbot run`: the long-running bot with the console adapter (JSON lines on stdin)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from contextlib import suppress
from datetime import UTC, datetime

import typer

from adapters.console.cli import app, load_settings
from adapters.console.mapping import ReplayLineError, message_from_line, parse_replay_line, replay_record
from adapters.console.render import ConsoleModChannel
from adapters.console.sink import ConsoleEffectSink
from bot.bootstrap import ModbotApp, bootstrap
from bot.domain import Case
from bot.settings import ModbotSettings

log = logging.getLogger("modbot.run")


@app.command()
def run() -> None:
    """Run the bot: resume the queue, start the scheduled jobs, moderate messages as they come.

    The console adapter reads messages as JSON lines on stdin (the `replay` format) and
    prints each decision as a JSON line on stdout. It stops at end of input or on SIGTERM,
    after the messages already accepted are decided.
    """
    settings = load_settings()
    asyncio.run(_run(settings))


async def _run(settings: ModbotSettings) -> None:
    modbot = await bootstrap(settings, {"console": ConsoleEffectSink()}, mod_channel=ConsoleModChannel())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)

    def emit(case: Case) -> None:
        typer.echo(json.dumps(replay_record(case), ensure_ascii=False))

    modbot.pipeline.observers.append(emit)
    modbot.start_jobs()
    try:
        resumed = await modbot.pipeline.start()
        log.info("modbot running: model %s at %s, %d messages resumed", settings.model, settings.ollama_host, resumed)
        reader = asyncio.create_task(_read_stdin(modbot))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (reader, stopper):
            task.cancel()
        await modbot.pipeline.drain()
    finally:
        await modbot.aclose()


async def _read_stdin(modbot: ModbotApp) -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    lineno = 0
    while line := await reader.readline():
        lineno += 1
        raw = line.decode("utf-8", errors="replace")
        if not raw.strip():
            continue
        try:
            message = message_from_line(parse_replay_line(raw, "stdin", lineno), datetime.now(UTC))
        except ReplayLineError as exc:
            # A stream can't be refused whole: the bad line is named and not submitted.
            typer.echo(f"modbot: {exc}; line not submitted", err=True)
            continue
        await modbot.pipeline.submit(message)
