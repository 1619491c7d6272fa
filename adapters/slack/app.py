"""The Slack adapter's process side: the Bolt app with its message intake, and its Socket Mode and HTTP runners.

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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.domain import Message

from .config import ConnectionMode, SlackSettings
from .mapping import message_from_event, revision_from_edit, team_of
from .sink import SlackEffectSink
from .web_client import build_web_client

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack retries an unacknowledged event after about 1 and 5 minutes; remember ids longer.
REPEAT_MEMORY_SECONDS = 15 * 60
MAX_REMEMBERED_EVENTS = 50_000


class MessageIntake(Protocol):
    """Where messages go: the core's pipeline (`submit` returns once the message is durable; False for a repeat)."""

    async def submit(self, message: Message) -> bool: ...


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
    recent: RecentEvents | None = None,
) -> AsyncApp:
    """The Bolt app: own events and bots dropped (Bolt's middleware and the mapping), retries skipped, messages in."""
    token = settings.secret("SLACK_BOT_TOKEN")
    if token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    bolt_logger = logging.getLogger("adapters.slack.bolt")
    bolt_logger.addFilter(_DropRedundantClientWarning())
    app = AsyncApp(
        client=build_web_client(token, settings.api_url),
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


class _Reader(Protocol):
    def __call__(self, event: Mapping[str, Any], *, team_id: str, bot_user_id: str | None = None) -> Message | None: ...


class SlackAdapter:
    """Slack for one workspace: the Bolt app taking messages in, and the sink carrying effects out.

    `start()` connects over Socket Mode (the default) or serves HTTP on MODBOT_SLACK_PORT;
    `stop()` disconnects, letting requests in flight finish so that what was acknowledged is stored.
    """

    def __init__(self, settings: SlackSettings, intake: MessageIntake) -> None:
        settings.check()
        self.settings = settings
        self.mode = settings.mode
        self.app = build_bolt_app(settings, intake)
        self.sink = SlackEffectSink(self.app.client, admin_user_token=settings.secret("SLACK_ADMIN_USER_TOKEN"))
        self._socket: AsyncSocketModeHandler | None = None
        self._http: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
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

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
            self._socket = None
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
