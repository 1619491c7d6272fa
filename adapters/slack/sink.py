"""Slack's EffectSink and ModChannel: a case's effects through the Web API, and honestly what happened."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import assert_never

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import (
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    ServerSettings,
)
from bot.notices import AppealFiled, Notice

from . import render
from .config import PLATFORM, capabilities_with
from .mapping import message_id, split_reference
from .people import USER_ID, People

log = logging.getLogger(__name__)

# A moderator group can be large; DMs beyond this many go unsent (and the result says so).
MAX_MODERATOR_DMS = 25

# What to do about Slack's answer, said to the admin reading the case's effects.
_HINTS = {
    "not_in_channel": "the bot is not in that channel: invite it there with /invite @modbot",
    "channel_not_found": "the channel does not exist or the bot cannot see it (invite it to private channels)",
    "is_archived": "the channel is archived",
    "cant_delete_message": "that token may not delete this message: it must be a workspace admin's or owner's",
    "cant_update_message": "only the bot's own posts can be updated",
    "message_not_found": "the message no longer exists",
    "ratelimited": "Slack rate-limited the bot beyond the retries",
    "invalid_auth": "the token is not valid: reinstall the app and set the new token",
    "token_revoked": "the token was revoked: reinstall the app and set the new token",
    "account_inactive": "the token's user or bot was deactivated",
    "missing_scope": "the app lacks a scope: reinstall it from adapters/slack/manifest.yml",
    "cannot_dm_bot": "the user is a bot",
    "user_not_found": "no such user in this workspace",
    "user_disabled": "the user's account is deactivated",
    "no_such_subteam": "no such user group",
    "invalid_blocks": "Slack refused the message's layout",
}


def _slack_problem(exc: SlackApiError) -> str:
    error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    if error == "missing_scope" and exc.response.get("needed"):
        return f"Slack said {error} ({exc.response.get('needed')}): {_HINTS[error]}"
    hint = _HINTS.get(error)
    return f"Slack said {error}" + (f": {hint}" if hint else "")


def _done(detail: str, reference: str | None = None) -> EffectResult:
    return EffectResult(outcome=EffectOutcome.DONE, detail=detail, reference=reference)


def _failed(detail: str) -> EffectResult:
    return EffectResult(outcome=EffectOutcome.FAILED, detail=detail[:500])


def _unsupported(detail: str) -> EffectResult:
    return EffectResult(outcome=EffectOutcome.UNSUPPORTED, detail=detail)


class SlackEffectSink:
    """Effects for one Slack workspace: flags, DMs and deletes as the Web API allows; timeouts never.

    The bot token does everything but delete; delete uses the admin user token when one
    is configured, since Slack lets a bot token delete only the bot's own messages.
    """

    platform = PLATFORM

    def __init__(
        self, client: AsyncWebClient, *, admin_user_token: str | None = None, people: People | None = None
    ) -> None:
        self._client = client
        self._admin_user_token = admin_user_token
        self._capabilities = capabilities_with(admin_user_token=admin_user_token is not None)
        self.people = people if people is not None else People(client)
        self._workspace_url: str | None = None
        # Whether Slack is connected now, as the running adapter knows it (for /healthz).
        self.connection: Callable[[], bool] = lambda: True

    @property
    def connected(self) -> bool:
        return self.connection()

    @property
    def supported_effects(self) -> frozenset[EffectKind]:
        return self._capabilities.supported

    # ------------------------------------------------------------ EffectSink

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        try:
            return await self._execute(effect, context)
        except SlackApiError as exc:
            result = _failed(_slack_problem(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            result = _failed(f"Slack could not be reached: {type(exc).__name__}")
        log.warning("slack: %s for case %s failed: %s", effect.kind.value, context.case.id, result.detail)
        return result

    async def _execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        match effect.kind:
            case EffectKind.FLAG:
                return await self._flag(context)
            case EffectKind.UPDATE_FLAG:
                return await self._update_flag(context)
            case EffectKind.DELETE:
                return await self._delete(context)
            case EffectKind.TIMEOUT | EffectKind.LIFT_TIMEOUT:
                return _unsupported(self._capabilities.unsupported[effect.kind])
            case EffectKind.DM_MODERATORS:
                return await self._dm_moderators(context)
            case EffectKind.NOTIFY_AUTHOR:
                return await self._dm(context.case.message.author.id, render.author_notice(context, effect))
            case EffectKind.NOTIFY_APPEAL_OUTCOME:
                return await self._dm(context.case.message.author.id, render.appeal_outcome_notice(context, effect))
            case _:
                assert_never(effect.kind)

    async def _flag(self, context: EffectContext) -> EffectResult:
        mod_channel = context.settings.mod_channel_id
        if not mod_channel:
            return _failed("no mod channel is set for this workspace: choose one with /modbot setup")
        message = render.flag_message(
            context,
            directory=await self.directory(self._people(context)),
            permalink=await self._permalink(context.case.message.message_id),
            can_delete=EffectKind.DELETE in self.supported_effects,
        )
        posted = await self._post(mod_channel, message)
        return _done(f"flag posted to {mod_channel}", reference=message_id(mod_channel, posted))

    async def _update_flag(self, context: EffectContext) -> EffectResult:
        if context.flag_reference is None:
            return _failed("the case has no flag post to update (its flag was not posted)")
        channel, ts = split_reference(context.flag_reference)
        message = render.flag_message(
            context,
            directory=await self.directory(self._people(context)),
            permalink=await self._permalink(context.case.message.message_id),
            can_delete=EffectKind.DELETE in self.supported_effects,
        )
        await self._client.chat_update(
            channel=channel, ts=ts, text=message.text, blocks=message.blocks, unfurl_links=False, unfurl_media=False
        )
        return _done("flag post updated", reference=context.flag_reference)

    async def _delete(self, context: EffectContext) -> EffectResult:
        if self._admin_user_token is None:
            return _unsupported(self._capabilities.unsupported[EffectKind.DELETE])
        channel, ts = split_reference(context.case.message.message_id)
        try:
            await self._client.chat_delete(channel=channel, ts=ts, token=self._admin_user_token)
        except SlackApiError as exc:
            if exc.response.get("error") == "message_not_found":
                return _done("already deleted")
            raise
        return _done("deleted with the admin user token")

    async def _dm_moderators(self, context: EffectContext) -> EffectResult:
        author = context.case.message.author.id
        # A moderator is not told about a case on their own message: others decide it.
        moderators = [m for m in await self.people.moderators(context.settings) if m != author]
        if not moderators:
            return _failed("no moderators to message: name moderator user groups or users in /modbot setup")
        message = render.moderator_dm(
            context,
            directory=await self.directory(self._people(context)),
            permalink=await self._permalink(context.case.message.message_id),
        )
        sent, problems = 0, []
        for moderator in moderators[:MAX_MODERATOR_DMS]:
            result = await self._dm(moderator, message)
            if result.outcome is EffectOutcome.DONE:
                sent += 1
            else:
                problems.append(f"{moderator}: {result.detail}")
        skipped = len(moderators) - MAX_MODERATOR_DMS
        detail = f"sent to {sent} of {len(moderators)} moderators"
        if skipped > 0:
            detail += f" ({skipped} beyond the limit of {MAX_MODERATOR_DMS} not messaged)"
        if problems:
            detail += "; " + "; ".join(problems)
        return _done(detail) if sent else _failed(detail)

    async def _dm(self, user_id: str, message: render.SlackMessage) -> EffectResult:
        try:
            opened = await self._client.conversations_open(users=user_id)
            channel = str(opened["channel"]["id"])
            ts = await self._post(channel, message)
        except SlackApiError as exc:
            return _failed(_slack_problem(exc))
        return _done(f"sent to {user_id}", reference=message_id(channel, ts))

    # ------------------------------------------------------------ ModChannel

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        if not server.mod_channel_id:
            return _unsupported("no mod channel is set for this workspace: choose one with /modbot setup")
        people = [notice.appeal.author_id, notice.appeal.decided_by] if isinstance(notice, AppealFiled) else []
        try:
            message = render.notice_message(notice, directory=await self.directory(people))
            ts = await self._post(server.mod_channel_id, message)
        except SlackApiError as exc:
            return _failed(_slack_problem(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _failed(f"Slack could not be reached: {type(exc).__name__}")
        return _done(f"posted to {server.mod_channel_id}", reference=message_id(server.mod_channel_id, ts))

    # ------------------------------------------------------------ lookups

    async def _post(self, channel: str, message: render.SlackMessage) -> str:
        response = await self._client.chat_postMessage(
            channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False, unfurl_media=False
        )
        return str(response["ts"])

    async def _permalink(self, reference: str) -> str | None:
        """A link to the message, or None (it was deleted, or Slack would not say): the flag goes out anyway."""
        channel, ts = split_reference(reference)
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as exc:
            log.info("slack: no permalink for a message in %s: %s", channel, exc.response.get("error"))
            return None
        return str(response["permalink"])

    @staticmethod
    def _people(context: EffectContext) -> list[str | None]:
        return [context.case.message.author.id, context.case.decided_by, *context.joins.author_ids[:20]]

    async def directory(self, user_ids: Iterable[str | None]) -> render.Directory:
        """Display names for these users, and the workspace's URL for profile links."""
        if self._workspace_url is None:
            try:
                self._workspace_url = str((await self._client.auth_test())["url"])
            except SlackApiError:
                self._workspace_url = None
        names = {
            user_id: await self.people.name(user_id)
            for user_id in dict.fromkeys(u for u in user_ids if u and USER_ID.match(u))
        }
        return render.Directory(names=names, workspace_url=self._workspace_url)
