"""`modbot review`, `modbot appeal`, `modbot settings`, `modbot jobs`, `modbot audit`: thin over the app's services.

Every command that acts names the server where the actor acts (--server), as every
platform surface does: the core refuses a case, appeal, policy or setting of another server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from adapters.console.options import (
    PLATFORM,
    ActorOption,
    AdminOption,
    DbOption,
    JsonOption,
    NoteOption,
    PlatformOption,
    RoleOption,
    ServerOption,
    app,
    fail,
    load_settings,
    make_actor,
    operator,
    with_app,
)

if TYPE_CHECKING:
    from bot.app import ModbotApp

review_app = typer.Typer(help="Review flagged cases: confirm (optionally delete or time out) or dismiss, once.")
appeal_app = typer.Typer(help="Appeals: the author files one; moderators uphold or overturn it.")
settings_app = typer.Typer(help="Show and change a server's settings (escalation, retention, digest, ...).")
jobs_app = typer.Typer(help="The scheduled jobs: retention, appeal reminders, digest, model health, waiting effects.")
for _group, _name in ((review_app, "review"), (appeal_app, "appeal"), (settings_app, "settings"), (jobs_app, "jobs")):
    _group.info.no_args_is_help = True
    app.add_typer(_group, name=_name)

CaseArgument = Annotated[str, typer.Argument(help="The case id.")]
# Filing an appeal happens where the author is: in the server, or from a DM (no server).
AppealServerOption = Annotated[
    str | None, typer.Option("--server", "-s", help="The server the author acts in (omit: from a direct message).")
]


# ---------------------------------------------------------------- review


@review_app.command("list")
def review_list(
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    limit: Annotated[int, typer.Option(help="At most this many cases.")] = 50,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Flagged cases awaiting a moderator, oldest first."""
    from adapters.console.render import case_text

    who = make_actor(actor, admin, role, platform, server)
    cases = with_app(db, lambda m: m.reviews.open_cases(who, limit))
    for case in cases:
        typer.echo(json.dumps(case.model_dump(mode="json"), ensure_ascii=False) if as_json else case_text(case))
    if not cases and not as_json:
        typer.echo(f"no open cases on {server}")


