"""The console as a platform, as the launcher sees it: what it can do, and how it runs (JSON lines on stdin).

Light on purpose: the launcher imports it to learn the console's capabilities in every
command; what `connect` needs is imported when it is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

from bot.domain import EffectKind
from bot.platforms import PlatformCapabilities

if TYPE_CHECKING:
    from adapters.console.sink import ConsoleAdapter
    from bot.app import ModbotApp
    from bot.domain import Case, Message
    from bot.settings import ModbotSettings

NAME = "console"


def capabilities(environ: Mapping[str, str]) -> PlatformCapabilities:
    """Printing can stand in for any effect, whatever the configuration."""
    every = frozenset(EffectKind)
    return PlatformCapabilities(platform=NAME, effects=every, configured=every)


def credentials_set(environ: Mapping[str, str]) -> bool:
    """The console needs none: it runs when no other platform is set, or with `modbot run --stdin`."""
    return False


# Submissions in flight at once: enough that intake shares group commits, few enough that
# a long file never sits in memory.
SUBMIT_WINDOW = 256


@dataclass
class ConsolePlatform:
    """The running console: its adapter, and stdin as its source of messages."""

    adapter: ConsoleAdapter
    emit: Callable[[Case], None] | None = None
    source: BinaryIO = field(default_factory=lambda: sys.stdin.buffer)

    async def serve(self, app: ModbotApp) -> None:
        """Submit each JSON line read from stdin until it ends; a bad line is named and skipped.

        Lines are submitted concurrently (in order), so that intake shares group commits. A
        failure to read stdin or to store a message ends the run: it is raised, never lost.
        """
        from adapters.console.mapping import ReplayLineError, message_from_line, parse_replay_line

        if self.emit is not None:
            app.pipeline.observers.append(self.emit)
        async with Submitter(app) as submitter:
            lineno = 0
            async for line in read_lines(self.source):
                lineno += 1
                if isinstance(line, TooLong):
                    print(f"modbot: stdin:{lineno}: {line}; line not submitted", file=sys.stderr)
                    continue
                if not line.strip():
                    continue
                try:
                    message = message_from_line(parse_replay_line(line, "stdin", lineno), datetime.now(UTC))
                except ReplayLineError as exc:
                    # A stream can't be refused whole: the bad line is named and not submitted.
                    print(f"modbot: {exc}; line not submitted", file=sys.stderr)
                    continue
                await submitter.submit(message)


class Submitter:
    """Submits messages concurrently, in order, with at most SUBMIT_WINDOW in flight; a failure is raised."""

    def __init__(self, app: ModbotApp, window: int = SUBMIT_WINDOW) -> None:
        self._app = app
        self._slots = asyncio.Semaphore(window)
        self._tasks: set[asyncio.Task[bool]] = set()
        self._failure: BaseException | None = None
        self.accepted = 0
        # Keys of messages seen before (in this input or by an earlier run): replay shows their cases.
        self.repeats: list[tuple[str, str, str]] = []

    async def __aenter__(self) -> Submitter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is not None:
            for task in self._tasks:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if exc[0] is None:
            self._raise_failure()

    async def submit(self, message: Message) -> None:
        self._raise_failure()
        await self._slots.acquire()
        # Tasks start in the order they are made, and each hands its message to the group
        # commit before it first waits: intake keeps the input's order (an edit after its message).
        task = asyncio.create_task(self._app.pipeline.submit(message))
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, message))

    def _finished(self, task: asyncio.Task[bool], message: Message) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            self._failure = self._failure or exc
        elif task.result():
            self.accepted += 1
        else:
            self.repeats.append(message.key)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


class TooLong:
    """A line longer than MAX_LINE_BYTES: skipped whole without being held in memory."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __str__(self) -> str:
        from adapters.console.mapping import MAX_LINE_BYTES

        return f"the line is over {MAX_LINE_BYTES:,} bytes (at least {self.size:,})"


async def read_lines(source: BinaryIO, buffered: int = 256) -> AsyncIterator[str | TooLong]:
    """Lines of a pipe or a regular file, read by a daemon thread so that a stop never waits on a read.

    Bytes that are not UTF-8 become U+FFFD: one bad byte must not stop the reader. A line
    over MAX_LINE_BYTES is skipped whole (TooLong). A failure to read is raised here.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | TooLong | BaseException | None] = asyncio.Queue(maxsize=buffered)

    def put(line: str | TooLong | BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody reads any more
            asyncio.run_coroutine_threadsafe(lines.put(line), loop).result()

    def pump() -> None:
        try:
            for line in _split_lines(_chunks(source)):
                put(line)
        except BaseException as exc:  # raised on the reading side: a failing stdin ends the run
            put(exc)
            return
        put(None)

    threading.Thread(target=pump, name="modbot-stdin", daemon=True).start()
    while (line := await lines.get()) is not None:
        if isinstance(line, BaseException):
            raise OSError(f"stdin could not be read: {line}") from line
        yield line


READ_BYTES = 1 << 16


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    """The bytes of the source as they come. A real file descriptor is read with os.read on a
    duplicate: a thread blocked in a buffered reader holds its lock, and the interpreter
    aborts at exit when a signal stops the bot while stdin (a pipe) is still open."""
    try:
        fd = os.dup(source.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        while chunk := source.read(READ_BYTES):  # an in-memory stream (tests)
            yield chunk
        return
    try:
        while chunk := os.read(fd, READ_BYTES):
            yield chunk
    finally:
        os.close(fd)


def _split_lines(chunks: Iterator[bytes]) -> Iterator[str | TooLong]:
    from adapters.console.mapping import MAX_LINE_BYTES

    pending = bytearray()
    skipped = -1  # bytes of a line too long, thrown away so far; -1 while not in one
    for chunk in chunks:
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            piece = bytes(pending[: end + 1])
            del pending[: end + 1]
            if skipped >= 0:
                yield TooLong(skipped + len(piece))
                skipped = -1
            elif len(piece) > MAX_LINE_BYTES:
                yield TooLong(len(piece))
            else:
                yield piece.decode("utf-8", errors="replace")
        if len(pending) > MAX_LINE_BYTES:  # never held whole: the rest of the line is thrown away
            skipped = max(skipped, 0) + len(pending)
            pending.clear()
    if skipped >= 0:
        yield TooLong(skipped + len(pending))
    elif pending:
        yield pending.decode("utf-8", errors="replace")


def print_case(case: Case) -> None:
    from adapters.console.mapping import replay_record

    print(json.dumps(replay_record(case), ensure_ascii=False), flush=True)


async def connect(settings: ModbotSettings, environ: Mapping[str, str]) -> ConsolePlatform:
    from adapters.console.sink import ConsoleAdapter

    return ConsolePlatform(adapter=ConsoleAdapter(), emit=print_case)
