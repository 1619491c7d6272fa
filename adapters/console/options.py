"""The `modbot` typer app, its command groups and the options the commands share.

Command modules import from here (never from each other or from cli.py), so there is no
import circle: cli.py imports every command module, which registers its commands here.
Nothing heavy is imported at module level: `modbot --help` loads no model client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from bot.app import ModbotApp
    from bot.classifier import RetryPolicy
    from bot.settings import ModbotSettings
    from bot.workflow import Actor

T = TypeVar("T")

app = typer.Typer(
    name="modbot",
    help="Moderation bot judged by a local gpt-oss-safeguard model against your own policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Write, check, version and roll out policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

PLATFORM = "console"
# The person at the console holds the database file and can read it all anyway; reading
# commands act as this operator, commands that change anything name their actor.
OPERATOR = "console-operator"


class EffortChoice(StrEnum):
    """The reasoning efforts as the command line offers them (bot.domain.Effort, without importing the domain)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


DbOption = Annotated[Path | None, typer.Option("--db", help="SQLite file. Default: $MODBOT_DB or modbot.db.")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON instead of readable text.")]
ServerOption = Annotated[str, typer.Option("--server", "-s", help="The server (guild or workspace) id.")]
PlatformOption = Annotated[str, typer.Option("--platform", help="The server's platform.")]
ActorOption = Annotated[
    str, typer.Option("--actor", "-a", envvar="MODBOT_ACTOR", help="Who is acting: a user id ($MODBOT_ACTOR).")
]
AdminOption = Annotated[
    bool,
    typer.Option("--admin", "--moderator", help="The actor has admin rights on the server (vouched for by you)."),
]
RoleOption = Annotated[list[str] | None, typer.Option("--role", "--roles", help="A role of the actor (repeatable).")]
NoteOption = Annotated[str, typer.Option("--note", help="Why: kept with the decision (up to 1,000 characters).")]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"modbot: {message}", err=True)
    return typer.Exit(code)


def load_settings(db: Path | None = None) -> ModbotSettings:
    from bot.bootstrap import configure_logging
    from bot.settings import ModbotSettings

    settings = ModbotSettings()
    if db is not None:
        settings = settings.model_copy(update={"db": db})
    configure_logging(settings.log_level)
    return settings


def make_actor(actor: str, admin: bool, roles: list[str] | None, platform: str, server: str | None) -> Actor:
    """The actor as the operator vouches for them, acting in that server (None: from a DM)."""
    from bot.workflow import Actor

    return Actor(id=actor, platform=platform, server_id=server, roles=tuple(roles or ()), is_admin=admin)


def operator(platform: str, server: str) -> Actor:
    return make_actor(OPERATOR, True, None, platform, server)


def quick_retry() -> RetryPolicy:
    """One command, one answer: a person waits, so the model is retried briefly, not for minutes."""
    from bot.classifier import RetryPolicy

    return RetryPolicy(max_attempts=3, initial_seconds=0.5, max_seconds=4)


def with_app(db: Path | None, work: Callable[[ModbotApp], Awaitable[T]]) -> T:
    """Build the app for one command (no workers, no jobs), run one service call, close.

    A refusal becomes a message on stderr and exit code 2. Effects of a platform that does
    not run in this process (a Discord case confirmed here) stay pending for the bot.
    """
    settings = load_settings(db)

    async def go() -> T:
        from adapters.launcher import console_app

        modbot = await console_app(settings, retry=quick_retry())
        try:
            return await work(modbot)
        finally:
            await modbot.aclose()

    from bot.workflow import WorkflowError

    try:
        return asyncio.run(go())
    except WorkflowError as exc:
        raise fail(str(exc)) from exc
