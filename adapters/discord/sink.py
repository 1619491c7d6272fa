"""Effects and mod-channel notices carried out on Discord, each with the result Discord gave.

Failures are results, never crashes: a missing permission (403, code 50013) is a failed
effect plus one warning in the mod channel per missing permission (not per message);
a message already gone (404, code 10008) counts as deleted; closed DMs (403, code 50007)
fail with that reason. discord.py waits out 429s and retries 500, 502, 504 and 524 itself
(five tries); the sink retries the other 5xx (a 503) a bounded number of times. Nothing
loops. Every post goes out with no mention allowed, except the moderator-role ping that a
server's settings ask for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar, assert_never

import discord

from adapters.discord import render
from adapters.discord.buttons import view_of
from adapters.discord.capabilities import PLATFORM, SUPPORTED_EFFECTS
from bot.domain import (
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    ServerSettings,
)
from bot.notices import AppealFiled, Notice

log = logging.getLogger(__name__)

T = TypeVar("T")

# Discord's JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
UNKNOWN_CHANNEL = 10003
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
DMS_CLOSED = 50007
MISSING_PERMISSIONS = 50013
MISSING_ACCESS = 50001
AUDIT_REASON_LIMIT = 512
# The 5xx that discord.py already retried five times before raising.
_RETRIED_BY_LIBRARY = frozenset({500, 502, 504, 524})

# Which permission an effect needs, and how a warning words what failed.
_NEEDS = {
    EffectKind.DELETE: ("Manage Messages", "to delete a message"),
    EffectKind.TIMEOUT: ("Moderate Members", "to time out a member"),
    EffectKind.LIFT_TIMEOUT: ("Moderate Members", "to lift a time-out"),
}
_MOD_CHANNEL_PERMISSIONS = "View Channel, Send Messages and Embed Links in the mod channel"

ModeratorPing = Callable[[ServerSettings], str | None]


def never_ping(settings: ServerSettings) -> str | None:
    """No one is mentioned, ever."""
    return None


def ping_from_settings(settings: ServerSettings) -> str | None:
    """The role the server chose in /modbot setup (moderator_ping_role_id), if any."""
    return settings.moderator_ping_role_id


class _Refused(Exception):
    """An effect that cannot start (nothing to act on); its message is the result's detail."""


