"""`modbot policy set|show|list|history|diff|rollback|enable|disable|mode|preview|apply|templates|install`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from adapters.console.options import (
    PLATFORM,
    ActorOption,
    AdminOption,
    DbOption,
    PlatformOption,
    RoleOption,
    ServerOption,
    fail,
    load_settings,
    make_actor,
    operator,
    policy_app,
    with_app,
)

if TYPE_CHECKING:
    from bot.workflow import PreviewReport

__all__ = ["policy_app"]

NameOption = Annotated[str, typer.Option("--name", "-n", help="The policy's name, e.g. harassment.")]
FileArgument = Annotated[Path, typer.Argument(help="The policy file (Markdown with front matter).")]


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {exc}") from exc


@policy_app.command("set")
def policy_set(
    file: FileArgument,
    server: ServerOption,
    actor: ActorOption,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Default: the file's front matter name.")] = None,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Validate a policy file and store it as the policy's next version (live at once)."""
    who = make_actor(actor, admin, role, platform, server)
    text = _read(file)
    result = with_app(db, lambda m: m.policies.set(who, text, name=name, source=str(file)))
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    p = result.policy
    if result.changed:
        before = f"v{result.previous_version}" if result.previous_version else "nothing"
        typer.echo(f"{p.name}: {before} -> v{p.version} on {server}")
    else:
        typer.echo(f"{p.name}: unchanged (v{p.version} already has this text)")


@policy_app.command("show")
def policy_show(
    server: ServerOption,
    name: NameOption,
    version: Annotated[int | None, typer.Option("--version", "-v", help="Default: the live version.")] = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Print a policy's text (the live version, or --version) and its author notice."""
    policy = with_app(db, lambda m: m.policies.show(operator(platform, server), name, version))
    flags = f", sensitive: {str(policy.sensitive).lower()}, author_notice: {policy.author_notice.value}"
    typer.echo(
        f"# {policy.name} v{policy.version} by {policy.author or '?'} at {policy.created_at:%Y-%m-%d %H:%M} UTC{flags}"
    )
    typer.echo(policy.text, nl=False)
    if policy.notice_text:
        typer.echo(f"\n## AUTHOR NOTICE (not sent to the model)\n{policy.notice_text}")


@policy_app.command("list")
def policy_list(
    server: ServerOption,
    platform: PlatformOption = PLATFORM,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: DbOption = None,
) -> None:
    """The server's policies: live version, on or off, mode."""
    states = with_app(db, lambda m: m.policies.list_policies(operator(platform, server)))
    for st in states:
        mode = st.mode.value if st.mode else "server's mode"
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "name": st.policy.name,
                        "version": st.policy.version,
                        "enabled": st.enabled,
                        "mode": st.mode.value if st.mode else None,
                        "description": st.policy.description,
                    }
                )
            )
        else:
            state = "enabled" if st.enabled else "disabled"
            typer.echo(f"{st.policy.name} v{st.policy.version} {state}, {mode}: {st.policy.description}")
    if not states and not as_json:
        typer.echo(f"no policies on {server}: `modbot policy templates` lists ones to start from")


@policy_app.command("history")
def policy_history(
    server: ServerOption, name: NameOption, platform: PlatformOption = PLATFORM, db: DbOption = None
) -> None:
    """Every version of a policy, and every change to it (who, when, from what to what)."""
    from adapters.console.render import shown_id

    history = with_app(db, lambda m: m.policies.history(operator(platform, server), name))
    for p in history.versions:
        typer.echo(f"v{p.version} {p.created_at:%Y-%m-%d %H:%M} UTC by {shown_id(p.author)}")
    typer.echo("changes:")
    for c in history.changes:
        typer.echo(
            f"  {c.at:%Y-%m-%d %H:%M:%S} {shown_id(c.actor)} {shown_id(c.action)}:"
            f" {shown_id(c.before or '-')} -> {shown_id(c.after or '-')}"
        )