@review_app.command("show")
def review_show(
    case_id: CaseArgument,
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """One case: message, verdicts (with reasoning in --json), effects and decisions."""
    from adapters.console.render import case_text, echo_json

    who = make_actor(actor, admin, role, platform, server)
    case, decisions = with_app(db, lambda m: m.reviews.show(case_id, who))
    if as_json:
        echo_json({**case.model_dump(mode="json"), "decisions": [d.model_dump(mode="json") for d in decisions]})
    else:
        typer.echo(case_text(case, decisions))


@review_app.command("confirm")
def review_confirm(
    case_id: CaseArgument,
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    delete: Annotated[bool, typer.Option("--delete", help="Also delete the message.")] = False,
    timeout: Annotated[int | None, typer.Option("--timeout", help="Also time the author out, in minutes.")] = None,
    note: NoteOption = "",
    db: DbOption = None,
) -> None:
    """Confirm the case as a violation (a label, and a strike if the server has a ladder)."""
    from adapters.console.render import outcome_text

    who = make_actor(actor, admin, role, platform, server)
    outcome = with_app(db, lambda m: m.reviews.confirm(case_id, who, delete=delete, timeout_minutes=timeout, note=note))
    typer.echo(outcome_text(outcome))


@review_app.command("dismiss")
def review_dismiss(
    case_id: CaseArgument,
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    note: NoteOption = "",
    db: DbOption = None,
) -> None:
    """Dismiss the case as a false positive (a label)."""
    from adapters.console.render import outcome_text

    who = make_actor(actor, admin, role, platform, server)
    typer.echo(outcome_text(with_app(db, lambda m: m.reviews.dismiss(case_id, who, note=note))))


# ---------------------------------------------------------------- appeals


@appeal_app.command("file")
def appeal_file(
    case_id: Annotated[str, typer.Argument(help="The case id (from the bot's message to you).")],
    actor: ActorOption,
    statement: Annotated[str, typer.Option("--statement", help="Why the decision is wrong (≤ 1,000 characters).")],
    server: AppealServerOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Appeal a decision about your message, once.

    The model looks again at high effort: the running bot posts its second opinion to the mod
    channel (a moderator's `appeal second-opinion` asks for it at once).
    """
    from adapters.console.render import appeal_text

    who = make_actor(actor, False, None, platform, server)
    typer.echo(appeal_text(with_app(db, lambda m: m.appeals.file(case_id, who, statement))))


@appeal_app.command("second-opinion")
def appeal_second_opinion(
    case_id: CaseArgument,
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Ask the model again when an appeal has no second opinion (the model was down)."""
    from adapters.console.render import appeal_text

    who = make_actor(actor, admin, role, platform, server)
    typer.echo(appeal_text(with_app(db, lambda m: m.appeals.second_opinion(case_id, who))))


@appeal_app.command("show")
def appeal_show(
    case_id: CaseArgument,
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """The appeal with the message, policy version, original rationale and the second opinion."""
    from adapters.console.render import appeal_text

    who = make_actor(actor, admin, role, platform, server)
    view = with_app(db, lambda m: m.appeals.view(case_id, who))
    typer.echo(json.dumps(view.model_dump(mode="json"), ensure_ascii=False) if as_json else appeal_text(view))


@appeal_app.command("list")
def appeal_list(
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Appeals waiting for a decision, oldest first."""
    from adapters.console.render import appeal_text

    who = make_actor(actor, admin, role, platform, server)
    views = with_app(db, lambda m: m.appeals.waiting(who))
    for view in views:
        typer.echo(appeal_text(view))
    if not views:
        typer.echo(f"no appeals waiting on {server}")


@appeal_app.command("uphold")
def appeal_uphold(
    case_id: CaseArgument,
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    note: NoteOption = "",
    db: DbOption = None,
) -> None:
    """Uphold the decision; the author is told, with your note."""
    from adapters.console.render import outcome_text

    who = make_actor(actor, admin, role, platform, server)
    typer.echo(outcome_text(with_app(db, lambda m: m.appeals.uphold(case_id, who, note=note))))


@appeal_app.command("overturn")
def appeal_overturn(
    case_id: CaseArgument,
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    note: NoteOption = "",
    db: DbOption = None,
) -> None:
    """Overturn: a false positive. A running timeout is lifted and the author is told."""
    from adapters.console.render import outcome_text

    who = make_actor(actor, admin, role, platform, server)
    typer.echo(outcome_text(with_app(db, lambda m: m.appeals.overturn(case_id, who, note=note))))


# ---------------------------------------------------------------- settings


def parse_assignments(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs; a VALUE that is JSON (numbers, lists, objects, true) is read as JSON."""
    changes: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"{pair!r} is not KEY=VALUE: write e.g. retention_days=14 or moderator_role_ids='[\"mods\"]'")
        try:
            changes[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            changes[key.strip()] = value
    return changes


@settings_app.command("show")
def settings_show(server: ServerOption, platform: PlatformOption = PLATFORM, db: DbOption = None) -> None:
    """The server's settings as JSON (defaults for a server nobody configured yet)."""
    current = with_app(db, lambda m: m.server_settings.show(operator(platform, server)))
    typer.echo(json.dumps(current.model_dump(mode="json"), indent=2, ensure_ascii=False))


@settings_app.command("ranges")
def settings_ranges() -> None:
    """Every numeric setting with its range; a value outside it is refused."""
    from bot.domain import setting_ranges

    for bounds in setting_ranges():
        typer.echo(f"{bounds.path}: {bounds.low} to {bounds.high} ({bounds.unit})")


@settings_app.command("set")
def settings_set(
    server: ServerOption,
    actor: ActorOption,
    assignments: Annotated[list[str], typer.Argument(help="KEY=VALUE pairs, VALUE as JSON where it parses.")],
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Change settings; all or nothing, written to the audit log.

    Examples: retention_days=14, mod_channel_id=C123, moderator_role_ids='["mods"]',
    strike_ladder='{"enabled": true, "window_days": 30, "steps": [{"strikes": 3, "timeout_minutes": 1440}]}'.
    A number outside its range (`modbot settings ranges`) is refused, and so is an effect the
    server's platform cannot carry out (a timeout on Slack). An id given as a whole number
    (mod_channel_id=123) is taken as the id it spells.
    """
    who = make_actor(actor, admin, role, platform, server)
    changes = parse_assignments(assignments)
    updated = with_app(db, lambda m: m.server_settings.update(who, changes))
    typer.echo(json.dumps(updated.model_dump(mode="json", include=set(changes)), ensure_ascii=False))


@app.command("audit")
def audit(
    server: ServerOption, platform: PlatformOption = PLATFORM, as_json: JsonOption = False, db: DbOption = None
) -> None:
    """Every policy and settings change of a server (and self-reviews): who, when, from what to what."""
    from adapters.console.render import shown_id
    from bot.sanitise import safe_inline

    entries = with_app(db, lambda m: m.policies.audit_log(operator(platform, server)))
    for e in entries:
        if as_json:
            typer.echo(json.dumps(e.model_dump(mode="json", exclude={"platform", "server_id"}), ensure_ascii=False))
        else:
            change = f"{e.before} -> {e.after}" if len(str(e.after)) < 40 else "(see --json)"
            typer.echo(
                f"{e.at.isoformat()} {shown_id(e.actor)} {shown_id(e.action)} {shown_id(e.subject)}"
                f" {safe_inline(change, 200)}"
            )


# ---------------------------------------------------------------- jobs


@jobs_app.command("run-once")
def jobs_run_once(
    jobs: Annotated[
        list[str] | None,
        typer.Argument(help="Jobs to run: retention, reminders, digest, health, effects (default: all)."),
    ] = None,
    at: Annotated[
        datetime | None, typer.Option("--at", help="Run as if it were this UTC time (for scripts and tests).")
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Run scheduled jobs once now; notices go to the console's mod channel (console servers only:
    other platforms' notices are posted by the bot that runs them)."""
    from bot.workflow import JOB_NAMES

    names = jobs or list(JOB_NAMES)
    unknown = [n for n in names if n not in JOB_NAMES]
    if unknown:
        raise fail(f"no job named {', '.join(unknown)}; jobs are {', '.join(JOB_NAMES)}")
    when = (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)) if at else None
    settings = load_settings(db)

    async def work(modbot: ModbotApp) -> None:
        from dataclasses import replace

        from adapters.console.sink import ConsoleAdapter
        from bot.bootstrap import build_probe
        from bot.platforms import PlatformRouter

        probe = build_probe(settings) if "health" in names else None
        router = PlatformRouter({PLATFORM: ConsoleAdapter(notices_as_json=as_json)}, modbot.catalog)
        runner = replace(
            modbot.jobs,
            mod_channel=router,
            probe=probe,
            clock=(lambda: when) if when else (lambda: datetime.now(UTC)),
        )
        try:
            for name in names:
                result = await runner.run(name)
                if not as_json:
                    typer.echo(f"{name}: {_summary(result)}")
        finally:
            close = getattr(probe, "aclose", None)
            if close is not None:
                await close()

    with_app(db, work)


def _summary(result: object) -> str:
    from adapters.console.render import shown_id

    if isinstance(result, dict):
        purged = (f"{shown_id(p)}/{shown_id(s)}: {n} texts purged" for (p, s), n in result.items())
        return ", ".join(purged) or "nothing to purge"
    if isinstance(result, list):
        return f"{len(result)} notice(s) posted"
    if isinstance(result, int):
        return f"{result} waiting effect(s) carried out"
    state = getattr(result, "state", None)
    if state is None:
        return "no probe"
    posted = len(getattr(result, "posted", []))
    health = "failing since " + f"{state.failing_since:%Y-%m-%d %H:%M}" if state.failing_since else "healthy"
    return f"model {health}; {posted} notice(s) posted"
