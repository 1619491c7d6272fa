"""`modbot review`, `modbot appeal`, `modbot settings`, `modbot jobs`, `modbot audit`: thin over bot.workflow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from adapters.console.cli import DbOption, app, fail, load_settings
from adapters.console.render import (
    ConsoleModChannel,
    appeal_text,
    case_text,
    echo_json,
    outcome_text,
)
from adapters.console.sink import ConsoleEffectSink
from bot.bootstrap import build_classifier
from bot.classifier import RetryPolicy
from bot.domain import Verdict
from bot.store import SqliteStore
from bot.workflow import (
    JOB_NAMES,
    Actor,
    Appeals,
    OllamaProbe,
    Reviews,
    WorkflowError,
    WorkflowJobs,
    show_settings,
    update_settings,
)

T = TypeVar("T")

review_app = typer.Typer(help="Review flagged cases: confirm (optionally delete or time out) or dismiss, once.")
appeal_app = typer.Typer(help="Appeals: the author files one; moderators uphold or overturn it.")
settings_app = typer.Typer(help="Show and change a server's settings (escalation, retention, digest, ...).")
jobs_app = typer.Typer(help="The scheduled jobs: retention, appeal reminders, digest, model health.")
for _group, _name in ((review_app, "review"), (appeal_app, "appeal"), (settings_app, "settings"), (jobs_app, "jobs")):
    _group.info.no_args_is_help = True
    app.add_typer(_group, name=_name)

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
JsonOption = Annotated[bool, typer.Option("--json", help="JSON instead of readable text.")]


def make_actor(actor: str, admin: bool, roles: list[str] | None) -> Actor:
    return Actor(id=actor, roles=tuple(roles or ()), is_admin=admin)


def run_with_store(db: Path | None, work: Callable[[SqliteStore], Awaitable[T]]) -> T:
    """Open the store, run one service call, close; a refusal becomes a message and exit code 2."""
    settings = load_settings(db)

    async def go() -> T:
        store = await SqliteStore.open(settings.db)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except WorkflowError as exc:
        raise fail(str(exc)) from exc


def console_sinks() -> dict[str, ConsoleEffectSink]:
    return {"console": ConsoleEffectSink()}


# ---------------------------------------------------------------- review


@review_app.command("list")
def review_list(
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = "console",
    limit: Annotated[int, typer.Option(help="At most this many cases.")] = 50,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Flagged cases awaiting a moderator, oldest first."""
    who = make_actor(actor, admin, role)
    cases = run_with_store(db, lambda s: Reviews(s, {}).open_cases(platform, server, who, limit))
    for case in cases:
        typer.echo(json.dumps(case.model_dump(mode="json"), ensure_ascii=False) if as_json else case_text(case))
    if not cases and not as_json:
        typer.echo(f"no open cases on {server}")