@policy_app.command("diff")
def policy_diff(
    server: ServerOption,
    name: NameOption,
    old: Annotated[int, typer.Argument(help="The older version.")],
    new: Annotated[int, typer.Argument(help="The newer version.")],
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """A unified diff between two versions of a policy (its text, author notice and switches)."""
    diff = with_app(db, lambda m: m.policies.diff(operator(platform, server), name, old, new))
    typer.echo(diff or "(no difference)", nl=False)


@policy_app.command("rollback")
def policy_rollback(
    server: ServerOption,
    name: NameOption,
    actor: ActorOption,
    to: Annotated[int, typer.Option("--to", help="The version whose text becomes live again.")],
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Make an earlier version's text live again, as a new version."""
    who = make_actor(actor, admin, role, platform, server)
    policy = with_app(db, lambda m: m.policies.rollback(who, name, to))
    typer.echo(f"{name}: v{policy.version} is the text of v{to}")


@policy_app.command("enable")
def policy_enable(
    server: ServerOption,
    name: NameOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Turn a policy on."""
    who = make_actor(actor, admin, role, platform, server)
    with_app(db, lambda m: m.policies.enable(who, name))
    typer.echo(f"{name}: enabled")


@policy_app.command("disable")
def policy_disable(
    server: ServerOption,
    name: NameOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Turn a policy off (its versions stay)."""
    who = make_actor(actor, admin, role, platform, server)
    with_app(db, lambda m: m.policies.disable(who, name))
    typer.echo(f"{name}: disabled")


class ModeChoice(StrEnum):
    ENFORCE = "enforce"
    SHADOW = "shadow"
    INHERIT = "inherit"


@policy_app.command("mode")
def policy_mode(
    server: ServerOption,
    name: NameOption,
    mode: Annotated[ModeChoice, typer.Argument(help="enforce, shadow (record only), or inherit the server's.")],
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Enforce a policy, run it in shadow mode (effects recorded, not carried out), or follow the server."""
    from bot.domain import Mode

    who = make_actor(actor, admin, role, platform, server)
    chosen = None if mode is ModeChoice.INHERIT else Mode(mode.value)
    with_app(db, lambda m: m.policies.set_mode(who, name, chosen))
    typer.echo(f"{name}: mode {mode.value}")


# ---------------------------------------------------------------- preview and apply


def preview_text(report: PreviewReport) -> str:
    from adapters.console.render import shown_id, verdict_line
    from bot.sanitise import safe_echo

    against = f"v{report.base_version}" if report.base_version else "no live version"
    lines = [
        f"draft {report.draft_id} of {report.name} (against {against}) on the last {report.examined} retained "
        f"messages: {len(report.newly_flagged)} newly flagged, {len(report.no_longer_flagged)} no longer flagged, "
        f"{report.unchanged} unchanged, {report.skipped} skipped, {report.undecided} undecided"
    ]
    for title, changes in (("newly flagged", report.newly_flagged), ("no longer flagged", report.no_longer_flagged)):
        for c in changes:
            lines.append(f"{title}: case {shown_id(c.case_id)} [{c.case_status.value}] {safe_echo(c.text, 200)!r}")
            if c.before is not None:
                lines.append(f"  before: {verdict_line(c.before)}")
            lines.append(f"  after:  {verdict_line(c.after)}")
    lines.append(
        f"nothing is live yet: `modbot policy apply --server {report.server_id} {report.draft_id}` makes it live"
    )
    return "\n".join(lines)


@policy_app.command("preview")
def policy_preview(
    file: FileArgument,
    server: ServerOption,
    actor: ActorOption,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Default: the file's front matter name.")] = None,
    last: Annotated[int, typer.Option("--last", help="How many recent retained messages to re-judge.")] = 100,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: DbOption = None,
) -> None:
    """Judge the server's recent messages with a draft and show which decisions would change."""
    who = make_actor(actor, admin, role, platform, server)
    text = _read(file)
    report = with_app(db, lambda m: m.preview.preview(who, text, name=name, last=last, source=str(file)))
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(json.dumps(report.model_dump(mode="json"), ensure_ascii=False) if as_json else preview_text(report))


@policy_app.command("apply")
def policy_apply(
    draft: Annotated[int, typer.Argument(help="The draft id printed by `modbot policy preview`.")],
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    db: DbOption = None,
) -> None:
    """Make a previewed draft live (refused if the policy changed since the preview)."""
    who = make_actor(actor, admin, role, platform, server)
    policy = with_app(db, lambda m: m.preview.apply(who, draft))
    typer.echo(f"{policy.name}: draft {draft} is live as v{policy.version}")


# ---------------------------------------------------------------- templates


@policy_app.command("templates")
def policy_templates(
    policy_dir: Annotated[Path | None, typer.Option("--dir", help="Default: the policy library.")] = None,
) -> None:
    """The library's policies a new server can start from."""
    from bot.workflow import templates

    directory = policy_dir or load_settings().policy_dir
    for t in templates(directory):
        typer.echo(f"{t.name} (~{t.tokens} tokens): {t.description}")


@policy_app.command("install")
def policy_install(
    names: Annotated[list[str], typer.Argument(help="Template names (see `modbot policy templates`).")],
    server: ServerOption,
    actor: ActorOption,
    admin: AdminOption = False,
    role: RoleOption = None,
    platform: PlatformOption = PLATFORM,
    policy_dir: Annotated[Path | None, typer.Option("--dir", help="Default: the policy library.")] = None,
    db: DbOption = None,
) -> None:
    """Start a server with the library policies you pick (a new version only where the text differs)."""
    who = make_actor(actor, admin, role, platform, server)
    directory = policy_dir or load_settings(db).policy_dir
    installed = with_app(db, lambda m: m.policies.install_templates(who, names, directory))
    for p in installed:
        typer.echo(f"{p.name} v{p.version} on {server}")
