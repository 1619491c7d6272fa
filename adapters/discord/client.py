"""The Discord connection: members' messages and edits to the core, buttons to the core, effects back.

`DiscordAdapter` owns one discord.py client (a plain Client, or an AutoShardedClient when
MODBOT_DISCORD_SHARDS is set), the sink that carries out effects and posts notices
(`adapter.sink`; the adapter itself is what the core is given, as EffectSink and
ModChannel), and the command tree with modbot's slash commands. Handlers drop what is not
a member's message, map it, hand it to the core's intake, and return.

Messages sent while the bot was down are not fetched afterwards: intake is the gateway's
live stream (a resumed session replays what it missed; a new session does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import discord
from discord import app_commands

from adapters.discord.buttons import CaseActions, CaseButton, InFlight, NotReady, handle_form
from adapters.discord.capabilities import PLATFORM
from adapters.discord.commands import CommandServices, handle_interaction, install
from adapters.discord.config import DiscordSettings, apply_endpoints
from adapters.discord.mapping import Ignored, intake_message, is_unresolved_thread, posted_from
from adapters.discord.sink import DiscordEffectSink, ModeratorPing, ping_from_settings
from bot.domain import Effect, EffectContext, EffectKind, EffectResult, Message, ServerSettings
from bot.notices import Notice
from bot.pipeline import IntakeClosed

if TYPE_CHECKING:
    from bot.app import ModbotApp

log = logging.getLogger(__name__)

# Guilds (channels, roles), members (roles of authors and moderators; privileged), guild
# messages, and message content (privileged): nothing else is asked of Discord.
INTENTS = discord.Intents(guilds=True, members=True, guild_messages=True, message_content=True)
# How long a closing bot lets the interactions it is answering finish.
CLOSE_WAIT_SECONDS = 10.0
# Threads whose parent was looked up (a thread the cache did not know): remembered, bounded.
_PARENT_CACHE_SIZE = 10_000


class MessageIntake(Protocol):
    """The core's intake (the pipeline's `submit`): True once durable, False for a repeat."""

    async def submit(self, message: Message) -> bool: ...


# Whether a message posted through a webhook (a PluralKit proxy) is taken in, given the message.
WebhookIntake = Callable[[Message], Awaitable[bool]]


async def no_webhooks(message: Message) -> bool:
    """Before the app is bound (and in tests that do not ask for them): webhook messages are not taken in."""
    return False


class ModbotClient(discord.Client):
    """A plain client: one gateway connection."""

    def __init__(self, *, case_actions: CaseActions, **options: Any) -> None:
        super().__init__(**options)
        self.case_actions = case_actions
        self.in_flight = InFlight()


class ShardedModbotClient(discord.AutoShardedClient):
    """Several gateway connections (shards), as Discord requires from 2,500 guilds."""

    def __init__(self, *, case_actions: CaseActions, **options: Any) -> None:
        super().__init__(**options)
        self.case_actions = case_actions
        self.in_flight = InFlight()


class DiscordAdapter:
    """One Discord connection: intake to the core, buttons and commands to its services, effects back.

    Started before the app exists (`start()`: the launcher connects platforms first, so
    that effects of work resumed at start-up find Discord connected) and bound to it
    afterwards (`bind(app)`); a message that arrives in between waits for the binding.
    """

    def __init__(
        self,
        settings: DiscordSettings,
        *,
        case_actions: CaseActions | None = None,
        webhooks: WebhookIntake = no_webhooks,
        moderator_ping: ModeratorPing = ping_from_settings,
        commands: CommandServices | None = None,
        guild_ready_timeout: float = 2.0,
        retry_backoff_seconds: float = 1.0,
    ) -> None:
        self.settings = settings
        self.webhooks = webhooks
        options: dict[str, Any] = {
            "case_actions": case_actions or NotReady(),
            "intents": INTENTS,
            # Everything the library sends carries this unless a call says otherwise.
            "allowed_mentions": discord.AllowedMentions.none(),
            # Edits come from on_raw_message_edit, which needs no cache.
            "max_messages": None,
            "guild_ready_timeout": guild_ready_timeout,
        }
        self.client: ModbotClient | ShardedModbotClient
        if settings.sharded:
            self.client = ShardedModbotClient(shard_count=settings.shard_count, **options)
        else:
            self.client = ModbotClient(**options)
        self.tree = app_commands.CommandTree(self.client)
        self.commands = commands
        if commands is not None:
            install(self.tree, commands)
        self.sink = DiscordEffectSink(
            self.client, moderator_ping=moderator_ping, retry_backoff_seconds=retry_backoff_seconds
        )
        self.client.add_dynamic_items(CaseButton)
        self.client.event(self.on_message)
        self.client.event(self.on_raw_message_edit)
        self.client.event(self.on_interaction)
        self._intake: MessageIntake | None = None
        # Set once intake is bound, or once the adapter closes: messages that arrived before wait on it.
        self._intake_ready = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._parents: OrderedDict[int, asyncio.Future[str | None]] = OrderedDict()

    # ------------------------------------------------------------ the core's ports (EffectSink, ModChannel)

    platform = PLATFORM

    @property
    def supported_effects(self) -> frozenset[EffectKind]:
        return self.sink.supported_effects

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        return await self.sink.execute(effect, context)

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        return await self.sink.post(server, notice)

    async def aclose(self) -> None:
        """The app closes its adapters last, after its workers: effects under way still reach Discord."""
        await self.close()

    # ------------------------------------------------------------ lifecycle

    async def start(self, intake: MessageIntake | None = None) -> None:
        """Log in and connect; returns once the guilds are loaded. Raises what login raised (a bad token).

        Without `intake`, messages wait until `bind` (or `bind_intake`) gives one.
        """
        if intake is not None:
            self.bind_intake(intake)
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

    def bind_intake(self, intake: MessageIntake) -> None:
        self._intake = intake
        self._intake_ready.set()

    def bind(self, app: ModbotApp) -> None:
        """Hand the app to every part that needs it: intake, the buttons, the commands, the webhook switch."""
        from adapters.discord.actions import AppCaseActions

        self.client.case_actions = AppCaseActions(app)
        if self.commands is not None:
            self.commands.app = app

        async def accepts_webhooks(message: Message) -> bool:
            # The pipeline's cached settings: a change through /modbot setup invalidates them at once.
            return (await app.pipeline.settings_for(message)).accept_webhook_messages

        self.webhooks = accepts_webhooks
        self.bind_intake(app.pipeline)

    async def sync_commands(self) -> bool:
        """Register the command set with Discord if it differs from what is registered; True if it was sent.

        Global commands: every server the bot is in gets them. Discord limits how often they
        may be replaced, so an unchanged set is not sent again at every start.
        """
        local = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        try:
            registered: list[Any] = list(await self.client.http.get_global_commands(self._application_id()))
        except discord.HTTPException as exc:
            log.warning("could not read the registered slash commands (%s); sending them", exc.status)
            registered = []
        if _same_commands(local, registered):
            log.info("slash commands unchanged (%d)", len(local))
            return False
        try:
            await self.tree.sync()
        except discord.HTTPException as exc:
            # The bot still moderates; only the commands are missing. Logged for the operator.
            log.error("could not register the slash commands: %s %s %s", exc.status, exc.code, exc.text[:200])
            return False
        log.info("slash commands registered (%d)", len(local))
        return True

    def _application_id(self) -> int:
        application_id = self.client.application_id
        if application_id is None:
            raise RuntimeError("the application id is known only once connected")
        return application_id

    @property
    def connected(self) -> bool:
        """Whether the gateway connection is up (every shard's, when sharded): for /healthz and the metric."""
        client = self.client
        if self._closing or not client.is_ready() or client.is_closed():
            return False
        if isinstance(client, discord.AutoShardedClient):
            return bool(client.shards) and all(not shard.is_closed() for shard in client.shards.values())
        return client.ws is not None and client.ws.open

    async def health(self) -> str | None:
        """None when connected; else what is wrong, in words."""
        return None if self.connected else "not connected to the Discord gateway"

    async def wait_closed(self) -> None:
        """Until the connection ends (close() or a failure that discord.py does not recover from)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Disconnect; re-raises what ended the client, if it failed (a payload it could not parse).

        Interactions being answered are let finish first (at most `CLOSE_WAIT_SECONDS`): the
        app closes its store after its adapters. One that arrives in the last moments before the
        connection closes may fail; Discord then tells the member "this interaction failed".
        """
        self._closing = True
        self._intake = None
        self._intake_ready.set()  # messages still waiting for intake give up
        try:
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                await self.client.in_flight.wait_idle()
        except TimeoutError:
            log.warning("closing with interactions still being answered after %.0f s", CLOSE_WAIT_SECONDS)
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
        if self._intake is None and not self._closing:
            await self._intake_ready.wait()  # connected before the app was built: a moment's wait
        intake, me = self._intake, self.client.user
        if intake is None or me is None:
            return
        posted = posted_from(message)
        # Mapped as if webhooks were taken in; whether this server takes them is asked of the message.
        result = intake_message(posted, bot_user_id=str(me.id), accept_webhooks=True, is_edit=is_edit)
        if not isinstance(result, Ignored) and posted.webhook_id is not None and not await self.webhooks(result):
            result = Ignored("a webhook message, and this server does not take webhook messages in")
        if isinstance(result, Ignored):
            log.debug("message %s not taken in: %s", posted.message_id, result.reason)
            return
        if is_unresolved_thread(message):
            result = result.model_copy(update={"parent_channel_id": await self._parent_of(message.channel.id)})
        try:
            await intake.submit(result)
        except IntakeClosed:
            # Stopping: Discord will not send it again to the next process (not a resumed session).
            log.info("message %s of server %s not taken in: the bot is stopping", result.message_id, result.server_id)
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
        """Forms and menus (slash commands go to the tree, case buttons to their DynamicItem)."""
        if interaction.type is discord.InteractionType.modal_submit and await handle_form(interaction):
            return
        if self.commands is not None:
            await handle_interaction(self.commands, interaction)


def _same_commands(local: list[dict[str, Any]], registered: list[dict[str, Any]]) -> bool:
    """Whether Discord already has this command set: the keys modbot sets are compared, not Discord's additions."""

    def shape(value: Any, like: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # Discord returns numbers it was sent (permissions) as strings
        if isinstance(like, dict) and isinstance(value, dict):
            return {k: shape(value.get(k), v) for k, v in like.items() if v is not None}
        if isinstance(like, list) and isinstance(value, list) and len(like) == len(value):
            return [shape(v, pattern) for v, pattern in zip(value, like, strict=True)]
        return value

    by_name = {str(c.get("name")): c for c in registered}
    if set(by_name) != {str(c.get("name")) for c in local}:
        return False
    return all(shape(by_name[str(c["name"])], c) == shape(c, c) for c in local)