@review_app.command("show")
def review_show(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """One case: message, verdicts (with reasoning in --json), effects and decisions."""
    who = make_actor(actor, admin, role)
    case, decisions = run_with_store(db, lambda s: Reviews(s, {}).show(case_id, who))
    if as_json:
        echo_json({**case.model_dump(mode="json"), "decisions": [d.model_dump(mode="json") for d in decisions]})
    else:
        typer.echo(case_text(case, decisions))


@review_app.command("confirm")
def review_confirm(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    delete: Annotated[bool, typer.Option("--delete", help="Also delete the message.")] = False,
    timeout: Annotated[int | None, typer.Option("--timeout", help="Also time the author out, in minutes.")] = None,
    note: NoteOption = "",
    db: DbOption = None,
) -> None:
    """Confirm the case as a violation (a label, and a strike if the server has a ladder)."""
    who = make_actor(actor, admin, role)
    outcome = run_with_store(
        db,
        lambda s: Reviews(s, console_sinks()).confirm(case_id, who, delete=delete, timeout_minutes=timeout, note=note),
    )
    typer.echo(outcome_text(outcome))


@review_app.command("dismiss")
def review_dismiss(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    note: NoteOption = "",
    db: DbOption = None,
) -> None:
    """Dismiss the case as a false positive (a label)."""
    who = make_actor(actor, admin, role)
    outcome = run_with_store(db, lambda s: Reviews(s, console_sinks()).dismiss(case_id, who, note=note))
    typer.echo(outcome_text(outcome))


# ---------------------------------------------------------------- appeals


def _appeals(store: SqliteStore, with_model: bool = False) -> Appeals:
    if with_model:
        classifier = build_classifier(load_settings(), RetryPolicy(max_attempts=3, initial_seconds=0.5, max_seconds=4))
        return Appeals(store, classifier, console_sinks(), ConsoleModChannel())
    return Appeals(store, _NoModel(), console_sinks(), ConsoleModChannel())


class _NoModel:
    """For commands that never classify; calling it would be a bug."""

    async def classify(self, request: object) -> Verdict:
        raise RuntimeError("this command does not call the model")


def _with_model(work: Callable[[Appeals], Awaitable[T]]) -> Callable[[SqliteStore], Awaitable[T]]:
    async def go(store: SqliteStore) -> T:
        appeals = _appeals(store, with_model=True)
        try:
            return await work(appeals)
        finally:
            close = getattr(appeals.classifier, "aclose", None)
            if close is not None:
                await close()

    return go


@appeal_app.command("file")
def appeal_file(
    case_id: Annotated[str, typer.Argument(help="The case id (from the bot's message to you).")],
    actor: ActorOption,
    statement: Annotated[str, typer.Option("--statement", help="Why the decision is wrong (≤ 1,000 characters).")],
    db: DbOption = None,
) -> None:
    """Appeal a decision about your message, once. The model looks again at high effort."""
    who = Actor(id=actor)
    view = run_with_store(db, _with_model(lambda a: a.file(case_id, who, statement)))
    typer.echo(appeal_text(view))


@appeal_app.command("second-opinion")
def appeal_second_opinion(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    db: DbOption = None,
) -> None:
    """Ask the model again when an appeal has no second opinion (the model was down)."""
    who = make_actor(actor, admin, role)
    view = run_with_store(db, _with_model(lambda a: a.second_opinion(case_id, who)))
    typer.echo(appeal_text(view))


@appeal_app.command("show")
def appeal_show(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """The appeal with the message, policy version, original rationale and the second opinion."""
    who = make_actor(actor, admin, role)
    view = run_with_store(db, lambda s: _appeals(s).view(case_id, who))
    typer.echo(json.dumps(view.model_dump(mode="json"), ensure_ascii=False) if as_json else appeal_text(view))


@appeal_app.command("list")
def appeal_list(
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = "console",
    db: DbOption = None,
) -> None:
    """Appeals waiting for a decision, oldest first."""
    who = make_actor(actor, admin, role)
    views = run_with_store(db, lambda s: _appeals(s).waiting(platform, server, who))
    for view in views:
        typer.echo(appeal_text(view))
    if not views:
        typer.echo(f"no appeals waiting on {server}")


@appeal_app.command("uphold")
def appeal_uphold(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    note: NoteOption = "",
    db: DbOption = None,
) -> None:
    """Uphold the decision; the author is told, with your note."""
    who = make_actor(actor, admin, role)
    typer.echo(outcome_text(run_with_store(db, lambda s: _appeals(s).uphold(case_id, who, note=note))))


@appeal_app.command("overturn")
def appeal_overturn(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    note: NoteOption = "",
    db: DbOption = None,
) -> None:
    """Overturn: a false positive. A running timeout is lifted and the author is told."""
    who = make_actor(actor, admin, role)
    typer.echo(outcome_text(run_with_store(db, lambda s: _appeals(s).overturn(case_id, who, note=note))))


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
def settings_show(server: ServerOption, platform: PlatformOption = "console", db: DbOption = None) -> None:
    """The server's settings as JSON (defaults for a server nobody configured yet)."""
    current = run_with_store(db, lambda s: show_settings(s, platform, server))
    typer.echo(json.dumps(current.model_dump(mode="json"), indent=2, ensure_ascii=False))


@settings_app.command("set")
def settings_set(
    server: ServerOption,
    actor: ActorOption,
    assignments: Annotated[list[str], typer.Argument(help="KEY=VALUE pairs, VALUE as JSON where it parses.")],
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = "console",
    db: DbOption = None,
) -> None:
    """Change settings; all or nothing, written to the audit log.

    Examples: retention_days=14, mod_channel_id=C123, moderator_role_ids='["mods"]',
    strike_ladder='{"enabled": true, "window_days": 30, "steps": [{"strikes": 3, "timeout_minutes": 1440}]}'.
    """
    who = make_actor(actor, admin, role)
    changes = parse_assignments(assignments)
    updated = run_with_store(db, lambda s: update_settings(s, platform, server, who, changes))
    typer.echo(json.dumps(updated.model_dump(mode="json", include=set(changes)), ensure_ascii=False))


@app.command("audit")
def audit(server: ServerOption, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Every policy and settings change of a server: who, when, from what to what."""
    entries = run_with_store(db, lambda s: s.audit_log(server))
    for e in entries:
        if as_json:
            echo_json(e)
        else:
            change = f"{e['before']} -> {e['after']}" if len(str(e["after"])) < 40 else "(see --json)"
            typer.echo(f"{e['at']} {e['actor']} {e['action']} {e['subject']} {change}")


# ---------------------------------------------------------------- jobs


@jobs_app.command("run-once")
def jobs_run_once(
    jobs: Annotated[
        list[str] | None, typer.Argument(help=f"Jobs to run: {', '.join(JOB_NAMES)} (default: all).")
    ] = None,
    at: Annotated[
        datetime | None, typer.Option("--at", help="Run as if it were this UTC time (for scripts and tests).")
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Run scheduled jobs once now; notices go to the console's mod channel."""
    names = jobs or list(JOB_NAMES)
    unknown = [n for n in names if n not in JOB_NAMES]
    if unknown:
        raise fail(f"no job named {', '.join(unknown)}; jobs are {', '.join(JOB_NAMES)}")
    when = (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)) if at else None
    settings = load_settings(db)
    channel = ConsoleModChannel(as_json=as_json)

    async def work(store: SqliteStore) -> None:
        probe = OllamaProbe(settings.normalised_host(), settings.model) if "health" in names else None
        runner = WorkflowJobs(store, channel, probe, clock=(lambda: when) if when else (lambda: datetime.now(UTC)))
        try:
            for name in names:
                result = await runner.run(name)
                if not as_json:
                    typer.echo(f"{name}: {_summary(result)}")
        finally:
            if probe is not None:
                await probe.aclose()

    run_with_store(db, work)


def _summary(result: object) -> str:
    if isinstance(result, dict):
        return ", ".join(f"{k}: {v} texts purged" for k, v in result.items()) or "nothing to purge"
    if isinstance(result, list):
        return f"{len(result)} notice(s) posted"
    state = getattr(result, "state", None)
    if state is None:
        return "no probe"
    posted = len(getattr(result, "posted", []))
    health = "failing since " + f"{state.failing_since:%Y-%m-%d %H:%M}" if state.failing_since else "healthy"
    return f"model {health}; {posted} notice(s) posted"
