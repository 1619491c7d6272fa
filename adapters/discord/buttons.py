"""modbot's buttons and the appeal form: who clicked what, passed to the core to authorise and act.

Buttons are DynamicItems: the custom_id (`modbot:<action>:<case_id>`) is all a click needs,
so they work after a restart. The appeal form is answered from `on_interaction` only, the
same way before and after a restart (discord.py forgets a form when the process ends).
Every interaction is acknowledged at once (a form, or "thinking") and answered after the
core has acted: Discord's 3-second limit never depends on the core's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import discord

from adapters.discord.custom_ids import (
    APPEAL_FORM,
    STATEMENT_FIELD,
    STATEMENT_MAX,
    TEMPLATE,
    CaseAction,
    appeal_form_id,
    button_id,
)
from adapters.discord.render import ButtonSpec, fit
from adapters.discord.replies import FAILED, STARTING, Reply

log = logging.getLogger(__name__)

REVIEW_ACTIONS = frozenset({CaseAction.CONFIRM, CaseAction.CONFIRM_DELETE, CaseAction.TIMEOUT, CaseAction.DISMISS})
APPEAL_DECISIONS = frozenset({CaseAction.UPHOLD, CaseAction.OVERTURN})


@dataclass(frozen=True)
class ClickActor:
    """Who acted, as Discord tells it; the core checks their rights again with this."""

    user_id: str
    name: str
    # The guild the click came from; None in a DM (an author's appeal button).
    server_id: str | None
    role_ids: tuple[str, ...] = ()
    # Administrator or Manage Server in that guild: the server's admins, for the core.
    is_admin: bool = False


class CaseActions(Protocol):
    """What buttons and the appeal form ask of the core. Each returns what is shown, privately, to the clicker.

    `adapters.discord.actions.AppCaseActions` binds it to the app's review and appeal
    services; refusals (not a moderator, another server's case, already decided) come back
    as replies, not exceptions.
    """

    async def review(self, actor: ClickActor, case_id: str, action: CaseAction) -> Reply: ...

    async def reasoning(self, actor: ClickActor, case_id: str) -> Reply: ...

    async def appeal(self, actor: ClickActor, case_id: str, statement: str) -> Reply: ...

    async def decide_appeal(self, actor: ClickActor, case_id: str, action: CaseAction) -> Reply: ...


class InFlight:
    """Interactions being answered. A closing bot waits for them (a bounded time) before the app
    closes its store, so that a click under way is not cut off half-done."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        self._count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


@runtime_checkable
class ServesCaseActions(Protocol):
    """A client that knows where buttons go (modbot's clients do), and which interactions are in flight."""

    case_actions: CaseActions
    in_flight: InFlight


def in_flight(interaction: discord.Interaction[Any]) -> contextlib.AbstractAsyncContextManager[None]:
    """Count this interaction's work as in flight on its client (modbot's clients keep the count)."""
    client = interaction.client
    return client.in_flight.track() if isinstance(client, ServesCaseActions) else contextlib.nullcontext()


class NotReady:
    """CaseActions before the core's services are bound (the bot is starting): says so instead of pretending."""

    async def review(self, actor: ClickActor, case_id: str, action: CaseAction) -> Reply:
        return STARTING

    async def reasoning(self, actor: ClickActor, case_id: str) -> Reply:
        return STARTING

    async def appeal(self, actor: ClickActor, case_id: str, statement: str) -> Reply:
        return STARTING

    async def decide_appeal(self, actor: ClickActor, case_id: str, action: CaseAction) -> Reply:
        return STARTING


def actor_of(interaction: discord.Interaction[Any]) -> ClickActor:
    user = interaction.user
    roles: tuple[str, ...] = ()
    if isinstance(user, discord.Member):
        roles = tuple(str(role.id) for role in user.roles if not role.is_default())
    in_guild = interaction.guild_id is not None
    permissions = interaction.permissions
    return ClickActor(
        user_id=str(user.id),
        name=user.display_name,
        server_id=str(interaction.guild_id) if in_guild else None,
        role_ids=roles,
        is_admin=in_guild and (permissions.administrator or permissions.manage_guild),
    )


def _actions(interaction: discord.Interaction[Any]) -> CaseActions:
    client = interaction.client
    return client.case_actions if isinstance(client, ServesCaseActions) else NotReady()


async def answer(interaction: discord.Interaction[Any], reply: Reply, view: discord.ui.View | None = None) -> None:
    """Send a reply privately, as a follow-up of the acknowledgement.

    The clicked post is updated first (if the reply asks): when the clicker reads the
    answer, the post already shows it.
    """
    if reply.post_update is not None and interaction.message is not None:
        update = reply.post_update
        try:
            embeds, buttons = list(update.embeds), view_of(update.buttons)
            none = discord.AllowedMentions.none()
            await interaction.message.edit(embeds=embeds, view=buttons, allowed_mentions=none)
        except discord.HTTPException as exc:
            # The decision stands and its reply follows; a stale post only shows disabled buttons late.
            log.warning("could not update the post %s: %s %s", interaction.message.id, exc.status, exc.code)
    kwargs: dict[str, Any] = {"ephemeral": True, "allowed_mentions": discord.AllowedMentions.none()}
    if view is not None:
        kwargs["view"] = view
    if reply.content:
        kwargs["content"] = reply.content
    if reply.embeds:
        kwargs["embeds"] = list(reply.embeds)
    if reply.file is not None:
        kwargs["file"] = reply.file.as_file()
    await interaction.followup.send(**kwargs)


class CaseButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """Any of modbot's case buttons; the action and the case come from the custom_id."""

    def __init__(
        self,
        action: CaseAction,
        case_id: str,
        *,
        label: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        disabled: bool = False,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or action.value, style=style, custom_id=button_id(action, case_id), disabled=disabled
            )
        )
        self.action = action
        self.case_id = case_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CaseButton:
        return cls(CaseAction(match["action"]), match["case_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await handle_click(interaction, self.action, self.case_id)


class AppealForm(discord.ui.Modal):
    def __init__(self, case_id: str) -> None:
        super().__init__(title="Appeal", custom_id=appeal_form_id(case_id), timeout=None)
        self.add_item(
            discord.ui.TextInput(
                label="Why was this decision wrong?",
                style=discord.TextStyle.paragraph,
                custom_id=STATEMENT_FIELD,
                max_length=STATEMENT_MAX,
                min_length=1,
                placeholder="A moderator reads every appeal.",
            )
        )


async def handle_click(interaction: discord.Interaction[Any], action: CaseAction, case_id: str) -> None:
    async with in_flight(interaction):
        await _click(interaction, action, case_id)


async def _click(interaction: discord.Interaction[Any], action: CaseAction, case_id: str) -> None:
    if action is CaseAction.APPEAL:
        form = AppealForm(case_id)
        # Stopped before it is sent, so discord.py does not keep it: the submission is handled
        # by `handle_form`, which works the same after a restart, and is never answered twice.
        form.stop()
        await interaction.response.send_modal(form)
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    actor = actor_of(interaction)
    actions = _actions(interaction)
    try:
        if action is CaseAction.REASONING:
            reply = await actions.reasoning(actor, case_id)
        elif action in APPEAL_DECISIONS:
            reply = await actions.decide_appeal(actor, case_id, action)
        else:
            reply = await actions.review(actor, case_id, action)
    except Exception:
        log.exception("%s on case %s failed", action.value, case_id)
        reply = FAILED
    await answer(interaction, reply)


def text_values(components: Iterable[Any]) -> dict[str, str]:
    """A submitted form's text fields by custom_id, wherever Discord nested them (rows or labels)."""
    values: dict[str, str] = {}
    for component in components:
        if not isinstance(component, Mapping):
            continue
        if "custom_id" in component and isinstance(component.get("value"), str):
            values[str(component["custom_id"])] = component["value"]
        for key in ("components", "component"):
            inner = component.get(key)
            if isinstance(inner, Mapping):
                inner = [inner]
            if isinstance(inner, list):
                values.update(text_values(inner))
    return values


async def handle_form(interaction: discord.Interaction[Any]) -> bool:
    """Answer a submitted appeal form; False if the submission is not modbot's."""
    data: Mapping[str, Any] = interaction.data or {}
    match = APPEAL_FORM.fullmatch(str(data.get("custom_id", "")))
    if match is None:
        return False
    async with in_flight(interaction):
        await _appeal_form(interaction, data, match)
    return True


async def _appeal_form(interaction: discord.Interaction[Any], data: Mapping[str, Any], match: re.Match[str]) -> None:
    components = data.get("components")
    statement = text_values(components if isinstance(components, list) else []).get(STATEMENT_FIELD, "").strip()
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        reply = await _actions(interaction).appeal(
            actor_of(interaction), match["case_id"], fit(statement, STATEMENT_MAX)
        )
    except Exception:
        log.exception("appeal on case %s failed", match["case_id"])
        reply = FAILED
    await answer(interaction, reply)


def view_of(buttons: Iterable[ButtonSpec]) -> discord.ui.View:
    """The buttons as a view, only to be sent; made per post (discord.py needs a running loop).

    Stopped before it is sent, so discord.py does not keep it for the message: clicks are
    dispatched by the CaseButton DynamicItem from the custom_id alone, and a long-running bot
    does not hold one view per post it ever made.
    """
    view = discord.ui.View(timeout=None)
    for spec in buttons:
        view.add_item(CaseButton(spec.action, spec.case_id, label=spec.label, style=spec.style, disabled=spec.disabled))
    view.stop()
    return view
