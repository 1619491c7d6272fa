"""The Discord connection: members' messages and edits to the core, buttons to the core, effects back.

`DiscordAdapter` owns one discord.py client (a plain Client, or an AutoShardedClient when
MODBOT_DISCORD_SHARDS is set), the sink the core calls (`adapter.sink`, the EffectSink and
ModChannel), and the command tree that slash commands are added to. Handlers drop what
is not a member's message, map it, hand it to the core's intake, and return.

Messages sent while the bot was down are not fetched afterwards: intake is the gateway's
live stream (a resumed session replays what it missed; a new session does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord
from discord import app_commands

from adapters.discord.buttons import CaseActions, CaseButton, NotWiredYet, handle_form
from adapters.discord.config import DiscordSettings, apply_endpoints
from adapters.discord.mapping import Ignored, intake_message, is_unresolved_thread, posted_from
from adapters.discord.sink import DiscordEffectSink, ModeratorPing, never_ping
from bot.domain import Message

log = logging.getLogger(__name__)

# Guilds (channels, roles), members (roles of authors and moderators; privileged), guild
# messages, and message content (privileged): nothing else is asked of Discord.
INTENTS = discord.Intents(guilds=True, members=True, guild_messages=True, message_content=True)
# Threads whose parent was looked up (a thread the cache did not know): remembered, bounded.
_PARENT_CACHE_SIZE = 10_000


class MessageIntake(Protocol):
    """The core's intake (the pipeline's `submit`): True once durable, False for a repeat."""

    async def submit(self, message: Message) -> bool: ...


WebhookIntake = Callable[[str], Awaitable[bool]]


async def no_webhooks(server_id: str) -> bool:
    """The default until servers can choose: webhook messages are not taken in.

    The seam for a per-server switch (phase B binds it to the server's settings): a server
    whose members post through a proxy such as PluralKit turns it on.
    """
    return False


class ModbotClient(discord.Client):
    """A plain client: one gateway connection."""

    def __init__(self, *, case_actions: CaseActions, **options: Any) -> None:
        super().__init__(**options)
        self.case_actions = case_actions


class ShardedModbotClient(discord.AutoShardedClient):
    """Several gateway connections (shards), as Discord requires from 2,500 guilds."""

    def __init__(self, *, case_actions: CaseActions, **options: Any) -> None:
        super().__init__(**options)
        self.case_actions = case_actions


class DiscordAdapter:
    def __init__(
        self,
        settings: DiscordSettings,
        *,
        case_actions: CaseActions | None = None,
        webhooks: WebhookIntake = no_webhooks,
        moderator_ping: ModeratorPing = never_ping,
        guild_ready_timeout: float = 2.0,
        retry_backoff_seconds: float = 1.0,
    ) -> None:
        self.settings = settings
        self.webhooks = webhooks
        options: dict[str, Any] = {
            "case_actions": case_actions or NotWiredYet(),
            "intents": INTENTS,
            # Everything the library sends carries this unless a call says otherwise.
            "allowed_mentions": discord.AllowedMentions.none(),
            # Edits come from on_raw_message_edit, which needs no cache.
            "max_messages": None,
            "guild_ready_timeout": guild_ready_timeout,
        }
        self.client: discord.Client
        if settings.sharded:
            self.client = ShardedModbotClient(shard_count=settings.shard_count, **options)
        else:
            self.client = ModbotClient(**options)
        self.tree = app_commands.CommandTree(self.client)
        self.sink = DiscordEffectSink(
            self.client, moderator_ping=moderator_ping, retry_backoff_seconds=retry_backoff_seconds
        )
        self.client.add_dynamic_items(CaseButton)
        self.client.event(self.on_message)
        self.client.event(self.on_raw_message_edit)
        self.client.event(self.on_interaction)
        self._intake: MessageIntake | None = None
        self._task: asyncio.Task[None] | None = None
        self._parents: OrderedDict[int, asyncio.Future[str | None]] = OrderedDict()

    # ------------------------------------------------------------ lifecycle

    async def start(self, intake: MessageIntake) -> None:
        """Log in and connect; returns once the guilds are loaded. Raises what login raised (a bad token)."""
        self._intake = intake
        apply_endpoints(self.settings)
        token = self.settings.bot_token()
        self._task = asyncio.create_task(self.client.start(token), name="modbot-discord")
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            failed, self._task = self._task, None  # reported here, so close() does not raise it again
            await self.client.close()
            failed.result()  # raises the login or connection failure
            raise RuntimeError("the Discord client stopped before it was ready")
        log.info("connected to Discord as %s, in %d guild(s)", self.client.user, len(self.client.guilds))

    async def wait_closed(self) -> None:
        """Until the connection ends (close() or a failure that discord.py does not recover from)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Disconnect; re-raises what ended the client, if it failed (a payload it could not parse)."""
        self._intake = None
        await self.client.close()
        if self._task is not None:
            task, self._task = self._task, None
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------ intake

    async def on_message(self, message: discord.Message) -> None:
        await self._take_in(message, is_edit=False)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        # Fires whether or not the message is cached, unlike on_message_edit.
        await self._take_in(payload.message, is_edit=True)

    async def _take_in(self, message: discord.Message, *, is_edit: bool) -> None:
        intake, me = self._intake, self.client.user
        if intake is None or me is None:
            return
        posted = posted_from(message)
        accept_webhooks = posted.webhook_id is not None and posted.guild_id is not None
        if accept_webhooks:
            assert posted.guild_id is not None
            accept_webhooks = await self.webhooks(posted.guild_id)
        result = intake_message(posted, bot_user_id=str(me.id), accept_webhooks=accept_webhooks, is_edit=is_edit)
        if isinstance(result, Ignored):
            log.debug("message %s not taken in: %s", posted.message_id, result.reason)
            return
        if is_unresolved_thread(message):
            result = result.model_copy(update={"parent_channel_id": await self._parent_of(message.channel.id)})
        try:
            await intake.submit(result)
        except Exception:
            # The gateway goes on; this message is not judged. Logged with ids only.
            log.exception("could not take in message %s of server %s", result.message_id, result.server_id)

    async def _parent_of(self, channel_id: int) -> str | None:
        """A thread's parent channel, for a thread the cache does not know: looked up once,
        however many of its messages arrive while the lookup is under way."""
        lookup = self._parents.get(channel_id)
        if lookup is None:
            lookup = self._parents[channel_id] = asyncio.ensure_future(self._fetch_parent(channel_id))
            if len(self._parents) > _PARENT_CACHE_SIZE:
                self._parents.popitem(last=False)
        else:
            self._parents.move_to_end(channel_id)
        return await asyncio.shield(lookup)

    async def _fetch_parent(self, channel_id: int) -> str | None:
        try:
            channel = await self.client.fetch_channel(channel_id)
        except (discord.HTTPException, discord.InvalidData) as exc:
            log.warning("could not look up channel %s: %s", channel_id, exc)
            return None
        if isinstance(channel, discord.Thread) and channel.parent_id is not None:
            return str(channel.parent_id)
        return None

    # ------------------------------------------------------------ interactions

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is discord.InteractionType.modal_submit:
            await handle_form(interaction)
