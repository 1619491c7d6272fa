"""A local Slack on loopback: the Web API, response_url endpoints, Socket Mode, and signed event delivery.

The real slack_sdk / slack-bolt talk to it over 127.0.0.1. It keeps a small workspace
(users, user groups, channels, messages) so that the rules the adapter depends on are
enforced as Slack enforces them: a bot token deletes only the bot's own messages, an
admin's user token any; Block Kit over its limits is refused with `invalid_blocks`;
slack_sdk sends read methods (users.info, chat.getPermalink, usergroups.users.list) as
GET with a query string and others as POST with a form or JSON body, so every method
is served on both verbs.

Every request is recorded (tests/fakes/recorder.py), and every Web API call is also
kept parsed (`calls`, `wait_for_call`) whatever its encoding. `fail_next` injects a
one-shot error (a 429 with Retry-After, or any `{"ok": false}`) for one API method;
`hold_api` makes every Web API call wait until the test releases it, so a test can show
that an acknowledgement did not wait for any.

People act as in Slack: `slash_command` builds a command's form fields, `click` presses a
button that is really on a stored message (or on a message posted to a response_url), and
`submit_view` submits a modal the app really opened, with the state Slack would send (the
values typed, and the initial values of inputs left alone). Each carries a response_url
whose posts are kept (`responses`) and a trigger id that views.open accepts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from tests.fakes.recorder import Recorder, recording_middleware, start_on_loopback

TEAM_ID = "T0FAKE"
TEAM_DOMAIN = "fake-workspace"
APP_ID = "A0MODBOT"
BOT_USER_ID = "U0MODBOT"
BOT_ID = "B0MODBOT"
BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
ADMIN_USER_ID = "U0ADMIN"
ADMIN_TOKEN = "xoxp-fake-admin-token"
MEMBER_TOKEN = "xoxp-fake-member-token"  # a user token of someone who is not an admin
SIGNING_SECRET = "fake-signing-secret"
WORKSPACE_URL = f"https://{TEAM_DOMAIN}.slack.com/"

# Block Kit limits as Slack enforces them (docs.slack.dev reference/block-kit). Written
# here independently of adapters/slack/render.py, so a renderer bug shows as Slack's error.
MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_MODAL = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_ACTIONS_ELEMENTS = 25
MAX_MODAL_TITLE = 24
MAX_MESSAGE_TEXT = 40000
# Modals and their inputs.
MAX_MODAL_BUTTON = 24
MAX_PRIVATE_METADATA = 3000
MAX_INPUT_LABEL = 2000
MAX_TEXT_INPUT = 3000
MAX_STATIC_OPTIONS = 100
MAX_CHOICE_OPTIONS = 10  # checkboxes and radio buttons
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150


def sign(secret: str, body: str | bytes, timestamp: int | str | None = None) -> dict[str, str]:
    """Slack's v0 request signature, written out here rather than taken from slack_sdk."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest}


@dataclass
class ApiCall:
    """One Web API call, its arguments merged from the query string, form and JSON body."""

    method: str
    args: dict[str, Any]
    token: str
    http_method: str

    def json_arg(self, name: str) -> Any:
        """An argument slack_sdk may send as a JSON string (blocks, view) or as JSON itself."""
        value = self.args.get(name)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class SlackUser:
    id: str
    name: str
    display_name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    deleted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.name.title(),
            "deleted": self.deleted,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_bot": self.is_bot,
            "profile": {"display_name": self.display_name, "real_name": self.name.title()},
        }


@dataclass
class StoredMessage:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None


class _Fault:
    def __init__(self, method: str, make: Callable[[], web.Response], times: int) -> None:
        self.method, self.make, self.remaining = method, make, times


