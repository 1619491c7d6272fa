"""The Slack adapter's process side: the Bolt app (message intake, commands, buttons, forms) and its two runners.

Durable before acknowledged. The app runs with `process_before_response=True`: Slack
gets its 200 (or its Socket Mode ack) only after the message is stored by
`pipeline.submit`, so a crash or a restart between the two never loses a message:
Slack, having no ack, delivers it again, and the core's intake, idempotent on
(platform, workspace, message id), keeps one. The cost is that every listener must
finish within Slack's 3 seconds; slow work (model calls, phase B's commands) goes to
Bolt lazy listeners or to the pipeline's queue, never into an ack function.

Errors. A listener that raises makes Bolt answer 500 at once (no ack in Socket Mode),
which Slack retries: right for a failed store write. A payload the mapping cannot read
will never get better, so it is logged and acknowledged instead of retried for nothing.
Commands, buttons and forms (adapters/slack/interactions.py) catch their own errors and
tell the person.

Exempt user groups. On Slack, `exempt_role_ids` hold user group ids (S…): before a
message is stored, its author's membership of the workspace's exempt groups is looked up
(cached for a minute) and given to the core as the author's roles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import Message, ServerSettings

from .config import ConnectionMode, SlackConfigError, SlackSettings
from .interactions import Interactions, LazyWork
from .mapping import message_from_event, revision_from_edit, team_of
from .people import GROUP_ID, People
from .sink import SlackEffectSink
from .web_client import build_web_client

if TYPE_CHECKING:
    from bot.app import ModbotApp

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack retries an unacknowledged event after about 1 and 5 minutes; remember ids longer.
REPEAT_MEMORY_SECONDS = 15 * 60
MAX_REMEMBERED_EVENTS = 50_000


class MessageIntake(Protocol):
    """Where messages go: the core's pipeline (`submit` returns once the message is durable; False for a repeat)."""

    async def submit(self, message: Message) -> bool: ...

    async def settings_for(self, message: Message) -> ServerSettings:
        """The settings of the message's server (cached by the pipeline), for its exempt user groups."""
        ...


