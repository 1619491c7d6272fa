"""modbot's slash commands (/policy, /modbot, /review, /appeal) and the forms and menus they open.

Every interaction is acknowledged within Discord's 3 seconds, whatever the core's speed:
a form is opened at once (what it shows is read under a deadline, and left out if it is
late), everything else is deferred ("thinking", ephemeral) and answered by a follow-up
once the core has acted. The core authorises every call again, with the member's roles and
permissions in that guild: `default_permissions` only decides who sees a command in
Discord's menu, and a server's admins can change that (Server Settings > Integrations).

Forms and menus carry what they act on in their custom_ids (`modbot:policy-set:<name>`,
`modbot:setup:<setting>`, `modbot:apply-draft:<id>`, `modbot:appeal-pick`) and are answered
from `on_interaction` (`handle_interaction`), so they keep working after a restart and no
state is held between clicks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec

import discord
from discord import app_commands

from adapters.discord.actions import core_actor
from adapters.discord.buttons import AppealForm, actor_of, answer, in_flight, text_values
from adapters.discord.capabilities import PLATFORM
from adapters.discord.policy_text import (
    FORM_TEXT_LIMIT,
    MAX_POLICY_FILE_BYTES,
    POLICY_FILE_SUFFIXES,
    file_name,
    policy_document,
)
from adapters.discord.replies import (
    FAILED,
    STARTING,
    Reply,
    appealable_label,
    case_line,
    decision_reply,
    diff_reply,
    history_reply,
    open_cases_reply,
    policy_list_reply,
    policy_set_reply,
    policy_show_reply,
    policy_state_line,
    preview_reply,
    status_reply,
    verdicts_reply,
    waiting_appeals_reply,
)
from adapters.discord.setup import (
    PAGES,
    SETUP_FIELD,
    SETUP_PAGE,
    Page,
    SetupError,
    changes_for,
    permission_problems,
    selected_values,
    setup_view,
    summary_embed,
)
from bot.domain import Author, Message, Mode
from bot.policy_format import NAME_RE, parse_policy
from bot.workflow.actors import Actor
from bot.workflow.errors import NotFound, WorkflowError
from bot.workflow.policies import templates

if TYPE_CHECKING:
    from bot.app import ModbotApp
    from bot.workflow.policies import Template

log = logging.getLogger(__name__)

POLICY_FORM = re.compile(r"modbot:policy-(?P<purpose>set|preview):(?P<name>[a-z0-9-]{1,64})(?::(?P<last>\d{1,4}))?")
POLICY_TEXT_FIELD = "policy_text"
APPLY_DRAFT = re.compile(r"modbot:apply-draft:(?P<draft_id>\d{1,18})")
APPEAL_PICK = "modbot:appeal-pick"
# How long a form may wait for what it shows (the live policy) before it opens without it:
# the form must be Discord's first answer, within 3 seconds of the command.
PREFILL_SECONDS = 1.5
CONFIG = discord.Permissions(manage_guild=True)
# Moderators hold Manage Messages on most servers; admins can grant /review to a role in
# Server Settings > Integrations.
MODERATION = discord.Permissions(manage_messages=True)
# In servers only: a DM has no server whose roles and settings could apply.
IN_SERVERS = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)

Work = Callable[["ModbotApp", Actor], Awaitable[Reply]]


class PerMemberLimit:
    """At most `calls` in any `per_seconds` for each member of each server: /policy test asks the
    model, which live moderation shares. Only members the core let test (moderators) are
    counted, so the map stays as small as the servers' moderation teams."""

    def __init__(self, calls: int = 5, per_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.calls = calls
        self.per_seconds = per_seconds
        self.clock = clock
        self._recent: dict[tuple[str, str], deque[float]] = {}

    def take(self, key: tuple[str, str]) -> float:
        """0 and the call is counted; else how many seconds until the member may call again."""
        now = self.clock()
        recent = self._recent.setdefault(key, deque())
        while recent and recent[0] <= now - self.per_seconds:
            recent.popleft()
        if len(recent) >= self.calls:
            return recent[0] + self.per_seconds - now
        recent.append(now)
        return 0.0


@dataclass
class CommandServices:
    """What the commands need when they run: the app (bound once it is built), the policy library."""

    policy_dir: Path
    test_limit: PerMemberLimit = field(default_factory=PerMemberLimit)
    app: ModbotApp | None = None
    prefill_seconds: float = PREFILL_SECONDS
    _templates: list[Template] = field(default_factory=list)
    _texts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read once, before the bot runs: a command never waits on the disk for a template.
        if self.policy_dir.is_dir():
            self._templates = templates(self.policy_dir)
            self._texts = {t.name: Path(t.path).read_text(encoding="utf-8") for t in self._templates}

    def templates(self) -> list[Template]:
        return self._templates

    def template_text(self, name: str) -> str | None:
        return self._texts.get(name)


# ---------------------------------------------------------------- running a command

P = ParamSpec("P")


def tracked(command: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, Coroutine[Any, Any, None]]:
    """A command's work counts as in flight: a closing bot lets it finish before the app closes its store."""

    @functools.wraps(command)
    async def run(*args: P.args, **kwargs: P.kwargs) -> None:
        interaction = next(a for a in args if isinstance(a, discord.Interaction))
        async with in_flight(interaction):
            await command(*args, **kwargs)

    return run


async def _run(services: CommandServices, interaction: discord.Interaction[Any], work: Work) -> Reply:
    app = services.app
    if app is None:
        return STARTING
    actor = core_actor(actor_of(interaction))
    try:
        return await work(app, actor)
    except WorkflowError as refused:
        return Reply.refused(refused, actor.id)
    except Exception:
        log.exception("/%s failed", _command_name(interaction))
        return FAILED


async def deferred(services: CommandServices, interaction: discord.Interaction[Any], work: Work) -> None:
    """Acknowledge at once (ephemeral "thinking"), then answer with what the core did."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    await answer(interaction, await _run(services, interaction, work))


def _command_name(interaction: discord.Interaction[Any]) -> str:
    command = interaction.command
    return command.qualified_name if command is not None else "command"


def _valid_name(name: str) -> str | None:
    """The policy name as the core stores it, or None (then the custom_ids could not carry it)."""
    name = name.strip().lower()
    return name if NAME_RE.match(name) and len(name) <= 64 else None


def _bad_name(name: str) -> Reply:
    return Reply.plain(f"{name!r} is not a policy name: use lowercase letters, digits and hyphens, like hate-speech")


def _renamed(text: str, name: str) -> str:
    """A template saved under another name: its front matter's name is the chosen one."""
    return re.sub(r"(?m)^name:.*$", f"name: {name}", text, count=1)


async def _attachment_text(file: discord.Attachment) -> str | Reply:
    if not file.filename.lower().endswith(POLICY_FILE_SUFFIXES):
        return Reply.plain(f"{file.filename} is not a policy file: attach a .md (or .txt) file")
    if file.size > MAX_POLICY_FILE_BYTES:
        return Reply.plain(f"{file.filename} is {file.size:,} bytes; a policy file may be {MAX_POLICY_FILE_BYTES:,}")
    try:
        data = await file.read()
    except discord.HTTPException as exc:
        return Reply.plain(f"could not download {file.filename} from Discord ({exc.status}): attach it again")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return Reply.plain(f"{file.filename} is not UTF-8 text: save it as UTF-8 and attach it again")


async def _given_text(
    services: CommandServices, name: str, template: str | None, file: discord.Attachment | None
) -> str | Reply | None:
    """The policy text a command was given (a file or a template), a refusal, or None (open the form)."""
    if template and file:
        return Reply.plain("give a file or a template, not both")
    if file is not None:
        return await _attachment_text(file)
    if template:
        found = services.template_text(template)
        if found is None:
            names = ", ".join(t.name for t in services.templates()) or "none installed"
            return Reply.plain(f"no template named {template!r}; templates: {names}")
        return _renamed(found, name)
    return None


async def _form_default(services: CommandServices, interaction: discord.Interaction[Any], name: str) -> str | Reply:
    """What the policy form opens with: the live version, else the library's template of that name, else nothing."""
    app = services.app
    if app is None:
        return STARTING
    actor = core_actor(actor_of(interaction))
    try:
        policy = await asyncio.wait_for(app.policies.show(actor, name), services.prefill_seconds)
    except NotFound:
        return services.template_text(name) or ""
    except WorkflowError as refused:
        return Reply.refused(refused, actor.id)
    except TimeoutError:
        log.warning("policy %s was not read in time to fill the form; it opens empty", name)
        return ""
    document = policy_document(policy)
    if len(document) > FORM_TEXT_LIMIT:
        return Reply.of(
            f"**{name}** v{policy.version} is {len(document):,} characters, more than a form holds "
            f"({FORM_TEXT_LIMIT:,}): `/policy show {name}` attaches it; edit it and send it back with "
            f"`/policy set {name} file:`."
        )
    return document


class PolicyForm(discord.ui.Modal):
    """The policy text, to save (`set`) or to preview; the name (and the preview's size) ride in the custom_id."""

    def __init__(self, purpose: Literal["set", "preview"], name: str, text: str, last: int | None = None) -> None:
        custom_id = f"modbot:policy-{purpose}:{name}" + (f":{last}" if last is not None else "")
        title = f"{'Preview' if purpose == 'preview' else 'Policy'}: {name}"
        super().__init__(title=title[:45], custom_id=custom_id, timeout=None)
        self.add_item(
            discord.ui.TextInput(
                label="The whole policy, front matter first",
                style=discord.TextStyle.paragraph,
                custom_id=POLICY_TEXT_FIELD,
                default=text or None,
                max_length=FORM_TEXT_LIMIT,
                min_length=1,
                placeholder="---\nname: …\ndescription: …\n---\n# Title\n## INSTRUCTIONS …",
            )
        )


async def _open_form(
    services: CommandServices,
    interaction: discord.Interaction[Any],
    purpose: Literal["set", "preview"],
    name: str,
    last: int | None = None,
) -> None:
    default = await _form_default(services, interaction, name)
    if isinstance(default, Reply):
        await interaction.response.defer(ephemeral=True, thinking=True)
        await answer(interaction, default)
        return
    form = PolicyForm(purpose, name, default, last)
    form.stop()  # answered by handle_interaction, the same before and after a restart
    await interaction.response.send_modal(form)


# ---------------------------------------------------------------- the work of each command


def _policy_set(text: str, name: str, source: str) -> Work:
    async def work(app: ModbotApp, actor: Actor) -> Reply:
        result = await app.policies.set(actor, text, name=name, source=source)
        return policy_set_reply(result.policy, result.previous_version, result.changed, result.warnings)

    return work


async def _preview(
    services: CommandServices, interaction: discord.Interaction[Any], text: str, name: str, last: int, source: str
) -> None:
    """Defer, say the preview started, and report when it is done (slow: the model judges each message)."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    await interaction.followup.send(
        f"Previewing **{name}** on the last {last} retained messages. The report follows here when it is done.",
        ephemeral=True,
    )
    sensitive = parse_policy(text).sensitive
    view: discord.ui.View | None = None

    async def work(app: ModbotApp, actor: Actor) -> Reply:
        nonlocal view
        report = await app.preview.preview(actor, text, name=name, last=last, source=source)
        view = _apply_button(report.draft_id)
        return preview_reply(report, sensitive=sensitive)

    reply = await _run(services, interaction, work)
    try:
        await answer(interaction, reply, view)
    except discord.HTTPException as exc:
        # The interaction's follow-ups last 15 minutes; a longer preview reports in the mod channel.
        log.warning("preview report could not follow up (%s %s); posting it in the mod channel", exc.status, exc.code)
        await _post_in_mod_channel(services, interaction, reply, view)


def _apply_button(draft_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label=f"Apply draft {draft_id}",
            custom_id=f"modbot:apply-draft:{draft_id}",
            style=discord.ButtonStyle.success,
        )
    )
    view.stop()
    return view


async def _post_in_mod_channel(
    services: CommandServices, interaction: discord.Interaction[Any], reply: Reply, view: discord.ui.View | None
) -> None:
    app = services.app
    if app is None or interaction.guild_id is None:
        return
    try:
        settings = await app.server_settings.show(core_actor(actor_of(interaction)))
        if settings.mod_channel_id is None:
            return
        channel = interaction.client.get_partial_messageable(
            int(settings.mod_channel_id), guild_id=interaction.guild_id
        )
        await channel.send(
            content=f"<@{interaction.user.id}>'s preview is done.",
            embeds=list(reply.embeds),
            view=view or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions.none(),
        )
    except (discord.HTTPException, WorkflowError) as exc:
        log.warning("the preview report was lost: %s", exc)


def _status() -> Work:
    async def work(app: ModbotApp, actor: Actor) -> Reply:
        from bot.workflow.digest import build_digest

        settings = await app.server_settings.show(actor)  # the server's moderators only
        report = await app.status.report()
        if app.probe is not None:
            model_problem = await app.probe.check()
        else:
            # No probe in this process: the last probe's word, as the health job recorded it.
            failing = report.model.failing_since is not None
            model_problem = (report.model.last_problem or "failing") if failing else None
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        today = await build_digest(app.store, settings.platform, settings.server_id, midnight, now)
        limits = next((p.limits for p in report.platforms if p.platform == PLATFORM), ())
        return status_reply(model_problem=model_problem, queue=dict(report.queue), today=today, limits=limits, now=now)

    return work


def _policy_test(services: CommandServices, interaction: discord.Interaction[Any], text: str, only: str | None) -> Work:
    async def work(app: ModbotApp, actor: Actor) -> Reply:
        from bot.classifier import ClassificationRequest, ModelRequestRejected, ModelUnavailable

        states = await app.policies.list_policies(actor)  # the server's moderators only
        chosen = [s.policy for s in states if s.enabled and (only is None or s.policy.name == only)]
        if only is not None and not chosen:
            names = ", ".join(s.policy.name for s in states if s.enabled) or "none"
            return Reply.plain(f"no enabled policy named {only!r}; enabled: {names}")
        assert actor.server_id is not None
        wait = services.test_limit.take((actor.server_id, actor.id))
        if wait:
            return Reply.of(
                f"You have tested {services.test_limit.calls} texts in the last "
                f"{services.test_limit.per_seconds / 60:.0f} minutes: try again in {wait:.0f} s. "
                "The model is shared with live moderation."
            )
        settings = await app.server_settings.show(actor)
        sample = Message(
            platform=PLATFORM,
            server_id=actor.server_id,
            channel_id=str(interaction.channel_id or 0),
            message_id=f"test-{interaction.id}",
            author=Author(id=actor.id, name=interaction.user.display_name, roles=actor.roles),
            text=text,
        )
        try:
            verdicts = await asyncio.gather(
                *(app.classifier.classify(ClassificationRequest(p, sample, settings.effort)) for p in chosen)
            )
        except (ModelUnavailable, ModelRequestRejected) as exc:
            return Reply.plain(f"the model did not answer ({exc}); nothing was tested: try again when it is back")
        return verdicts_reply(text, verdicts)

    return work


def _review_decide(case_id: str, action: str, note: str, minutes: int | None) -> Work:
    async def work(app: ModbotApp, actor: Actor) -> Reply:
        from adapters.discord.actions import timeout_minutes

        reviews = app.reviews
        if action == "dismiss":
            outcome = await reviews.dismiss(case_id, actor, note=note)
        elif action == "timeout":
            length = minutes or timeout_minutes(await app.server_settings.show(actor))
            outcome = await reviews.confirm(case_id, actor, timeout_minutes=length, note=note)
        else:
            outcome = await reviews.confirm(case_id, actor, delete=action == "confirm-delete", note=note)
        return decision_reply(outcome.decision.action, case_id, outcome.effects, outcome.notes, outcome.strikes)

    return work


def _appeal_decide(case_id: str, decision: str, note: str) -> Work:
    async def work(app: ModbotApp, actor: Actor) -> Reply:
        decide = app.appeals.uphold if decision == "uphold" else app.appeals.overturn
        outcome = await decide(case_id, actor, note=note)
        return decision_reply(outcome.decision.action, case_id, outcome.effects, outcome.notes, outcome.strikes)

    return work


# ---------------------------------------------------------------- autocomplete


async def _choices(
    services: CommandServices,
    interaction: discord.Interaction[Any],
    names: Callable[[ModbotApp, Actor], Awaitable[list[str]]],
    current: str,
) -> list[app_commands.Choice[str]]:
    """Suggestions for the member, as the core lets them see (a member who may not gets none)."""
    app = services.app
    if app is None:
        return []
    try:
        async with in_flight(interaction):
            found = await names(app, core_actor(actor_of(interaction)))
    except WorkflowError:
        return []
    typed = current.strip().lower()
    return [app_commands.Choice(name=n[:100], value=n[:100]) for n in dict.fromkeys(found) if typed in n.lower()][:25]


async def _live_names(app: ModbotApp, actor: Actor) -> list[str]:
    return [s.policy.name for s in await app.policies.list_policies(actor)]


async def _open_case_ids(app: ModbotApp, actor: Actor) -> list[str]:
    return [c.id for c in await app.reviews.open_cases(actor, limit=25)]


async def _appeal_case_ids(app: ModbotApp, actor: Actor) -> list[str]:
    return [v.case_id for v in await app.appeals.waiting(actor)]


# ---------------------------------------------------------------- the command groups


class PolicyCommands(app_commands.Group):
    def __init__(self, services: CommandServices) -> None:
        super().__init__(
            name="policy",
            description="The server's moderation policies",
            default_permissions=CONFIG,
            guild_only=True,
            allowed_contexts=IN_SERVERS,
        )
        self.services = services

    async def _names(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await _choices(self.services, interaction, _live_names, current)

    async def _names_and_templates(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        library = [t.name for t in self.services.templates()]

        async def names(app: ModbotApp, actor: Actor) -> list[str]:
            return [*await _live_names(app, actor), *library]

        return await _choices(self.services, interaction, names, current)

    async def _templates(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        return [
            app_commands.Choice(name=f"{t.name}: {t.description}"[:100], value=t.name)
            for t in self.services.templates()
            if typed in t.name
        ][:25]

    @app_commands.command(
        name="set", description="Add a version of a policy: from a form, an attached .md file, or a template"
    )
    @app_commands.describe(
        name="The policy's name (lowercase, hyphens), e.g. harassment",
        template="Start from a template of modbot's library",
        file="A policy file (.md) to save as it is",
    )
    @tracked
    async def set_(
        self,
        interaction: discord.Interaction[Any],
        name: app_commands.Range[str, 1, 64],
        template: str | None = None,
        file: discord.Attachment | None = None,
    ) -> None:
        valid = _valid_name(name)
        if valid is None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await answer(interaction, _bad_name(name))
            return
        if template is None and file is None:
            await _open_form(self.services, interaction, "set", valid)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        given = await _given_text(self.services, valid, template, file)
        if isinstance(given, Reply) or given is None:
            await answer(interaction, given or FAILED)
            return
        source = file.filename if file is not None else f"template {template}"
        await answer(interaction, await _run(self.services, interaction, _policy_set(given, valid, source)))

    @set_.autocomplete("name")
    async def _set_name(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self._names_and_templates(interaction, current)

    @set_.autocomplete("template")
    async def _set_template(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._templates(interaction, current)

    @app_commands.command(name="show", description="A policy's text (the live version, or an earlier one), as a file")
    @app_commands.describe(name="The policy", version="An earlier version (default: the live one)")
    @tracked
    async def show(
        self, interaction: discord.Interaction[Any], name: str, version: app_commands.Range[int, 1] | None = None
    ) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            policy = await app.policies.show(actor, name, version)
            return policy_show_reply(policy, policy_document(policy), file_name(policy))

        await deferred(self.services, interaction, work)

    @show.autocomplete("name")
    async def _show_name(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self._names(interaction, current)

    @app_commands.command(name="list", description="The server's policies: live version, on or off, mode")
    @tracked
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            states = await app.policies.list_policies(actor)
            return policy_list_reply(
                [policy_state_line(s.policy.name, s.policy.version, s.enabled, s.mode, s.versions) for s in states]
            )

        await deferred(self.services, interaction, work)

    @app_commands.command(name="history", description="A policy's versions and who changed what")
    @tracked
    async def history(self, interaction: discord.Interaction[Any], name: str) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            found = await app.policies.history(actor, name)
            return history_reply(found.name, found.versions, found.changes)

        await deferred(self.services, interaction, work)

    @history.autocomplete("name")
    async def _history_name(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._names(interaction, current)

    @app_commands.command(name="diff", description="What changed between two versions of a policy")
    @tracked
    async def diff(
        self,
        interaction: discord.Interaction[Any],
        name: str,
        old: app_commands.Range[int, 1],
        new: app_commands.Range[int, 1],
    ) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            return diff_reply(name, old, new, await app.policies.diff(actor, name, old, new))

        await deferred(self.services, interaction, work)

    @diff.autocomplete("name")
    async def _diff_name(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self._names(interaction, current)

    @app_commands.command(name="rollback", description="Make an earlier version's text live again (as a new version)")
    @tracked
    async def rollback(
        self, interaction: discord.Interaction[Any], name: str, version: app_commands.Range[int, 1]
    ) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            policy = await app.policies.rollback(actor, name, version)
            return Reply.of(f"**{policy.name}** v{policy.version} is live: the text of v{version}.")

        await deferred(self.services, interaction, work)

    @rollback.autocomplete("name")
    async def _rollback_name(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._names(interaction, current)

    @app_commands.command(name="mode", description="Enforce or shadow one policy, or let it follow the server's mode")
    @tracked
    async def mode(
        self, interaction: discord.Interaction[Any], name: str, mode: Literal["enforce", "shadow", "server"]
    ) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            state = await app.policies.set_mode(actor, name, None if mode == "server" else Mode(mode))
            line = policy_state_line(state.policy.name, state.policy.version, state.enabled, state.mode, state.versions)
            return Reply.of(line)

        await deferred(self.services, interaction, work)

    @mode.autocomplete("name")
    async def _mode_name(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self._names(interaction, current)

    @app_commands.command(name="enable", description="Judge messages with this policy again")
    @tracked
    async def enable(self, interaction: discord.Interaction[Any], name: str) -> None:
        await self._switch(interaction, name, on=True)

    @enable.autocomplete("name")
    async def _enable_name(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self._names(interaction, current)

    @app_commands.command(name="disable", description="Stop judging messages with this policy (its history stays)")
    @tracked
    async def disable(self, interaction: discord.Interaction[Any], name: str) -> None:
        await self._switch(interaction, name, on=False)

    @disable.autocomplete("name")
    async def _disable_name(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._names(interaction, current)

    async def _switch(self, interaction: discord.Interaction[Any], name: str, *, on: bool) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            state = await (app.policies.enable if on else app.policies.disable)(actor, name)
            line = policy_state_line(state.policy.name, state.policy.version, state.enabled, state.mode, state.versions)
            return Reply.of(line)

        await deferred(self.services, interaction, work)

    @app_commands.command(
        name="preview", description="Judge recent messages with a draft; nothing changes until you apply it"
    )
    @app_commands.describe(
        name="The policy",
        template="Preview a template of modbot's library",
        file="A policy file (.md) to preview",
        messages="How many recent retained messages to judge again (default 100)",
    )
    @tracked
    async def preview(
        self,
        interaction: discord.Interaction[Any],
        name: app_commands.Range[str, 1, 64],
        template: str | None = None,
        file: discord.Attachment | None = None,
        messages: app_commands.Range[int, 1, 1000] = 100,
    ) -> None:
        valid = _valid_name(name)
        if valid is None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await answer(interaction, _bad_name(name))
            return
        if template is None and file is None:
            await _open_form(self.services, interaction, "preview", valid, messages)
            return
        given = await _given_text(self.services, valid, template, file)
        if isinstance(given, Reply) or given is None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await answer(interaction, given or FAILED)
            return
        source = file.filename if file is not None else f"template {template}"
        await _preview(self.services, interaction, given, valid, messages, source)

    @preview.autocomplete("name")
    async def _preview_name(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._names_and_templates(interaction, current)

    @preview.autocomplete("template")
    async def _preview_template(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._templates(interaction, current)

    @app_commands.command(name="test", description="How the policies judge a text, now, privately; nothing is recorded")
    @app_commands.describe(text="The text to judge", policy="Only this policy (default: every enabled one)")
    @tracked
    async def test(
        self, interaction: discord.Interaction[Any], text: app_commands.Range[str, 1, 2000], policy: str | None = None
    ) -> None:
        await deferred(self.services, interaction, _policy_test(self.services, interaction, text, policy))

    @test.autocomplete("policy")
    async def _test_policy(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self._names(interaction, current)


class ModbotCommands(app_commands.Group):
    def __init__(self, services: CommandServices) -> None:
        super().__init__(
            name="modbot",
            description="Set modbot up for this server, and see how it runs",
            default_permissions=CONFIG,
            guild_only=True,
            allowed_contexts=IN_SERVERS,
        )
        self.services = services

    @app_commands.command(name="setup", description="Mod channel, roles, exemptions, mode and actions, through menus")
    @tracked
    async def setup(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        view: discord.ui.View | None = None

        async def work(app: ModbotApp, actor: Actor) -> Reply:
            nonlocal view
            settings = await app.server_settings.show(actor)
            view = setup_view(settings, Page.WHERE)
            return Reply(embeds=(summary_embed(settings, Page.WHERE, _problems(interaction, settings)),))

        await answer(interaction, await _run(self.services, interaction, work), view)

    @app_commands.command(name="status", description="Whether the model answers, the queue, and today's counts")
    @tracked
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        await deferred(self.services, interaction, _status())


class ReviewCommands(app_commands.Group):
    def __init__(self, services: CommandServices) -> None:
        super().__init__(
            name="review",
            description="Cases and appeals, for moderators who prefer commands",
            default_permissions=MODERATION,
            guild_only=True,
            allowed_contexts=IN_SERVERS,
        )
        self.services = services

    @app_commands.command(name="list", description="Flagged cases waiting for a moderator")
    @tracked
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            return open_cases_reply(await app.reviews.open_cases(actor, limit=20))

        await deferred(self.services, interaction, work)

    @app_commands.command(name="decide", description="Confirm (and delete or time out) or dismiss a flagged case")
    @app_commands.describe(
        case="The case id (from its flag post or /review list)",
        action="What to do",
        note="Why (kept with the decision; the author sees it on an appeal's outcome)",
        minutes="Time-out length in minutes (default: the server's)",
    )
    @tracked
    async def decide(
        self,
        interaction: discord.Interaction[Any],
        case: str,
        action: Literal["confirm", "confirm-delete", "timeout", "dismiss"],
        note: app_commands.Range[str, 0, 1000] = "",
        minutes: app_commands.Range[int, 1, 40320] | None = None,
    ) -> None:
        await deferred(self.services, interaction, _review_decide(case.strip().upper(), action, note, minutes))

    @decide.autocomplete("case")
    async def _decide_case(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await _choices(self.services, interaction, _open_case_ids, current)

    @app_commands.command(name="appeals", description="Appeals waiting for a moderator")
    @tracked
    async def appeals(self, interaction: discord.Interaction[Any]) -> None:
        async def work(app: ModbotApp, actor: Actor) -> Reply:
            return waiting_appeals_reply(await app.appeals.waiting(actor))

        await deferred(self.services, interaction, work)

    @app_commands.command(name="appeal", description="Uphold or overturn the decision an appeal contests")
    @app_commands.describe(
        case="The case id", decision="Uphold the decision, or overturn it", note="Why (the author is told)"
    )
    @tracked
    async def appeal(
        self,
        interaction: discord.Interaction[Any],
        case: str,
        decision: Literal["uphold", "overturn"],
        note: app_commands.Range[str, 0, 1000] = "",
    ) -> None:
        await deferred(self.services, interaction, _appeal_decide(case.strip().upper(), decision, note))

    @appeal.autocomplete("case")
    async def _appeal_case(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await _choices(self.services, interaction, _appeal_case_ids, current)


def _appeal_command(services: CommandServices) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="appeal", description="Appeal a moderation decision about one of your messages")
    @app_commands.guild_only()
    @tracked
    async def appeal(interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        view: discord.ui.View | None = None

        async def work(app: ModbotApp, actor: Actor) -> Reply:
            nonlocal view
            cases = await app.appeals.appealable(actor, limit=10)
            if not cases:
                return Reply.of(
                    "You have no recent case here that can be appealed. (A case can be appealed once, "
                    "and only one you were told about or acted on.)"
                )
            view = discord.ui.View(timeout=None)
            view.add_item(
                discord.ui.Select(
                    custom_id=APPEAL_PICK,
                    placeholder="Choose the case to appeal",
                    options=[discord.SelectOption(label=appealable_label(c), value=c.id) for c in cases],
                )
            )
            view.stop()
            lines = [f"`{c.id}` {case_line(c)}" for c in cases]
            return Reply.of("Your cases that can be appealed, newest first:\n" + "\n".join(lines))

        await answer(interaction, await _run(services, interaction, work), view)

    return appeal


def install(tree: app_commands.CommandTree[Any], services: CommandServices) -> None:
    """Add modbot's commands to the tree (global commands: every server the bot is in gets them)."""
    tree.add_command(PolicyCommands(services))
    tree.add_command(ModbotCommands(services))
    tree.add_command(ReviewCommands(services))
    tree.add_command(_appeal_command(services))

    @tree.error
    async def on_error(interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
        # What the commands' own guard did not catch (a transformer, a check, sending the answer):
        # the member still gets an answer, not an endless "thinking".
        log.error("/%s failed: %s", _command_name(interaction), error, exc_info=error)
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.followup.send(FAILED.content, ephemeral=True)
            else:
                await interaction.response.send_message(FAILED.content, ephemeral=True)


# ---------------------------------------------------------------- forms and menus


def _problems(interaction: discord.Interaction[Any], settings: Any) -> list[str]:
    guild = interaction.guild
    if guild is None or guild.me is None:
        return [
            "modbot's view of this server is still loading: run /modbot setup again in a minute to check permissions."
        ]
    return permission_problems(guild, settings)


def _form_text(data: Mapping[str, Any]) -> str:
    components = data.get("components")
    return text_values(components if isinstance(components, list) else []).get(POLICY_TEXT_FIELD, "")


async def handle_interaction(services: CommandServices, interaction: discord.Interaction[Any]) -> bool:
    """Answer modbot's forms and menus (not its case buttons: those are DynamicItems); False if not modbot's."""
    async with in_flight(interaction):
        return await _handle(services, interaction)


async def _handle(services: CommandServices, interaction: discord.Interaction[Any]) -> bool:
    data: Mapping[str, Any] = interaction.data or {}
    custom_id = str(data.get("custom_id", ""))
    if interaction.type is discord.InteractionType.modal_submit:
        form = POLICY_FORM.fullmatch(custom_id)
        if form is None:
            return False
        text, name = _form_text(data), form["name"]
        if form["purpose"] == "set":
            await deferred(services, interaction, _policy_set(text, name, "the form"))
        else:
            await _preview(services, interaction, text, name, int(form["last"] or 100), "the form")
        return True
    if interaction.type is not discord.InteractionType.component:
        return False
    if custom_id == APPEAL_PICK:
        values = selected_values(data)
        if len(values) != 1:
            return False
        form_ = AppealForm(values[0])
        form_.stop()  # answered by buttons.handle_form, like the DM's Appeal button
        await interaction.response.send_modal(form_)
        return True
    if (draft := APPLY_DRAFT.fullmatch(custom_id)) is not None:
        draft_id = int(draft["draft_id"])

        async def apply(app: ModbotApp, actor: Actor) -> Reply:
            policy = await app.preview.apply(actor, draft_id)
            return Reply.of(f"Draft {draft_id} is live: **{policy.name}** v{policy.version}.")

        await deferred(services, interaction, apply)
        return True
    if (page := SETUP_PAGE.fullmatch(custom_id)) is not None:
        await _setup_step(services, interaction, page["page"], None)
        return True
    if (setting := SETUP_FIELD.fullmatch(custom_id)) is not None:
        await _setup_step(services, interaction, None, setting["setting"])
        return True
    return False


def _page_of(setting: str) -> str:
    if setting in ("mod_channel", "moderator_roles", "exempt_roles", "exempt_channels"):
        return Page.WHERE
    if setting in ("mode", "effects_every", "effects_high", "timeout"):
        return Page.ACTIONS
    return Page.OPTIONS


async def _setup_step(
    services: CommandServices, interaction: discord.Interaction[Any], page: str | None, setting: str | None
) -> None:
    """One click in the setup: save the change (if a select), then draw the page again from the saved settings."""
    await interaction.response.defer()  # the page itself is edited afterwards
    app = services.app
    if app is None:
        await answer(interaction, STARTING)
        return
    actor = core_actor(actor_of(interaction))
    refusal: Reply | None = None
    try:
        settings = await app.server_settings.show(actor)
        if setting is not None:
            page = _page_of(setting)
            try:
                changes = changes_for(setting, selected_values(interaction.data or {}), settings)
                settings = await app.server_settings.update(actor, changes)
            except SetupError as exc:
                refusal = Reply.plain(str(exc))
            except WorkflowError as exc:
                refusal = Reply.refused(exc, actor.id)
    except WorkflowError as exc:
        await answer(interaction, Reply.refused(exc, actor.id))
        return
    except Exception:
        log.exception("setup step failed")
        await answer(interaction, FAILED)
        return
    assert page is not None
    done = page == Page.DONE or page not in PAGES
    shown = Page.DONE if done else page
    embed = summary_embed(settings, shown, _problems(interaction, settings))
    await interaction.edit_original_response(
        embeds=[embed],
        view=None if done else setup_view(settings, shown),
        allowed_mentions=discord.AllowedMentions.none(),
    )
    if refusal is not None:
        await answer(interaction, refusal)


__all__ = [
    "APPEAL_PICK",
    "APPLY_DRAFT",
    "POLICY_FORM",
    "POLICY_TEXT_FIELD",
    "CommandServices",
    "PerMemberLimit",
    "handle_interaction",
    "install",
]
