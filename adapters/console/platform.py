"""The console as a platform, as the launcher sees it: what it can do, and how it runs (JSON lines on stdin).

Light on purpose: the launcher imports it to learn the console's capabilities in every
command; what `connect` needs is imported when it is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

from bot.domain import EffectKind
from bot.platforms import PlatformCapabilities

if TYPE_CHECKING:
    from adapters.console.sink import ConsoleAdapter
    from bot.app import ModbotApp
    from bot.domain import Case
    from bot.settings import ModbotSettings

NAME = "console"


def capabilities(environ: Mapping[str, str]) -> PlatformCapabilities:
    """Printing can stand in for any effect, whatever the configuration."""
    every = frozenset(EffectKind)
    return PlatformCapabilities(platform=NAME, effects=every, configured=every)


def credentials_set(environ: Mapping[str, str]) -> bool:
    """The console needs none: it runs when no other platform is set, or with `modbot run --stdin`."""
    return False


@dataclass
class ConsolePlatform:
    """The running console: its adapter, and stdin as its source of messages."""

    adapter: ConsoleAdapter
    emit: Callable[[Case], None] | None = None
    source: BinaryIO = field(default_factory=lambda: sys.stdin.buffer)

    async def serve(self, app: ModbotApp) -> None:
        """Submit each JSON line read from stdin until it ends; a bad line is named and skipped."""
        from adapters.console.mapping import ReplayLineError, message_from_line, parse_replay_line

        if self.emit is not None:
            app.pipeline.observers.append(self.emit)
        lineno = 0
        async for line in read_lines(self.source):
            lineno += 1
            if not line.strip():
                continue
            try:
                message = message_from_line(parse_replay_line(line, "stdin", lineno), datetime.now(UTC))
            except ReplayLineError as exc:
                # A stream can't be refused whole: the bad line is named and not submitted.
                print(f"modbot: {exc}; line not submitted", file=sys.stderr)
                continue
            await app.pipeline.submit(message)


async def read_lines(source: BinaryIO, buffered: int = 256) -> AsyncIterator[str]:
    """Lines of a pipe or a regular file, read by a daemon thread so that a stop never waits on a read.

    Bytes that are not UTF-8 become U+FFFD: one bad byte must not stop the reader.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue(maxsize=buffered)

    def put(line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody reads any more
            asyncio.run_coroutine_threadsafe(lines.put(line), loop).result()

    def pump() -> None:
        try:
            for raw in source:
                put(raw.decode("utf-8", errors="replace"))
        finally:
            put(None)

    threading.Thread(target=pump, name="modbot-stdin", daemon=True).start()
    while (line := await lines.get()) is not None:
        yield line


def print_case(case: Case) -> None:
    from adapters.console.mapping import replay_record

    print(json.dumps(replay_record(case), ensure_ascii=False), flush=True)


async def connect(settings: ModbotSettings, environ: Mapping[str, str]) -> ConsolePlatform:
    from adapters.console.sink import ConsoleAdapter

    return ConsolePlatform(adapter=ConsoleAdapter(), emit=print_case)