class RecentEvents:
    """Event ids already taken in by this process, so that Slack's retries of them do no work again.

    Only an event whose listener finished is remembered: a retry of one that failed runs.
    This saves work; the guarantee that nothing is decided twice is the core's idempotent intake.
    """

    def __init__(self, ttl_seconds: float = REPEAT_MEMORY_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._seen: dict[str, float] = {}

    @staticmethod
    def key(body: Mapping[str, Any]) -> str | None:
        event_id = body.get("event_id")
        return f"{body.get('team_id')}/{event_id}" if body.get("type") == "event_callback" and event_id else None

    def seen(self, body: Mapping[str, Any]) -> bool:
        key = self.key(body)
        at = self._seen.get(key) if key else None
        return at is not None and self._clock() - at < self._ttl

    def remember(self, body: Mapping[str, Any]) -> None:
        key = self.key(body)
        if key is None:
            return
        now = self._clock()
        self._seen[key] = now
        # Insertion order is time order: drop from the front what expired, and the oldest past the cap.
        for oldest in list(self._seen)[:64]:
            if now - self._seen[oldest] < self._ttl and len(self._seen) <= MAX_REMEMBERED_EVENTS:
                break
            del self._seen[oldest]


class _DropRedundantClientWarning(logging.Filter):
    # AsyncApp reads SLACK_BOT_TOKEN from the environment itself and warns that it is
    # unused when a client is given; the client is built from that very token.
    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def build_bolt_app(
    settings: SlackSettings,
    intake: MessageIntake,
    *,
    client: AsyncWebClient,
    people: People,
    recent: RecentEvents | None = None,
) -> AsyncApp:
    """The Bolt app: own events and bots dropped (Bolt's middleware and the mapping), retries skipped, messages in."""
    bolt_logger = logging.getLogger("adapters.slack.bolt")
    bolt_logger.addFilter(_DropRedundantClientWarning())
    app = AsyncApp(
        client=client,
        signing_secret=settings.secret("SLACK_SIGNING_SECRET") or "",
        process_before_response=True,
        logger=bolt_logger,
        name="modbot",
    )
    recent = recent if recent is not None else RecentEvents()

    @app.middleware
    async def skip_repeated_events(
        body: dict[str, Any], ack: Callable[[], Awaitable[BoltResponse]], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        if recent.seen(body):
            log.info("slack: event %s was taken in already; Slack's retry is acknowledged", body.get("event_id"))
            return await ack()
        await next()
        return None

    async def take_in(body: dict[str, Any], context: AsyncBoltContext, read: _Reader) -> None:
        event = body.get("event") or {}
        team = team_of(body) or context.team_id
        try:
            message = read(event, team_id=team or "", bot_user_id=context.bot_user_id) if team else None
        except Exception:
            # A payload this code cannot read will not read better on Slack's retry.
            log.exception("slack: event %s could not be read; acknowledged and dropped", body.get("event_id"))
            return
        if message is not None:
            message = await with_exempt_groups(message, intake, people)
            await intake.submit(message)  # raises when the store cannot take it: no ack, Slack retries
        recent.remember(body)

    # message_changed first: Bolt runs the first listener that matches, and "message" matches every subtype.
    @app.event({"type": "message", "subtype": "message_changed"})
    async def message_edited(body: dict[str, Any], context: AsyncBoltContext) -> None:
        await take_in(body, context, revision_from_edit)

    @app.event("message")
    async def message_posted(body: dict[str, Any], context: AsyncBoltContext) -> None:
        await take_in(body, context, message_from_event)

    return app


async def with_exempt_groups(message: Message, intake: MessageIntake, people: People) -> Message:
    """The message with its author's exempt user groups as roles (only those: nothing else reads them)."""
    settings = await intake.settings_for(message)
    groups = tuple(g for g in settings.exempt_role_ids if GROUP_ID.match(g))
    if not groups:
        return message
    # A group Slack will not list counts as not the author's: the message is judged (and logged).
    roles = await people.groups_of(message.author.id, groups)
    if not roles:
        return message
    return message.model_copy(update={"author": message.author.model_copy(update={"roles": roles})})


class _Reader(Protocol):
    def __call__(self, event: Mapping[str, Any], *, team_id: str, bot_user_id: str | None = None) -> Message | None: ...


class SlackAdapter:
    """Slack for one workspace: the sink carrying effects out, and (once started) the Bolt app taking everything in.

    Built before the core (the launcher declares the sink to it); `start(intake, services)`
    connects over Socket Mode (the default) or serves HTTP on MODBOT_SLACK_PORT. With the
    app's services, commands, buttons and forms are served too; with an intake alone
    (benchmarks, intake tests), messages only. `stop()` disconnects and lets requests and
    acknowledged work in flight finish, so that what was acknowledged is stored and done.
    """

    def __init__(self, settings: SlackSettings) -> None:
        settings.check()
        token = settings.secret("SLACK_BOT_TOKEN")
        assert token is not None  # check() refuses settings without one
        self.settings = settings
        self.mode = settings.mode
        self.client = build_web_client(token, settings.api_url)
        self.people = People(self.client)
        self.sink = SlackEffectSink(
            self.client, admin_user_token=settings.secret("SLACK_ADMIN_USER_TOKEN"), people=self.people
        )
        self.sink.connection = lambda: self.connected
        self.work = LazyWork()
        self.app: AsyncApp | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._http: web.AppRunner | None = None
        self.port: int | None = None

    async def verify(self) -> None:
        """Ask Slack whose token this is, so that a wrong or revoked token stops the start with a clear reason."""
        try:
            await self.client.auth_test()
        except SlackApiError as exc:
            error = exc.response.get("error")
            raise SlackConfigError(
                f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token again from the app's "
                "OAuth & Permissions page, or reinstall the app"
            ) from exc

    async def start(
        self, intake: MessageIntake, services: ModbotApp | None = None, *, policy_dir: Path | None = None
    ) -> None:
        self.app = build_bolt_app(self.settings, intake, client=self.client, people=self.people)
        if services is not None:
            Interactions(
                services,
                client=self.client,
                people=self.people,
                sink=self.sink,
                work=self.work,
                connection=self.describe_connection,
                policy_dir=policy_dir,
            ).register(self.app)
        if self.mode is ConnectionMode.SOCKET:
            self._socket = AsyncSocketModeHandler(self.app, app_token=self.settings.secret("SLACK_APP_TOKEN"))
            await self._socket.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
            log.info("slack: connected over Socket Mode")
            return
        self._http = web.AppRunner(self.app.web_app(path=EVENTS_PATH), access_log=None)
        await self._http.setup()
        site = web.TCPSite(self._http, self.settings.host, self.settings.port)
        await site.start()
        # Port 0 (tests) lets the system pick: the runner knows which it got.
        self.port = int(self._http.addresses[0][1])
        log.info("slack: serving HTTP on %s:%s%s", self.settings.host, self.port, EVENTS_PATH)

    @property
    def connected(self) -> bool:
        """Whether Slack can reach the bot now: the Socket Mode session is open, or the HTTP server listens."""
        if self._socket is not None:
            client = self._socket.client
            session = client.current_session
            return not client.closed and not client.stale and session is not None and not session.closed
        return self._http is not None

    async def health(self) -> str | None:
        """None when connected; otherwise what is wrong, for /healthz."""
        if self._socket is not None:
            if await self._socket.client.is_connected():
                return None
            return "the Socket Mode connection to Slack is down (it reconnects by itself)"
        return None if self._http is not None else "the Slack adapter is not started"

    def describe_connection(self) -> str:
        if self._socket is not None:
            return "connected over Socket Mode" if self.connected else "Socket Mode connection down, reconnecting"
        if self._http is not None:
            return f"serving HTTP on port {self.port}"
        return "not started"

    async def settle(self) -> None:
        """Wait until every acknowledged command, click and form has been carried out."""
        await self.work.idle()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
            self._socket = None
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
        if self.work.pending:
            try:
                await asyncio.wait_for(self.work.idle(), grace_seconds)
            except TimeoutError:
                log.warning("slack: %s acknowledged interactions were not finished at stop", self.work.pending)