class DiscordEffectSink:
    """The Discord side of the core's EffectSink and ModChannel ports."""

    platform = PLATFORM

    def __init__(
        self,
        client: discord.Client,
        *,
        moderator_ping: ModeratorPing = ping_from_settings,
        server_error_retries: int = 2,
        retry_backoff_seconds: float = 1.0,
        max_moderator_dms: int = 25,
    ) -> None:
        self.client = client
        self.moderator_ping = moderator_ping
        self.server_error_retries = server_error_retries
        self.retry_backoff_seconds = retry_backoff_seconds
        self.max_moderator_dms = max_moderator_dms
        # (guild id, permission, what is missing) already warned about in this process. A success
        # needing the same permission forgets it, so a permission taken away again is reported again.
        self._warned: set[tuple[str, str, str]] = set()

    @property
    def supported_effects(self) -> frozenset[EffectKind]:
        return SUPPORTED_EFFECTS

    # ------------------------------------------------------------ the ports

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        kind = effect.kind
        try:
            match kind:
                case EffectKind.FLAG:
                    result = await self._flag(context)
                case EffectKind.UPDATE_FLAG:
                    result = await self._update_flag(context)
                case EffectKind.DELETE:
                    result = await self._delete(context)
                case EffectKind.TIMEOUT:
                    result = await self._timeout(effect, context)
                case EffectKind.LIFT_TIMEOUT:
                    result = await self._lift_timeout(effect, context)
                case EffectKind.DM_MODERATORS:
                    result = await self._dm_moderators(context)
                case EffectKind.NOTIFY_AUTHOR:
                    result = await self._dm_author(
                        render.author_notice(context, effect, self._server_name(context)), context
                    )
                case EffectKind.NOTIFY_APPEAL_OUTCOME:
                    outgoing = render.appeal_outcome_notice(context, effect, self._server_name(context))
                    result = await self._dm_author(outgoing, context)
                case _:
                    assert_never(kind)
        except _Refused as refused:
            return EffectResult(outcome=EffectOutcome.FAILED, detail=str(refused))
        except (discord.HTTPException, discord.RateLimited) as exc:
            return await self._failed(kind, context, exc)
        self._forget_warning(context.case.message.server_id, kind)
        return result

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        if not server.mod_channel_id:
            return EffectResult(
                outcome=EffectOutcome.UNSUPPORTED, detail="no mod channel is set for this server (/modbot setup)"
            )
        outgoing = render.notice_post(notice)
        ping = self.moderator_ping(server) if isinstance(notice, AppealFiled) else None
        try:
            reference = await self._send_to_mod_channel(server, outgoing, ping)
        except (discord.HTTPException, discord.RateLimited) as exc:
            detail = _describe(exc)
            log.warning("mod channel notice %s for server %s failed: %s", notice.kind, server.server_id, detail)
            return EffectResult(outcome=EffectOutcome.FAILED, detail=detail)
        return EffectResult(outcome=EffectOutcome.DONE, detail="posted in the mod channel", reference=reference)

    # ------------------------------------------------------------ effects

    async def _flag(self, context: EffectContext) -> EffectResult:
        settings = context.settings
        if not settings.mod_channel_id:
            raise _Refused("no mod channel is set for this server: /modbot setup sets one")
        reference = await self._send_to_mod_channel(settings, render.flag_post(context), self.moderator_ping(settings))
        return EffectResult(outcome=EffectOutcome.DONE, detail="flag posted in the mod channel", reference=reference)

    async def _update_flag(self, context: EffectContext) -> EffectResult:
        reference = context.flag_reference
        if not reference or "/" not in reference:
            raise _Refused("the case has no flag post to update")
        channel_id, message_id = reference.split("/", 1)
        outgoing = render.flag_post(context)
        post = self._channel(channel_id, context.case.message.server_id).get_partial_message(int(message_id))
        try:
            await self._retrying(
                lambda: post.edit(
                    embeds=list(outgoing.embeds),
                    view=view_of(outgoing.buttons),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            )
        except discord.NotFound as exc:
            if exc.code == UNKNOWN_MESSAGE:
                raise _Refused("the flag post no longer exists (deleted in Discord)") from None
            raise
        return EffectResult(outcome=EffectOutcome.DONE, detail="flag post updated", reference=reference)

    async def _delete(self, context: EffectContext) -> EffectResult:
        msg = context.case.message
        message = self._channel(msg.channel_id, msg.server_id).get_partial_message(int(msg.message_id))
        try:
            await self._retrying(message.delete)
        except discord.NotFound as exc:
            if exc.code == UNKNOWN_MESSAGE:
                return EffectResult(outcome=EffectOutcome.DONE, detail="already deleted")
            raise
        return EffectResult(outcome=EffectOutcome.DONE, detail="message deleted")

    async def _timeout(self, effect: Effect, context: EffectContext) -> EffectResult:
        minutes = effect.timeout_minutes or 10
        member = await self._author_member(context)
        reason = _audit_reason(context, effect, f"time-out of {minutes} min")
        await self._retrying(lambda: member.timeout(timedelta(minutes=minutes), reason=reason))
        return EffectResult(outcome=EffectOutcome.DONE, detail=f"timed out for {minutes} min")

    async def _lift_timeout(self, effect: Effect, context: EffectContext) -> EffectResult:
        member = await self._author_member(context)
        reason = _audit_reason(context, effect, "time-out lifted")
        await self._retrying(lambda: member.timeout(None, reason=reason))
        return EffectResult(outcome=EffectOutcome.DONE, detail="time-out lifted")

    async def _dm_moderators(self, context: EffectContext) -> EffectResult:
        settings = context.settings
        if not settings.moderator_role_ids:
            raise _Refused("no moderator roles are set for this server: /modbot setup sets them")
        guild = self._guild(context)
        author_id = int(context.case.message.author.id) if context.case.message.author.id.isdigit() else None
        moderators: dict[int, discord.Member] = {}
        for role_id in settings.moderator_role_ids:
            role = guild.get_role(int(role_id)) if role_id.isdigit() else None
            for member in role.members if role is not None else ():
                if not member.bot and member.id != author_id:
                    moderators[member.id] = member
        if not moderators:
            raise _Refused("no member has a moderator role (or the members list is not loaded)")
        outgoing = render.moderator_dm(context)
        chosen = sorted(moderators)[: self.max_moderator_dms]
        sent, closed, other = 0, 0, 0
        for member_id in chosen:
            try:
                await self._send_dm(member_id, outgoing)
                sent += 1
            except discord.HTTPException as exc:
                if isinstance(exc, discord.Forbidden) and exc.code == DMS_CLOSED:
                    closed += 1
                else:
                    other += 1
        detail = f"sent to {sent} of {len(chosen)} moderators"
        if closed:
            detail += f"; {closed} with DMs closed (Discord {DMS_CLOSED})"
        if other:
            detail += f"; {other} failed otherwise"
        if len(moderators) > len(chosen):
            detail += f"; {len(moderators) - len(chosen)} more not messaged (at most {self.max_moderator_dms})"
        outcome = EffectOutcome.DONE if sent else EffectOutcome.FAILED
        return EffectResult(outcome=outcome, detail=detail)

    async def _dm_author(self, outgoing: render.Outgoing, context: EffectContext) -> EffectResult:
        author_id = context.case.message.author.id
        if not author_id.isdigit():
            raise _Refused(f"the author {author_id!r} is not a Discord user")
        sent = await self._send_dm(int(author_id), outgoing)
        return EffectResult(outcome=EffectOutcome.DONE, detail="sent by DM", reference=f"{sent.channel.id}/{sent.id}")

    # ------------------------------------------------------------ Discord calls

    def _channel(self, channel_id: str, server_id: str | None) -> discord.PartialMessageable:
        # A partial channel needs no cache: effects work for channels and threads the bot has
        # not seen since it started.
        guild_id = int(server_id) if server_id and server_id.isdigit() else None
        return self.client.get_partial_messageable(int(channel_id), guild_id=guild_id)

    def _guild(self, context: EffectContext) -> discord.Guild:
        server_id = context.case.message.server_id
        guild = self.client.get_guild(int(server_id)) if server_id.isdigit() else None
        if guild is None:
            raise _Refused(f"modbot is not in the server {server_id} (any more)")
        return guild

    def _server_name(self, context: EffectContext) -> str:
        server_id = context.case.message.server_id
        guild = self.client.get_guild(int(server_id)) if server_id.isdigit() else None
        return guild.name if guild is not None else "the server"

    async def _author_member(self, context: EffectContext) -> discord.Member:
        guild = self._guild(context)
        author_id = context.case.message.author.id
        if not author_id.isdigit():
            raise _Refused(f"the author {author_id!r} is not a Discord member")
        member = guild.get_member(int(author_id))
        if member is None:
            member = await self._retrying(lambda: guild.fetch_member(int(author_id)))
        return member

    async def _send_to_mod_channel(self, settings: ServerSettings, outgoing: render.Outgoing, ping: str | None) -> str:
        assert settings.mod_channel_id is not None
        channel = self._channel(settings.mod_channel_id, settings.server_id)
        content = None
        allowed = discord.AllowedMentions.none()
        if ping is not None and ping.isdigit():
            # The one mention modbot ever allows: the moderators' role, because the server asked.
            content = f"<@&{ping}>"
            allowed = discord.AllowedMentions(everyone=False, users=False, roles=[discord.Object(int(ping))])
        message = await self._retrying(
            lambda: channel.send(
                content=content, embeds=list(outgoing.embeds), view=view_of(outgoing.buttons), allowed_mentions=allowed
            )
        )
        return f"{channel.id}/{message.id}"

    async def _send_dm(self, user_id: int, outgoing: render.Outgoing) -> discord.Message:
        dm = await self._retrying(lambda: self.client.create_dm(discord.Object(user_id)))
        kwargs: dict[str, Any] = {"embeds": list(outgoing.embeds), "allowed_mentions": discord.AllowedMentions.none()}
        if outgoing.buttons:
            kwargs["view"] = view_of(outgoing.buttons)
        return await self._retrying(lambda: dm.send(**kwargs))

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """One Discord call, tried again on a 5xx that discord.py did not retry itself, a bounded number of times."""
        for attempt in range(self.server_error_retries + 1):
            try:
                return await call()
            except discord.DiscordServerError as exc:
                if exc.status in _RETRIED_BY_LIBRARY or attempt == self.server_error_retries:
                    raise
                log.warning(
                    "Discord answered %s; trying again (%d of %d)", exc.status, attempt + 1, self.server_error_retries
                )
                await asyncio.sleep(self.retry_backoff_seconds * (attempt + 1))
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ failures

    async def _failed(
        self, kind: EffectKind, context: EffectContext, exc: discord.HTTPException | discord.RateLimited
    ) -> EffectResult:
        detail = _describe(exc)
        log.warning("effect %s of case %s failed: %s", kind.value, context.case.id, detail)
        if isinstance(exc, discord.Forbidden) and exc.code in (MISSING_PERMISSIONS, MISSING_ACCESS):
            missing, consequence = self._what_is_missing(kind, context)
            detail = f"missing permission: {missing} (Discord {exc.code})"
            if kind in _NEEDS:  # a failed mod-channel post cannot warn in the mod channel
                await self._warn_once(context, _NEEDS[kind][0], missing, consequence)
        return EffectResult(outcome=EffectOutcome.FAILED, detail=detail)

    def _what_is_missing(self, kind: EffectKind, context: EffectContext) -> tuple[str, str]:
        if kind not in _NEEDS:
            return _MOD_CHANNEL_PERMISSIONS, "a post"
        permission, consequence = _NEEDS[kind]
        if kind in (EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT):
            server_id = context.case.message.server_id
            guild = self.client.get_guild(int(server_id)) if server_id.isdigit() else None
            if guild is not None and guild.me is not None and guild.me.guild_permissions.moderate_members:
                # Discord says 50013 for both: with the permission, it is the role order.
                return (
                    "a role above the member's highest role (Moderate Members cannot time out "
                    "members with a higher role, or administrators)",
                    consequence,
                )
        return permission, consequence

    async def _warn_once(self, context: EffectContext, permission: str, missing: str, consequence: str) -> None:
        settings = context.settings
        key = (context.case.message.server_id, permission, missing)
        if key in self._warned or not settings.mod_channel_id:
            return
        self._warned.add(key)  # before the await: concurrent failures warn once
        msg = context.case.message
        where = f"<#{msg.channel_id}>"
        try:
            await self._send_to_mod_channel(settings, render.permission_warning(missing, where, consequence), None)
        except discord.HTTPException as exc:
            log.warning(
                "could not post the missing-permission warning for server %s: %s", msg.server_id, _describe(exc)
            )

    def _forget_warning(self, server_id: str, kind: EffectKind) -> None:
        if kind in _NEEDS:
            permission = _NEEDS[kind][0]
            self._warned = {w for w in self._warned if (w[0], w[1]) != (server_id, permission)}


def _describe(exc: discord.HTTPException | discord.RateLimited) -> str:
    if isinstance(exc, discord.RateLimited):
        return f"rate limited by Discord for {exc.retry_after:.0f} s"
    if isinstance(exc, discord.Forbidden) and exc.code == DMS_CLOSED:
        return f"the member does not accept DMs from modbot (Discord {DMS_CLOSED})"
    if isinstance(exc, discord.NotFound):
        what = {
            UNKNOWN_CHANNEL: "the channel no longer exists",
            UNKNOWN_MEMBER: "the member is no longer in the server",
            UNKNOWN_MESSAGE: "the message no longer exists",
            UNKNOWN_USER: "the user no longer exists",
        }.get(exc.code, "not found")
        return f"{what} (Discord 404, code {exc.code})"
    if isinstance(exc, discord.DiscordServerError):
        return f"Discord failed with {exc.status} after retries"
    return f"Discord refused: {exc.status} code {exc.code}: {exc.text[:200]}"


def _audit_reason(context: EffectContext, effect: Effect, what: str) -> str:
    """The audit log line: which case and rules, so admins can trace a time-out to modbot."""
    rules = f" ({', '.join(effect.rule_ids)})" if effect.rule_ids else ""
    by = f" by {effect.requested_by}" if effect.requested_by else ""
    return f"modbot case {context.case.id}: {what}{by}{rules}"[:AUDIT_REASON_LIMIT]
