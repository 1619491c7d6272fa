"""`modbot privacy export|erase`: a member's data-subject request, answered by the operator.

The operator holds the database file, so acts as an admin of the server named (or of
every server of the platform holding the member's data, with --all-servers).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from adapters.console.options import PLATFORM, DbOption, PlatformOption, app, fail, operator, with_app

if TYPE_CHECKING:
    from bot.app import ModbotApp
    from bot.workflow import Erasure, MemberData

privacy_app = typer.Typer(
    help="A member's data-subject request: export everything stored about them, or erase it.",
    no_args_is_help=True,
)
app.add_typer(privacy_app, name="privacy")

UserOption = Annotated[str, typer.Option("--user", "-u", help="The member's platform user id.")]
MaybeServerOption = Annotated[str | None, typer.Option("--server", "-s", help="The server (guild or workspace) id.")]
AllServersOption = Annotated[
    bool, typer.Option("--all-servers", help="Every server of the platform that holds data of this member.")
]


@privacy_app.command("export")
def privacy_export(
    user: UserOption,
    server: MaybeServerOption = None,
    all_servers: AllServersOption = False,
    platform: PlatformOption = PLATFORM,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write to this new file (mode 0600) instead of standard output."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Everything stored about one member, as JSON, for their data-subject request.

    Their messages (text while retained), the model's verdicts and reasons, what was done,
    moderators' decisions and notes (not who the moderators were), their appeals, messages
    not judged yet, and what their id did as a moderator.
    """
    if (server is None) != all_servers:
        raise fail("name one server with --server, or every server holding the member's data with --all-servers")
    if out is not None and out.exists():
        raise fail(f"{out} exists: give a new file, so that no earlier export is overwritten")

    async def go(modbot: ModbotApp) -> list[MemberData]:
        servers = [server] if server is not None else await modbot.privacy.servers_holding(platform, user)
        return [await modbot.privacy.export(operator(platform, s), user) for s in servers]

    exports = with_app(db, go)
    document = json.dumps(
        {
            "exported_at": datetime.now(UTC).isoformat(),
            "platform": platform,
            "user_id": user,
            "servers": [e.model_dump(mode="json") for e in exports],
        },
        ensure_ascii=False,
        indent=2,
    )
    if out is None:
        typer.echo(document)
        return
    # The export is the member's personal data: readable by the operator only, as the database is.
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise fail(f"cannot create {out}: {exc.strerror}") from exc
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(document + "\n")
    found = sum(len(e.messages) for e in exports)
    typer.echo(f"wrote {out}: {found} message(s) of the member in {len(exports)} server(s)", err=True)


@privacy_app.command("erase")
def privacy_erase(
    user: UserOption,
    server: MaybeServerOption = None,
    all_servers: AllServersOption = False,
    platform: PlatformOption = PLATFORM,
    yes: Annotated[bool, typer.Option("--yes", help="Erase: without it, only say what would be erased.")] = False,
    db: DbOption = None,
) -> None:
    """Erase one member's words and id; every decision is kept with the author id redacted.

    Removed: message texts (also of messages still queued), names, roles and attachment
    names, the model's rationale, reasoning and raw output, appeal statements, moderators'
    notes on their cases. Kept: cases, verdicts' rule ids, effects and decisions (the
    author shown as "(erased)"), and what the id did as a moderator. Cannot be undone.
    """
    if (server is None) != all_servers:
        raise fail("name one server with --server, or every server holding the member's data with --all-servers")

    async def preview(modbot: ModbotApp) -> list[MemberData]:
        servers = [server] if server is not None else await modbot.privacy.servers_holding(platform, user)
        return [await modbot.privacy.export(operator(platform, s), user) for s in servers]

    async def erase(modbot: ModbotApp) -> list[Erasure]:
        servers = [server] if server is not None else await modbot.privacy.servers_holding(platform, user)
        return [await modbot.privacy.erase(operator(platform, s), user) for s in servers]

    if not yes:
        found = with_app(db, preview)
        lines = [
            f"{d.platform} server {d.server_id}: {len(d.messages)} message(s) with their cases,"
            f" {sum(1 for m in d.messages if m['appeal'])} appeal(s), {len(d.waiting_to_be_judged)} waiting"
            for d in found
        ]
        raise fail(
            "nothing was erased; this would erase the member's data in:\n  "
            + ("\n  ".join(lines) or "(no server holds data of this member)")
            + "\nrun again with --yes to erase it (it cannot be undone)"
        )
    for erasure in with_app(db, erase):
        typer.echo("\n".join(erasure.lines()))
