"""`modbot run`: the long-running bot: every platform whose credentials are set, or the console on stdin."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from adapters.console.options import app, fail, load_settings


@app.command()
def run(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Also read console messages from stdin when platforms are set.")
    ] = False,
) -> None:
    """Run the bot: resume the queue, start the scheduled jobs, moderate messages as they come.

    Every platform whose credentials are set is started. With none set (or with --stdin),
    the console adapter reads messages as JSON lines on stdin (the `replay` format) and
    prints each decision as a JSON line on stdout. The end of stdin stops the bot, once the
    messages accepted are decided, only when stdin is its only source; SIGTERM stops it at
    once, leaving what was accepted queued for the next start.
    """
    from adapters.launcher import run as launch
    from bot.store.ports import RunnerLockHeld

    settings = load_settings()
    try:
        code = asyncio.run(launch(settings, stdin=stdin))
    except RunnerLockHeld as exc:
        raise fail(str(exc)) from exc
    raise typer.Exit(code)