class FakeSlack:
    """The Slack side of every test: one workspace, the Web API, Socket Mode, and event delivery."""

    def __init__(self) -> None:
        self.rec = Recorder()
        self.calls: list[ApiCall] = []
        self._calls_changed = asyncio.Condition()
        self._faults: list[_Fault] = []
        self.users: dict[str, SlackUser] = {
            BOT_USER_ID: SlackUser(BOT_USER_ID, "modbot", is_bot=True),
            ADMIN_USER_ID: SlackUser(ADMIN_USER_ID, "ada", "Ada (admin)", is_admin=True),
        }
        self.user_tokens: dict[str, str] = {ADMIN_TOKEN: ADMIN_USER_ID, MEMBER_TOKEN: "U0MEMBER"}
        self.usergroups: dict[str, list[str]] = {}
        # Channels the bot was never invited to: posting there answers not_in_channel.
        self.channels_without_bot: set[str] = set()
        self.messages: dict[tuple[str, str], StoredMessage] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.usergroup_handles: dict[str, str] = {}
        # Free workspaces have no user groups: usergroups.list then answers an error.
        self.user_groups_available = True
        # What the app posted to each response_url hook, in order.
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self._responses_changed = asyncio.Condition()
        self._hooks = itertools.count(1)
        self._triggers: set[str] = set()
        self._api_open = asyncio.Event()
        self._api_open.set()
        self._ts_counter = itertools.count(1)
        self._ws: web.WebSocketResponse | None = None
        self.socket_connected = asyncio.Event()
        self.envelope_acks: dict[str, dict[str, Any]] = {}
        self._ack_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        app = web.Application(middlewares=[recording_middleware(self.rec)])
        app.router.add_route("*", "/api/{method}", self._web_api)
        app.router.add_post("/response_url/{hook}", self._response_url)
        app.router.add_get("/link", self._socket_mode)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = 0
        self.base = ""
        self.api_url = ""

    async def start(self, port: int = 0) -> FakeSlack:
        self.port = await start_on_loopback(self._runner, port)
        self.base = f"http://127.0.0.1:{self.port}"
        self.api_url = self.base + "/api/"  # slack_sdk joins method names to it: the slash matters
        return self

    async def stop(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        await self._runner.cleanup()

    # ------------------------------------------------------------ workspace set-up

    def add_user(self, user_id: str, name: str | None = None, **flags: Any) -> SlackUser:
        user = SlackUser(user_id, name or user_id.lower(), **flags)
        self.users[user_id] = user
        return user

    def add_usergroup(self, group_id: str, handle: str, members: list[str]) -> None:
        for member in members:
            if member not in self.users:
                self.add_user(member)
        self.usergroups[group_id] = list(members)
        self.usergroup_handles[group_id] = handle

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts_counter):06d}"

    def response_url(self, hook: str) -> str:
        return f"{self.base}/response_url/{hook}"

    def permalink(self, channel: str, ts: str, thread_ts: str | None = None) -> str:
        link = f"{WORKSPACE_URL}archives/{channel}/p{ts.replace('.', '')}"
        return link + (f"?thread_ts={thread_ts}&cid={channel}" if thread_ts and thread_ts != ts else "")

    # ------------------------------------------------------------ what tests inspect

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_call(
        self, method: str, count: int = 1, timeout: float = 5.0, where: Callable[[ApiCall], bool] | None = None
    ) -> ApiCall:
        """The `count`-th call of `method` (matching `where`), once it has been made."""

        def found() -> list[ApiCall]:
            return [c for c in self.calls if c.method == method and (where is None or where(c))]

        async with self._calls_changed:
            await asyncio.wait_for(self._calls_changed.wait_for(lambda: len(found()) >= count), timeout)
            return found()[count - 1]

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}` with this HTTP status."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}

        def make() -> web.Response:
            return _json({"ok": False, "error": error}, status=status, headers=headers)

        self._faults.append(_Fault(method, make, times))

    def rate_limit_next(self, method: str, retry_after: int = 0, times: int = 1) -> None:
        self.fail_next(method, "ratelimited", status=429, retry_after=retry_after, times=times)

    def hold_api(self) -> None:
        """Every Web API call from now on is recorded, then waits until `release_api`."""
        self._api_open.clear()

    def release_api(self) -> None:
        self._api_open.set()

    async def wait_for_response(self, hook: str, count: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        """The `count`-th message the app posted to this response_url, once it has."""
        async with self._responses_changed:
            await asyncio.wait_for(
                self._responses_changed.wait_for(lambda: len(self.responses.get(hook, ())) >= count), timeout
            )
            return self.responses[hook][count - 1]

    # ------------------------------------------------------------ the Web API

    async def _web_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw and request.content_type == "application/json":
            args.update(json.loads(raw))
        elif raw:
            args.update(dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True)))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else str(args.pop("token", ""))
        call = ApiCall(method, args, token, request.method)
        async with self._calls_changed:
            self.calls.append(call)
            self._calls_changed.notify_all()
        await self._api_open.wait()
        fault = next((f for f in self._faults if f.method == method and f.remaining > 0), None)
        if fault is not None:
            fault.remaining -= 1
            return fault.make()
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return _json({"ok": False, "error": "unknown_method"})
        if not token:
            return _json({"ok": False, "error": "not_authed"})
        if method == "apps.connections.open":
            if not token.startswith("xapp-"):
                return _json({"ok": False, "error": "not_allowed_token_type"})
        elif token != BOT_TOKEN and token not in self.user_tokens:
            return _json({"ok": False, "error": "invalid_auth"})
        try:
            result = handler(call)
        except _SlackError as exc:
            return _json({"ok": False, "error": exc.error, **exc.extra})
        except KeyError as exc:  # a required argument is missing, as Slack says it
            return _json({"ok": False, "error": "invalid_arguments", "detail": f"missing {exc}"})
        return _json({"ok": True, **result})

    def _actor(self, call: ApiCall) -> str:
        return BOT_USER_ID if call.token == BOT_TOKEN else self.user_tokens[call.token]

    def _api_auth_test(self, call: ApiCall) -> dict[str, Any]:
        identity: dict[str, Any] = {
            "url": WORKSPACE_URL,
            "team": "Fake Workspace",
            "team_id": TEAM_ID,
            "user": self.users[self._actor(call)].name if self._actor(call) in self.users else "someone",
            "user_id": self._actor(call),
            "is_enterprise_install": False,
        }
        if call.token == BOT_TOKEN:
            identity["bot_id"] = BOT_ID
        return identity

    def _api_apps_connections_open(self, call: ApiCall) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/link?ticket={uuid.uuid4().hex}"}

    def _api_chat_postMessage(self, call: ApiCall) -> dict[str, Any]:  # noqa: N802 - Slack's method name
        channel = str(call.args["channel"])
        blocks = call.json_arg("blocks") or []
        text = str(call.args.get("text", ""))
        if not text and not blocks:
            raise _SlackError("no_text")
        self._check_blocks(blocks, MAX_BLOCKS_MESSAGE)
        if len(text) > MAX_MESSAGE_TEXT:
            raise _SlackError("msg_too_long")
        if channel in self.channels_without_bot and call.token == BOT_TOKEN:
            raise _SlackError("not_in_channel")
        ts = self.next_ts()
        thread_ts = call.args.get("thread_ts")
        self.messages[(channel, ts)] = StoredMessage(channel, ts, self._actor(call), text, blocks, thread_ts)
        message = {"type": "message", "text": text, "user": self._actor(call), "ts": ts, "blocks": blocks}
        if call.token == BOT_TOKEN:
            message["bot_id"] = BOT_ID
        return {"channel": channel, "ts": ts, "message": message}

    def _api_chat_update(self, call: ApiCall) -> dict[str, Any]:
        channel, ts = str(call.args["channel"]), str(call.args["ts"])
        stored = self.messages.get((channel, ts))
        if stored is None:
            raise _SlackError("message_not_found")
        if stored.user != self._actor(call):
            raise _SlackError("cant_update_message")
        blocks = call.json_arg("blocks") or []
        self._check_blocks(blocks, MAX_BLOCKS_MESSAGE)
        stored.text, stored.blocks = str(call.args.get("text", stored.text)), blocks
        return {"channel": channel, "ts": ts, "text": stored.text}

    def _api_chat_delete(self, call: ApiCall) -> dict[str, Any]:
        channel, ts = str(call.args["channel"]), str(call.args["ts"])
        stored = self.messages.get((channel, ts))
        if stored is None:
            raise _SlackError("message_not_found")
        actor = self._actor(call)
        # Slack: a bot token deletes only the bot's own messages; a user token its user's own,
        # and any message when that user is a workspace admin or owner.
        person = self.users.get(actor)
        may = stored.user == actor or (
            call.token != BOT_TOKEN and person is not None and (person.is_admin or person.is_owner)
        )
        if not may:
            raise _SlackError("cant_delete_message")
        del self.messages[(channel, ts)]
        return {"channel": channel, "ts": ts}

    def _api_chat_getPermalink(self, call: ApiCall) -> dict[str, Any]:  # noqa: N802 - Slack's method name
        channel, ts = str(call.args["channel"]), str(call.args["message_ts"])
        stored = self.messages.get((channel, ts))
        if stored is None:
            raise _SlackError("message_not_found")
        return {"channel": channel, "permalink": self.permalink(channel, ts, stored.thread_ts)}

    def _api_chat_postEphemeral(self, call: ApiCall) -> dict[str, Any]:  # noqa: N802 - Slack's method name
        self._check_blocks(call.json_arg("blocks") or [], MAX_BLOCKS_MESSAGE)
        if str(call.args["user"]) not in self.users:
            raise _SlackError("user_not_in_channel")
        return {"message_ts": self.next_ts()}

    def _api_conversations_open(self, call: ApiCall) -> dict[str, Any]:
        users = str(call.args["users"]).split(",")
        for user_id in users:
            user = self.users.get(user_id)
            if user is None:
                raise _SlackError("user_not_found")
            if user.is_bot:
                raise _SlackError("cannot_dm_bot")
            if user.deleted:
                raise _SlackError("user_disabled")
        return {"channel": {"id": "D" + "".join(u.removeprefix("U") for u in users)}}

    def _api_users_info(self, call: ApiCall) -> dict[str, Any]:
        user = self.users.get(str(call.args["user"]))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": user.as_json()}

    def _api_usergroups_users_list(self, call: ApiCall) -> dict[str, Any]:
        group = str(call.args["usergroup"])
        if group not in self.usergroups:
            raise _SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _api_usergroups_list(self, call: ApiCall) -> dict[str, Any]:
        if not self.user_groups_available:
            raise _SlackError("plan_upgrade_required")
        return {
            "usergroups": [
                {"id": g, "team_id": TEAM_ID, "handle": self.usergroup_handles.get(g, g.lower()), "name": g}
                for g in self.usergroups
            ]
        }

    def _api_views_open(self, call: ApiCall) -> dict[str, Any]:
        if str(call.args.get("trigger_id", "")) not in self._triggers:
            raise _SlackError("invalid_trigger_id")
        return {"view": self._store_view(call.json_arg("view"), f"V{uuid.uuid4().hex[:10].upper()}")}

    def _api_views_update(self, call: ApiCall) -> dict[str, Any]:
        view_id = str(call.args.get("view_id", ""))
        if view_id not in self.views:
            raise _SlackError("not_found")
        return {"view": self._store_view(call.json_arg("view"), view_id)}

    def _store_view(self, view: dict[str, Any], view_id: str) -> dict[str, Any]:
        problems = modal_problems(view)
        if problems:
            raise _SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
        self._check_blocks(view.get("blocks") or [], MAX_BLOCKS_MODAL)
        stored = {"id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "hash": uuid.uuid4().hex, **view}
        self.views[view_id] = stored
        return stored

    def _check_blocks(self, blocks: list[dict[str, Any]], most: int) -> None:
        problems = block_kit_problems(blocks, most)
        if problems:
            raise _SlackError("invalid_blocks", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})

    # ------------------------------------------------------------ response_url

    async def _response_url(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        raw = await request.read()
        message = json.loads(raw) if raw else {}
        problems = block_kit_problems(message.get("blocks") or [], MAX_BLOCKS_MESSAGE)
        if problems:
            # What Slack answers a response_url post it will not show.
            return web.Response(status=400, text="invalid_blocks")
        message.setdefault("ts", self.next_ts())
        async with self._responses_changed:
            self.responses.setdefault(hook, []).append(message)
            self._responses_changed.notify_all()
        return _json({"ok": True})

    # ------------------------------------------------------------ Socket Mode

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": APP_ID},
            }
        )
        self.socket_connected.set()
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                ack = json.loads(frame.data)
                envelope_id = ack.get("envelope_id")
                if envelope_id is None:
                    continue
                self.envelope_acks[envelope_id] = ack
                waiter = self._ack_waiters.pop(envelope_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(ack)
        self.socket_connected.clear()
        return ws

    async def send_envelope(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Push one envelope over Socket Mode and return the app's ack (TimeoutError if none comes)."""
        assert self._ws is not None and not self._ws.closed, "no Socket Mode connection"
        envelope_id = envelope_id or str(uuid.uuid4())
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._ack_waiters[envelope_id] = waiter
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": envelope_type != "events_api",
        }
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        await self._ws.send_json(envelope)
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._ack_waiters.pop(envelope_id, None)

    # ------------------------------------------------------------ HTTP event delivery

    async def deliver(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        form: bool = False,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
        retry_num: int | None = None,
        signature: str | None = None,
    ) -> tuple[int, str]:
        """POST a payload to the app as Slack does: JSON for events, `payload=` form for interactions."""
        if form:
            body = urllib.parse.urlencode({"payload": json.dumps(payload)})
            content_type = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(payload)
            content_type = "application/json"
        return await self._post_signed(url, body, content_type, secret, timestamp, retry_num, signature)

    async def deliver_command(
        self, url: str, form_fields: dict[str, str], *, secret: str = SIGNING_SECRET
    ) -> tuple[int, str]:
        """POST a slash command, which Slack sends as plain form fields."""
        body = urllib.parse.urlencode(form_fields)
        return await self._post_signed(url, body, "application/x-www-form-urlencoded", secret, None, None, None)

    async def _post_signed(
        self,
        url: str,
        body: str,
        content_type: str,
        secret: str,
        timestamp: int | None,
        retry_num: int | None,
        signature: str | None,
    ) -> tuple[int, str]:
        headers = {"Content-Type": content_type, **sign(secret, body, timestamp)}
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with aiohttp.ClientSession() as session, session.post(url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    # ------------------------------------------------------------ payloads Slack sends

    def user_message(
        self,
        text: str,
        *,
        user: str = "U0AUTHOR",
        channel: str = "C0GENERAL",
        thread_ts: str | None = None,
        subtype: str | None = None,
        ts: str | None = None,
        event_id: str | None = None,
        **event_fields: Any,
    ) -> dict[str, Any]:
        """An Events API `message` event, with the message kept so permalinks and deletes find it."""
        ts = ts or self.next_ts()
        self.messages[(channel, ts)] = StoredMessage(channel, ts, user, text, thread_ts=thread_ts)
        if user not in self.users:
            self.add_user(user)
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "team": TEAM_ID,
            "channel_type": "channel",
            **event_fields,
        }
        if subtype is not None:
            event["subtype"] = subtype
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return event_callback(event, event_id=event_id)

    def edited_message(
        self,
        original: dict[str, Any],
        new_text: str,
        *,
        edited_ts: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """The `message_changed` event Slack sends when the author of `original` edits it."""
        before = original["event"]
        edited_ts = edited_ts or f"{float(before['ts']) + 60:.6f}"
        self.messages[(before["channel"], before["ts"])].text = new_text
        message = {
            "type": "message",
            "user": before["user"],
            "text": new_text,
            "ts": before["ts"],
            "team": TEAM_ID,
            "edited": {"user": before["user"], "ts": edited_ts},
        }
        if "thread_ts" in before:
            message["thread_ts"] = before["thread_ts"]
        now = self.next_ts()
        event = {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": before["channel"],
            "channel_type": before.get("channel_type", "channel"),
            "ts": now,
            "event_ts": now,
            "message": message,
            "previous_message": {k: before[k] for k in ("type", "user", "text", "ts") if k in before},
        }
        return event_callback(event, event_id=event_id)

    # ------------------------------------------------------------ what people do

    def new_hook(self) -> str:
        return f"hook{next(self._hooks)}"

    def new_trigger(self) -> str:
        trigger = f"{next(self._hooks)}.{uuid.uuid4().hex[:12]}"
        self._triggers.add(trigger)
        return trigger

    def slash_command(
        self, command: str, text: str = "", *, user: str, channel: str = "C0GENERAL", hook: str | None = None
    ) -> dict[str, str]:
        """The form fields Slack sends for a slash command (over HTTP, or as a Socket Mode payload)."""
        if user not in self.users:
            self.add_user(user)
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user,
            "user_name": self.users[user].name,
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.response_url(hook or self.new_hook()),
            "trigger_id": self.new_trigger(),
        }

    def click(self, channel: str, ts: str, action_id: str, *, user: str, hook: str | None = None) -> dict[str, Any]:
        """A block_actions payload for pressing the button `action_id` on a stored message.

        The button must be on the message as it now stands: a test cannot press a button
        the app did not render (or has since removed).
        """
        stored = self.messages.get((channel, ts))
        assert stored is not None, f"no message {channel}/{ts}"
        message = {"type": "message", "user": stored.user, "ts": ts, "text": stored.text, "blocks": stored.blocks}
        if stored.user == BOT_USER_ID:
            message["bot_id"] = BOT_ID
        container = {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False}
        return self._block_actions(stored.blocks, action_id, user, channel, container, message, hook)

    def shortcut_on(
        self, channel: str, ts: str, callback_id: str, *, user: str, hook: str | None = None
    ) -> dict[str, Any]:
        """A message shortcut (type message_action) chosen on a stored message, as Slack sends it."""
        stored = self.messages.get((channel, ts))
        assert stored is not None, f"no message {channel}/{ts}"
        if user not in self.users:
            self.add_user(user)
        message: dict[str, Any] = {"type": "message", "user": stored.user, "ts": ts, "text": stored.text}
        if stored.user == BOT_USER_ID:
            message["bot_id"] = BOT_ID
        if stored.thread_ts:
            message["thread_ts"] = stored.thread_ts
        return {
            "type": "message_action",
            "token": "legacy-verification-token",
            "callback_id": callback_id,
            "trigger_id": self.new_trigger(),
            "action_ts": self.next_ts(),
            "message_ts": ts,
            "response_url": self.response_url(hook or self.new_hook()),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": {"id": user, "username": self.users[user].name, "name": self.users[user].name, "team_id": TEAM_ID},
            "channel": {"id": channel, "name": "general"},
            "message": message,
            "api_app_id": APP_ID,
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def click_in_response(self, hook: str, action_id: str, *, user: str, index: int = -1) -> dict[str, Any]:
        """Pressing a button on an ephemeral message the app posted to a response_url."""
        posted = self.responses[hook][index]
        container = {"type": "message", "message_ts": posted["ts"], "channel_id": "C0GENERAL", "is_ephemeral": True}
        return self._block_actions(posted.get("blocks") or [], action_id, user, "C0GENERAL", container, None, None)

    def _block_actions(
        self,
        blocks: list[dict[str, Any]],
        action_id: str,
        user: str,
        channel: str,
        container: dict[str, Any],
        message: dict[str, Any] | None,
        hook: str | None,
    ) -> dict[str, Any]:
        found = [
            (block, element)
            for block in blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("action_id") == action_id
        ]
        assert found, f"no button {action_id!r} on the message: {[b.get('type') for b in blocks]}"
        block, button = found[0]
        if user not in self.users:
            self.add_user(user)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "token": "legacy-verification-token",
            "api_app_id": APP_ID,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "user": {"id": user, "username": self.users[user].name, "name": self.users[user].name, "team_id": TEAM_ID},
            "trigger_id": self.new_trigger(),
            "container": container,
            "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else "mods"},
            "state": {"values": {}},
            "response_url": self.response_url(hook or self.new_hook()),
            "actions": [
                {
                    "type": button.get("type", "button"),
                    "action_id": action_id,
                    "block_id": block.get("block_id", "b"),
                    "value": button.get("value", ""),
                    "text": button.get("text"),
                    "action_ts": self.next_ts(),
                }
            ],
        }
        if message is not None:
            payload["message"] = message
        return payload

    def submit_view(self, view_id: str, values: dict[str, Any] | None = None, *, user: str) -> dict[str, Any]:
        """The view_submission payload for submitting an opened modal.

        `values` maps an input's block_id to what the person chose: a string for a text
        input, a single select or radio buttons; a list for multi-selects and checkboxes
        (option values, user or conversation ids). Inputs not named keep their initial
        value, as in Slack; a required input left empty fails the test (Slack would not
        submit the form).
        """
        view = self.views.get(view_id)
        assert view is not None, f"no view {view_id}"
        values = dict(values or {})
        state: dict[str, dict[str, Any]] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                continue
            element = block["element"]
            block_id = block["block_id"]
            chosen = values.pop(block_id, _INITIAL)
            entry = _element_state(element, chosen)
            if not block.get("optional") and _empty(entry):
                raise AssertionError(f"required input {block_id!r} is empty: Slack would not submit")
            state[block_id] = {element["action_id"]: entry}
        assert not values, f"no inputs {sorted(values)} in view {view.get('callback_id')}"
        if user not in self.users:
            self.add_user(user)
        return {
            "type": "view_submission",
            "token": "legacy-verification-token",
            "api_app_id": APP_ID,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "user": {"id": user, "username": self.users[user].name, "name": self.users[user].name, "team_id": TEAM_ID},
            "trigger_id": self.new_trigger(),
            "response_urls": [],
            "view": {**view, "state": {"values": state}},
        }

    def last_view(self, callback_id: str | None = None) -> dict[str, Any]:
        opened = [v for v in self.views.values() if callback_id is None or v.get("callback_id") == callback_id]
        assert opened, f"no view {callback_id or ''} was opened"
        return opened[-1]


_INITIAL = object()


def _option(element: dict[str, Any], value: str) -> dict[str, Any]:
    options = element.get("options") or [o for g in element.get("option_groups", []) for o in g["options"]]
    found = next((o for o in options if o["value"] == value), None)
    assert found is not None, f"no option {value!r} in {element.get('action_id')}"
    return dict(found)


def _element_state(element: dict[str, Any], chosen: Any) -> dict[str, Any]:
    """What Slack puts in view.state.values for one input element."""
    kind = element["type"]
    initial = chosen is _INITIAL
    if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input"):
        return {"type": kind, "value": element.get("initial_value") if initial else chosen}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": element.get("initial_conversation") if initial else chosen}
    if kind == "multi_conversations_select":
        return {
            "type": kind,
            "selected_conversations": list(element.get("initial_conversations", []) if initial else chosen),
        }
    if kind == "channels_select":
        return {"type": kind, "selected_channel": element.get("initial_channel") if initial else chosen}
    if kind == "users_select":
        return {"type": kind, "selected_user": element.get("initial_user") if initial else chosen}
    if kind == "multi_users_select":
        return {"type": kind, "selected_users": list(element.get("initial_users", []) if initial else chosen)}
    if kind in ("static_select", "radio_buttons"):
        if initial:
            return {"type": kind, "selected_option": element.get("initial_option")}
        return {"type": kind, "selected_option": _option(element, chosen) if chosen is not None else None}
    if kind in ("multi_static_select", "checkboxes"):
        if initial:
            return {"type": kind, "selected_options": list(element.get("initial_options", []))}
        return {"type": kind, "selected_options": [_option(element, v) for v in chosen]}
    raise AssertionError(f"the fake does not know input element {kind!r}")


def _empty(entry: dict[str, Any]) -> bool:
    value = next((v for k, v in entry.items() if k != "type"), None)
    return value is None or value == "" or value == []


def modal_problems(view: dict[str, Any]) -> list[str]:
    """What Slack would refuse in a modal besides its blocks' own limits: title, buttons, metadata, inputs."""
    problems: list[str] = []
    if view.get("type") not in ("modal", "home"):
        problems.append("a view is a modal or a home tab")
    for key, most in (("title", MAX_MODAL_TITLE), ("submit", MAX_MODAL_BUTTON), ("close", MAX_MODAL_BUTTON)):
        text = (view.get(key) or {}).get("text", "")
        if key == "title" and not text:
            problems.append("a modal needs a title")
        if len(text) > most:
            problems.append(f"{key} is {len(text)} characters, more than {most}")
    inputs = [b for b in view.get("blocks", []) if b.get("type") == "input"]
    if inputs and view.get("type") == "modal" and not view.get("submit"):
        problems.append("a modal with inputs needs a submit button")
    if len(str(view.get("private_metadata", ""))) > MAX_PRIVATE_METADATA:
        problems.append("private_metadata is too long")
    if len(str(view.get("callback_id", ""))) > MAX_ACTION_ID:
        problems.append("callback_id is too long")
    block_ids = [b.get("block_id") for b in inputs]
    if len(set(block_ids)) != len(block_ids) or None in block_ids:
        problems.append("every input needs its own block_id")
    for block in inputs:
        where = f"input {block.get('block_id')}"
        label = (block.get("label") or {}).get("text", "")
        if not label or len(label) > MAX_INPUT_LABEL:
            problems.append(f"{where}: label missing or longer than {MAX_INPUT_LABEL}")
        element = block.get("element") or {}
        kind = element.get("type")
        if not element.get("action_id") or len(element["action_id"]) > MAX_ACTION_ID:
            problems.append(f"{where}: action_id missing or too long")
        if kind == "plain_text_input":
            most = element.get("max_length", MAX_TEXT_INPUT)
            if most > MAX_TEXT_INPUT:
                problems.append(f"{where}: max_length {most} is more than {MAX_TEXT_INPUT}")
            if len(element.get("initial_value", "")) > min(most, MAX_TEXT_INPUT):
                problems.append(f"{where}: initial_value longer than its max_length")
        if kind in ("static_select", "multi_static_select", "checkboxes", "radio_buttons"):
            options = element.get("options", [])
            most = MAX_STATIC_OPTIONS if "select" in kind else MAX_CHOICE_OPTIONS
            if not options or len(options) > most:
                problems.append(f"{where}: {len(options)} options (1 to {most})")
            for option in options:
                if len(option.get("text", {}).get("text", "")) > MAX_OPTION_TEXT:
                    problems.append(f"{where}: an option's text is longer than {MAX_OPTION_TEXT}")
                if len(option.get("value", "")) > MAX_OPTION_VALUE:
                    problems.append(f"{where}: an option's value is longer than {MAX_OPTION_VALUE}")
            initial = element.get("initial_options", []) + (
                [element["initial_option"]] if "initial_option" in element else []
            )
            if any(o not in options for o in initial):
                problems.append(f"{where}: an initial option is not one of its options")
    return problems


def event_callback(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The Events API envelope around one event, as it reaches the app's request URL."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event": event,
    }


def block_kit_problems(blocks: list[dict[str, Any]], most: int = MAX_BLOCKS_MESSAGE) -> list[str]:
    """What Slack would refuse in these blocks (limits of the blocks the adapter uses)."""
    problems: list[str] = []
    if len(blocks) > most:
        problems.append(f"{len(blocks)} blocks, more than {most}")

    def text_of(obj: Any, where: str, limit: int) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in ("mrkdwn", "plain_text"):
            problems.append(f"{where}: not a text object")
            return
        text = obj.get("text", "")
        if not text:
            problems.append(f"{where}: empty text")
        if len(text) > limit:
            problems.append(f"{where}: {len(text)} characters, more than {limit}")

    for i, block in enumerate(blocks):
        kind = block.get("type")
        where = f"blocks[{i}] ({kind})"
        if len(str(block.get("block_id", ""))) > MAX_ACTION_ID:
            problems.append(f"{where}: block_id too long")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: neither text nor fields")
            if "text" in block:
                text_of(block["text"], where, MAX_SECTION_TEXT)
            fields = block.get("fields", [])
            if len(fields) > MAX_FIELDS:
                problems.append(f"{where}: {len(fields)} fields, more than {MAX_FIELDS}")
            for j, f in enumerate(fields):
                text_of(f, f"{where} field {j}", MAX_FIELD_TEXT)
        elif kind == "header":
            text_of(block.get("text"), where, MAX_HEADER_TEXT)
            if block.get("text", {}).get("type") != "plain_text":
                problems.append(f"{where}: a header takes plain_text")
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}: {len(elements)} elements")
            for j, e in enumerate(elements):
                text_of(e, f"{where} element {j}", MAX_SECTION_TEXT)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > MAX_ACTIONS_ELEMENTS:
                problems.append(f"{where}: {len(elements)} elements")
            action_ids = [e.get("action_id") for e in elements]
            if len(set(action_ids)) != len(action_ids):
                problems.append(f"{where}: action_ids repeat")
            for j, e in enumerate(elements):
                text_of(e.get("text"), f"{where} button {j}", MAX_BUTTON_TEXT)
                if len(str(e.get("action_id", ""))) > MAX_ACTION_ID:
                    problems.append(f"{where} button {j}: action_id too long")
                if len(str(e.get("value", ""))) > MAX_BUTTON_VALUE:
                    problems.append(f"{where} button {j}: value too long")
        elif kind in ("divider", "input", "rich_text", "image"):
            pass
        else:
            problems.append(f"{where}: unknown block type")
    return problems


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra


def _json(payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly application/json, as Slack sends it.
    return web.Response(
        body=json.dumps(payload).encode(), status=status, content_type="application/json", headers=headers
    )
