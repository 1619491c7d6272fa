"""A local Discord on loopback: REST v10 and a JSON gateway that the real discord.py talks to.

The world (users, guilds, roles, channels, threads, forum posts, members, messages, DM
channels) lives here, so REST answers and gateway events agree the way Discord's do:
- deleting a message that is not there answers 404 code 10008; deleting someone else's
  message without Manage Messages, or timing out without Moderate Members, answers 403
  code 50013; a DM to a member whose DMs are closed answers 403 code 50007;
- a message over Discord's limits (2,000 characters, embeds of 4,096 / 1,024 / 25 fields /
  6,000 in all) answers 400 code 50035, so a renderer that overflows fails its test;
- every message the bot posts comes back over the gateway as MESSAGE_CREATE, as on Discord,
  and what it would ping (given `allowed_mentions`) is worked out and kept on the message;
- the gateway speaks HELLO, IDENTIFY, READY (with `shard` when sharded), GUILD_CREATE,
  member chunks, heartbeats, RECONNECT and RESUME: a resumed session gets the events it
  missed, and `redeliver_on_resume` replays some it already had (at-least-once delivery).

Every REST request is recorded (tests.fakes.recorder); `rec.inject` answers the next
matching request with a fault instead. Paths in the recorder have no `/api/v10` prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.recorder import Recorded, Recorder, recording_middleware, start_on_loopback

API_PREFIX = "/api/v10"

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
SEND_MESSAGES_IN_THREADS = 1 << 38
MODERATE_MEMBERS = 1 << 40
ALL_PERMISSIONS = (1 << 53) - 1
MEMBER_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | SEND_MESSAGES_IN_THREADS | EMBED_LINKS

# Gateway intents the fake honours.
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

# Channel types.
TEXT = 0
DM = 1
PUBLIC_THREAD = 11
FORUM = 15
THREAD_TYPES = (10, 11, 12)

EPHEMERAL = 1 << 6

# Discord's message limits (https://discord.com/developers/docs/resources/message#create-message).
CONTENT_LIMIT = 2000
EMBED_TOTAL_LIMIT = 6000
_EMBED_LIMITS = {"title": 256, "description": 4096, "footer.text": 2048, "author.name": 256}
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELDS_LIMIT = 25

_MENTION = re.compile(r"<@(!?|&)(\d+)>|@(everyone|here)")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def discord_json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """discord.py decodes JSON only when Content-Type is exactly application/json (no charset)."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )


def error(status: int, code: int, message: str) -> web.Response:
    return discord_json({"message": message, "code": code}, status)


def forbidden_missing_permissions() -> web.Response:
    return error(403, 50013, "Missing Permissions")


def unknown_message() -> web.Response:
    return error(404, 10008, "Unknown Message")


def server_error(status: int = 500) -> web.Response:
    return error(status, 0, f"{status}: Internal Server Error")


def rate_limited(retry_after: float, *, is_global: bool = False) -> Callable[[], web.Response]:
    """A 429 as Discord sends it: discord.py waits and retries only with a `Via` header."""

    def make() -> web.Response:
        return discord_json(
            {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global},
            429,
            headers={"Via": "1.1 google", "Retry-After": str(retry_after)},
        )

    return make


# ---------------------------------------------------------------- the world


@dataclass
class FakeUser:
    id: str
    name: str
    bot: bool = False
    dms_open: bool = True

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "bot": self.bot,
        }

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class FakeRole:
    id: str
    name: str
    permissions: int = 0
    position: int = 0
    mentionable: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": self.mentionable,
            "flags": 0,
        }


@dataclass
class FakeChannel:
    id: str
    name: str
    type: int = TEXT
    guild_id: str | None = None
    parent_id: str | None = None
    owner_id: str | None = None  # threads
    recipient: FakeUser | None = None  # DM channels
    # Permission overwrites by role or member id: (type 0 role / 1 member, allow, deny).
    overwrites: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        if self.type == DM:
            assert self.recipient is not None
            return {"id": self.id, "type": DM, "last_message_id": None, "recipients": [self.recipient.payload()]}
        data: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "guild_id": self.guild_id,
            "position": 0,
            "permission_overwrites": [
                {"id": target, "type": kind, "allow": str(allow), "deny": str(deny)}
                for target, (kind, allow, deny) in self.overwrites.items()
            ],
            "parent_id": self.parent_id,
        }
        if self.type == FORUM:
            data.update(available_tags=[], default_forum_layout=0, flags=0, topic=None)
        if self.type in THREAD_TYPES:
            data.update(
                owner_id=self.owner_id,
                member_count=1,
                message_count=0,
                rate_limit_per_user=0,
                flags=0,
                applied_tags=[],
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "locked": False,
                    "archive_timestamp": now_iso(),
                },
            )
        return data


@dataclass
class FakeMember:
    user: FakeUser
    roles: list[str] = field(default_factory=list)
    communication_disabled_until: str | None = None

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": list(self.roles),
            "joined_at": now_iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "communication_disabled_until": self.communication_disabled_until,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class FakeGuild:
    id: str
    name: str
    owner_id: str
    roles: dict[str, FakeRole] = field(default_factory=dict)
    channels: dict[str, FakeChannel] = field(default_factory=dict)
    members: dict[str, FakeMember] = field(default_factory=dict)

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]  # the @everyone role's id is the guild's id

    def permissions_of(self, user_id: str) -> int:
        """Guild-level permissions (channel overwrites are not modelled)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members.get(user_id)
        if member is None:
            return 0
        bits = self.everyone.permissions
        for role_id in member.roles:
            role = self.roles.get(role_id)
            bits |= role.permissions if role else 0
        return ALL_PERMISSIONS if bits & ADMINISTRATOR else bits

    def permissions_in(self, channel: FakeChannel, user_id: str) -> int:
        """Permissions in a channel, by Discord's order: the guild's, then @everyone's overwrite, the
        roles' overwrites (denies, then allows), the member's own. A thread takes its parent's."""
        base = self.permissions_of(user_id)
        if base & ADMINISTRATOR or user_id == self.owner_id:
            return ALL_PERMISSIONS
        if channel.type in THREAD_TYPES and channel.parent_id in self.channels:
            channel = self.channels[channel.parent_id]
        overwrites = channel.overwrites
        member = self.members.get(user_id)
        if self.id in overwrites:
            _, allow, deny = overwrites[self.id]
            base = (base & ~deny) | allow
        role_allow = role_deny = 0
        for role_id in member.roles if member else ():
            if role_id in overwrites:
                role_allow |= overwrites[role_id][1]
                role_deny |= overwrites[role_id][2]
        base = (base & ~role_deny) | role_allow
        if user_id in overwrites:
            _, allow, deny = overwrites[user_id]
            base = (base & ~deny) | allow
        return base

    def payload(self, hidden: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        threads = [c.payload() for c in self.channels.values() if c.type in THREAD_TYPES and c.id not in hidden]
        return {
            "id": self.id,
            "name": self.name,
            "icon": None,
            "owner_id": self.owner_id,
            "member_count": len(self.members),
            "large": False,
            "unavailable": False,
            "features": [],
            "roles": [r.payload() for r in self.roles.values()],
            "channels": [c.payload() for c in self.channels.values() if c.type not in THREAD_TYPES],
            "threads": threads,
            "members": [m.payload() for m in self.members.values()],
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "joined_at": now_iso(),
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
        }


def pings_of(content: str, allowed_mentions: dict[str, Any] | None, guild: FakeGuild | None) -> set[str]:
    """Who a message's content would notify, by Discord's rules for `allowed_mentions`.

    Returns user ids, "role:<id>" and "everyone"/"here". Without `allowed_mentions`
    Discord parses every mention in the content. Embeds never ping.
    """
    parse = {"users", "roles", "everyone"} if allowed_mentions is None else set(allowed_mentions.get("parse", []))
    users = set(map(str, (allowed_mentions or {}).get("users", [])))
    roles = set(map(str, (allowed_mentions or {}).get("roles", [])))
    pinged: set[str] = set()
    for match in _MENTION.finditer(content):
        kind, ident, everyone = match.groups()
        if everyone:
            if "everyone" in parse:
                pinged.add(everyone)
        elif kind == "&":
            role = guild.roles.get(ident) if guild else None
            if ("roles" in parse or ident in roles) and role is not None and role.mentionable:
                pinged.add(f"role:{ident}")
        elif "users" in parse or ident in users:
            pinged.add(ident)
    return pinged


def limit_problems(body: dict[str, Any]) -> list[str]:
    """What Discord would refuse (400, code 50035) in a message body."""
    problems: list[str] = []
    content = body.get("content") or ""
    if len(content) > CONTENT_LIMIT:
        problems.append(f"content: {len(content)} > {CONTENT_LIMIT}")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        problems.append("embeds: more than 10")
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in _EMBED_LIMITS.items():
            outer, _, inner = key.partition(".")
            value = (embed.get(outer) or {}).get(inner, "") if inner else embed.get(outer, "")
            value = value or ""
            total += len(value)
            if len(value) > limit:
                problems.append(f"embeds[{i}].{key}: {len(value)} > {limit}")
        fields = embed.get("fields") or []
        if len(fields) > FIELDS_LIMIT:
            problems.append(f"embeds[{i}].fields: {len(fields)} > {FIELDS_LIMIT}")
        for j, f in enumerate(fields):
            name, value = f.get("name") or "", f.get("value") or ""
            if not name or not value:
                problems.append(f"embeds[{i}].fields[{j}]: empty name or value")
            if len(name) > FIELD_NAME_LIMIT:
                problems.append(f"embeds[{i}].fields[{j}].name: {len(name)} > {FIELD_NAME_LIMIT}")
            if len(value) > FIELD_VALUE_LIMIT:
                problems.append(f"embeds[{i}].fields[{j}].value: {len(value)} > {FIELD_VALUE_LIMIT}")
            total += len(name) + len(value)
    if total > EMBED_TOTAL_LIMIT:
        problems.append(f"embeds: {total} characters in all > {EMBED_TOTAL_LIMIT}")
    rows = body.get("components") or []
    if len(rows) > 5:
        problems.append("components: more than 5 rows")
    for row in rows:
        buttons = row.get("components") or []
        if len(buttons) > 5:
            problems.append("components: more than 5 in a row")
        for b in buttons:
            if len(b.get("custom_id") or "") > 100 or len(b.get("label") or "") > 80:
                problems.append(f"component {b.get('custom_id')!r}: custom_id > 100 or label > 80")
    return problems


# ---------------------------------------------------------------- gateway sessions


@dataclass
class GatewaySession:
    """One identified session (one per shard), kept across disconnections so it can be resumed."""

    session_id: str
    shard: tuple[int, int] | None
    intents: int
    seq: int = 0
    # Every dispatched frame, in order: a RESUME replays those after the client's sequence.
    log: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    resumes: int = 0
    redeliver: int = 0  # on the next RESUME, also replay this many frames the client had

    @property
    def shard_id(self) -> int:
        return self.shard[0] if self.shard else 0


class FakeDiscord:
    """A Discord server process on 127.0.0.1, with one guild set up the way the tests need.

    The default world: the bot (`bot_user`, application id == bot user id, as on Discord),
    a guild (`guild`) with roles @everyone, `bot_role` (the permissions the README asks for),
    `mod_role`; text channels `general` and `mod_log`, a forum `forum`; members `alice`
    and `bob` (plain members) and `mo` (a moderator).
    """

    TOKEN = "fake-token"

    def __init__(self, *, recommended_shards: int = 1) -> None:
        self.rec = Recorder()
        self.recommended_shards = recommended_shards
        self._ids = itertools.count(200_000_000_000_000_000)
        self._guild_seq = itertools.count(1)
        self.users: dict[str, FakeUser] = {}
        self.guilds: dict[str, FakeGuild] = {}
        self.channels: dict[str, FakeChannel] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.interactions: dict[str, dict[str, Any]] = {}  # by token
        self.sessions: dict[str, GatewaySession] = {}
        self.gateway_frames_in: list[dict[str, Any]] = []
        self.unhandled: list[str] = []  # REST routes the fake does not serve
        self.hidden_threads: set[str] = set()  # left out of GUILD_CREATE: made while the bot was away
        self.uploads: dict[str, bytes] = {}  # files members attached, by attachment id
        self._state_changed = asyncio.Condition()
        self.base = ""
        self.api_base = ""
        self.ws_url = ""

        self.bot_user = self.add_user("modbot", bot=True)
        self.app_id = self.bot_user.id
        self.alice = self.add_user("alice")
        self.bob = self.add_user("bob")
        self.mo = self.add_user("mo")
        self.guild = self.add_guild("Test Guild", owner=self.add_user("owner"))
        self.bot_role = self.add_role(
            self.guild,
            "modbot",
            VIEW_CHANNEL
            | SEND_MESSAGES
            | SEND_MESSAGES_IN_THREADS
            | EMBED_LINKS
            | READ_MESSAGE_HISTORY
            | MANAGE_MESSAGES
            | MODERATE_MEMBERS,
            position=2,
        )
        self.mod_role = self.add_role(self.guild, "Moderators", MODERATE_MEMBERS | MANAGE_MESSAGES, position=1)
        self.general = self.add_channel(self.guild, "general")
        self.mod_log = self.add_channel(self.guild, "mod-log")
        self.forum = self.add_channel(self.guild, "help", type=FORUM)
        self.add_member(self.guild, self.bot_user, roles=[self.bot_role.id])
        self.add_member(self.guild, self.alice)
        self.add_member(self.guild, self.bob)
        self.add_member(self.guild, self.mo, roles=[self.mod_role.id])

        app = web.Application(middlewares=[recording_middleware(self.rec, API_PREFIX)])
        route = app.router
        api = API_PREFIX
        route.add_get("/gateway", self._gateway)
        route.add_get(f"{api}/gateway/bot", self._gateway_bot)
        route.add_get(f"{api}/users/@me", self._me)
        route.add_get(f"{api}/oauth2/applications/@me", self._application)
        route.add_get(f"{api}/users/{{uid}}", self._get_user)
        route.add_post(f"{api}/users/@me/channels", self._open_dm)
        route.add_get(f"{api}/channels/{{cid}}", self._get_channel)
        route.add_post(f"{api}/channels/{{cid}}/messages", self._create_message)
        route.add_get(f"{api}/channels/{{cid}}/messages/{{mid}}", self._get_message)
        route.add_patch(f"{api}/channels/{{cid}}/messages/{{mid}}", self._edit_message)
        route.add_delete(f"{api}/channels/{{cid}}/messages/{{mid}}", self._delete_message)
        route.add_get(f"{api}/guilds/{{gid}}/members/{{uid}}", self._get_member)
        route.add_patch(f"{api}/guilds/{{gid}}/members/{{uid}}", self._edit_member)
        route.add_put(f"{api}/applications/{{app}}/commands", self._put_commands)
        route.add_get(f"{api}/applications/{{app}}/commands", self._get_commands)
        route.add_put(f"{api}/applications/{{app}}/guilds/{{gid}}/commands", self._put_commands)
        route.add_get(f"{api}/applications/{{app}}/guilds/{{gid}}/commands", self._get_commands)
        route.add_post(f"{api}/interactions/{{iid}}/{{token}}/callback", self._interaction_callback)
        route.add_post(f"{api}/webhooks/{{app}}/{{token}}", self._followup)
        route.add_get(f"{api}/webhooks/{{app}}/{{token}}/messages/{{mid}}", self._get_webhook_message)
        route.add_patch(f"{api}/webhooks/{{app}}/{{token}}/messages/{{mid}}", self._edit_webhook_message)
        route.add_delete(f"{api}/webhooks/{{app}}/{{token}}/messages/{{mid}}", self._delete_webhook_message)
        route.add_get("/attachments/{aid}/{filename}", self._attachment)
        route.add_route("*", f"{api}/{{tail:.*}}", self._unhandled)
        self._runner = web.AppRunner(app, access_log=None)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> FakeDiscord:
        port = await start_on_loopback(self._runner)
        self.base = f"http://127.0.0.1:{port}"
        self.api_base = self.base + API_PREFIX
        self.ws_url = f"ws://127.0.0.1:{port}/gateway"
        return self

    async def stop(self) -> None:
        for session in self.sessions.values():
            if session.ws is not None and not session.ws.closed:
                await session.ws.close()
        await self._runner.cleanup()

    def env(self) -> dict[str, str]:
        """The environment that points the adapter at this Discord."""
        return {
            "DISCORD_TOKEN": self.TOKEN,
            "MODBOT_DISCORD_API_BASE": self.api_base,
            "MODBOT_DISCORD_GATEWAY_URL": self.ws_url,
        }

    # ------------------------------------------------------------ building the world

    def snowflake(self) -> str:
        return str(next(self._ids))

    def add_user(self, name: str, *, bot: bool = False) -> FakeUser:
        user = FakeUser(self.snowflake(), name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, *, owner: FakeUser) -> FakeGuild:
        # A guild's shard is (id >> 22) % shard_count: consecutive guilds land on different shards.
        guild = FakeGuild(str(next(self._guild_seq) << 22 | 1), name, owner.id)
        guild.roles[guild.id] = FakeRole(guild.id, "@everyone", MEMBER_PERMISSIONS)
        guild.members[owner.id] = FakeMember(owner)
        self.guilds[guild.id] = guild
        return guild

    def add_role(
        self, guild: FakeGuild, name: str, permissions: int = 0, *, position: int = 1, mentionable: bool = True
    ) -> FakeRole:
        role = FakeRole(self.snowflake(), name, permissions, position, mentionable)
        guild.roles[role.id] = role
        return role

    def add_channel(self, guild: FakeGuild, name: str, *, type: int = TEXT) -> FakeChannel:
        channel = FakeChannel(self.snowflake(), name, type, guild.id)
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def add_member(self, guild: FakeGuild, user: FakeUser, *, roles: list[str] | None = None) -> FakeMember:
        member = FakeMember(user, list(roles or []))
        guild.members[user.id] = member
        return member

    def member_permissions(self, guild: FakeGuild, user: FakeUser) -> int:
        return guild.permissions_of(user.id)

    async def set_role_permissions(self, role: FakeRole, permissions: int) -> None:
        """Change a role's permissions and tell the bot, as an admin editing roles would."""
        role.permissions = permissions
        guild = next(g for g in self.guilds.values() if role.id in g.roles)
        await self.dispatch("GUILD_ROLE_UPDATE", {"guild_id": guild.id, "role": role.payload()}, guild_id=guild.id)

    async def set_overwrite(
        self, channel: FakeChannel, target: FakeRole | FakeUser, *, allow: int = 0, deny: int = 0
    ) -> None:
        """Change a channel's permissions for a role or a member, and tell the bot (CHANNEL_UPDATE)."""
        kind = 0 if isinstance(target, FakeRole) else 1
        channel.overwrites[target.id] = (kind, allow, deny)
        await self.dispatch("CHANNEL_UPDATE", channel.payload(), guild_id=channel.guild_id)

    async def create_thread(
        self, parent: FakeChannel, name: str, *, owner: FakeUser | None = None, announce: bool = True
    ) -> FakeChannel:
        """A public thread under a text channel, announced with THREAD_CREATE (unless `announce` is
        False: a thread made while the bot was away, which its cache does not know)."""
        assert parent.guild_id is not None
        guild = self.guilds[parent.guild_id]
        thread = FakeChannel(self.snowflake(), name, PUBLIC_THREAD, guild.id, parent.id, (owner or self.alice).id)
        guild.channels[thread.id] = thread
        self.channels[thread.id] = thread
        if announce:
            await self.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True}, guild_id=guild.id)
        else:
            self.hidden_threads.add(thread.id)
        return thread

    async def create_forum_post(
        self, forum: FakeChannel, title: str, content: str, *, author: FakeUser
    ) -> dict[str, Any]:
        """A forum post: a thread in the forum whose first message has the thread's id."""
        thread = await self.create_thread(forum, title, owner=author)
        return await self.post_message(thread, author, content, message_id=thread.id)

    # ------------------------------------------------------------ what members do

    def message_payload(
        self,
        channel: FakeChannel,
        author: FakeUser,
        content: str,
        *,
        message_id: str | None = None,
        attachments: list[tuple[str, str]] = (),  # type: ignore[assignment]
        webhook_id: str | None = None,
        message_type: int = 0,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": message_id or self.snowflake(),
            "channel_id": channel.id,
            "author": author.payload(),
            "content": content,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": self.snowflake(),
                    "filename": name,
                    "content_type": ctype,
                    "size": 1024,
                    "url": f"{self.base}/attachments/{name}",
                    "proxy_url": f"{self.base}/attachments/{name}",
                }
                for name, ctype in attachments
            ],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": message_type,
            "flags": 0,
        }
        if webhook_id is not None:
            data["webhook_id"] = webhook_id
        if reply_to is not None:
            data["message_reference"] = {"message_id": reply_to, "channel_id": channel.id}
        if channel.guild_id is not None:
            data["guild_id"] = channel.guild_id
            member = self.guilds[channel.guild_id].members.get(author.id)
            if member is not None and webhook_id is None:
                data["member"] = member.payload(with_user=False)
        return data

    async def post_message(self, channel: FakeChannel, author: FakeUser, content: str, **kw: Any) -> dict[str, Any]:
        """A member (or a webhook) posts in a channel: stored, and dispatched as MESSAGE_CREATE."""
        data = self.message_payload(channel, author, content, **kw)
        self.messages[data["id"]] = data
        await self.dispatch("MESSAGE_CREATE", data, guild_id=channel.guild_id)
        return data

    async def edit_message_as_author(self, message: dict[str, Any], content: str) -> dict[str, Any]:
        """The author edits their message: MESSAGE_UPDATE with the whole message, as API v10 sends it."""
        edited = {**message, "content": content, "edited_timestamp": now_iso()}
        self.messages[edited["id"]] = edited
        await self.dispatch("MESSAGE_UPDATE", edited, guild_id=edited.get("guild_id"))
        return edited

    async def unfurl_embeds(self, message: dict[str, Any]) -> dict[str, Any]:
        """Discord adds a link preview: MESSAGE_UPDATE without a new edited_timestamp."""
        updated = {**message, "embeds": [{"type": "link", "url": "https://example.org", "title": "Example"}]}
        self.messages[updated["id"]] = updated
        await self.dispatch("MESSAGE_UPDATE", updated, guild_id=updated.get("guild_id"))
        return updated

    async def redispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an event again with a new sequence number: Discord delivers at least once."""
        await self.dispatch(event, data, guild_id=data.get("guild_id"))

    # ------------------------------------------------------------ interactions

    def _interaction(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user: FakeUser,
        channel: FakeChannel,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        iid = self.snowflake()
        payload: dict[str, Any] = {
            "id": iid,
            "application_id": self.app_id,
            "type": itype,
            "token": f"itok-{iid}",
            "version": 1,
            "channel_id": channel.id,
            "channel": channel.payload(),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 26214400,
            "data": data,
        }
        if channel.guild_id is not None:
            guild = self.guilds[channel.guild_id]
            member = guild.members[user.id]
            payload.update(
                guild_id=guild.id,
                guild_locale="en-US",
                context=0,
                authorizing_integration_owners={"0": guild.id},
                member={**member.payload(), "permissions": str(guild.permissions_in(channel, user.id))},
                app_permissions=str(guild.permissions_in(channel, self.bot_user.id)),
            )
        else:
            payload.update(
                user=user.payload(), context=1, authorizing_integration_owners={"0": self.guild.id}, app_permissions="0"
            )
        if message is not None:
            # Real Discord always sends `components` (maybe []); discord.py's DynamicItem
            # dispatch rebuilds the view from them and drops a click on a button not there.
            payload["message"] = {"components": [], **message}
        self.interactions[payload["token"]] = {
            "interaction": payload,
            "original_message_id": message["id"] if message is not None else None,
            "callbacks": [],
        }
        return payload

    async def click(self, message: dict[str, Any], custom_id: str, *, user: FakeUser) -> dict[str, Any]:
        """A member clicks a button of a message the bot posted (the message as stored now)."""
        current = self.messages.get(message["id"], message)
        channel = self.channels[current["channel_id"]]
        payload = self._interaction(
            3, {"custom_id": custom_id, "component_type": 2}, user=user, channel=channel, message=current
        )
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return payload

    async def submit_modal(
        self, custom_id: str, values: dict[str, str], *, user: FakeUser, channel: FakeChannel
    ) -> dict[str, Any]:
        rows = [
            {"type": 1, "id": i + 1, "components": [{"type": 4, "id": i + 100, "custom_id": key, "value": value}]}
            for i, (key, value) in enumerate(values.items())
        ]
        payload = self._interaction(5, {"custom_id": custom_id, "components": rows}, user=user, channel=channel)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return payload

    async def slash(
        self, name: str, *, user: FakeUser, channel: FakeChannel, options: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        data = {"id": self._command_id(name), "name": name, "type": 1, "options": options or []}
        payload = self._interaction(2, data, user=user, channel=channel)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return payload

    def upload(self, filename: str, data: bytes, content_type: str = "text/markdown") -> dict[str, Any]:
        """A file a member attaches to a command: served at its URL, as Discord's CDN serves it."""
        attachment_id = self.snowflake()
        self.uploads[attachment_id] = data
        url = f"{self.base}/attachments/{attachment_id}/{filename}"
        return {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    def command_options(
        self, path: str, values: dict[str, Any] | None = None
    ) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        """A command line ("policy set") and its values as Discord sends them: the name, the nested
        options (subcommand, then values) and the resolved objects (attachments)."""
        name, *subcommands = path.split()
        options: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        for key, value in (values or {}).items():
            if isinstance(value, dict) and "filename" in value:  # an upload()
                options.append({"name": key, "type": 11, "value": value["id"]})
                resolved.setdefault("attachments", {})[value["id"]] = value
            elif isinstance(value, bool):
                options.append({"name": key, "type": 5, "value": value})
            elif isinstance(value, int):
                options.append({"name": key, "type": 4, "value": value})
            else:
                options.append({"name": key, "type": 3, "value": value})
        for sub in reversed(subcommands):
            options = [{"name": sub, "type": 1, "options": options}]
        return name, options, resolved

    async def command(
        self, path: str, *, user: FakeUser, channel: FakeChannel | None = None, **values: Any
    ) -> dict[str, Any]:
        """A member runs a slash command, e.g. command("policy set", name="harassment", user=...)."""
        name, options, resolved = self.command_options(path, values)
        data: dict[str, Any] = {"id": self._command_id(name), "name": name, "type": 1, "options": options}
        if resolved:
            data["resolved"] = resolved
        payload = self._interaction(2, data, user=user, channel=channel or self.general)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=(channel or self.general).guild_id)
        return payload

    async def autocomplete(
        self, path: str, focused: str, *, user: FakeUser, channel: FakeChannel | None = None, **values: Any
    ) -> dict[str, Any]:
        """A member types in an option (`focused`) of a slash command: Discord asks for suggestions."""
        name, options, _ = self.command_options(path, values)
        innermost = options
        while innermost and innermost[0]["type"] == 1:
            innermost = innermost[0]["options"]
        for option in innermost:
            if option["name"] == focused:
                option["focused"] = True
        data = {"id": self._command_id(name), "name": name, "type": 1, "options": options}
        payload = self._interaction(4, data, user=user, channel=channel or self.general)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=(channel or self.general).guild_id)
        return payload

    async def select(
        self, message: dict[str, Any], custom_id: str, values: list[str], *, user: FakeUser
    ) -> dict[str, Any]:
        """A member picks values in a select menu of a message the bot posted (roles and channels resolved)."""
        current = self.messages.get(message["id"], message)
        channel = self.channels[current["channel_id"]]
        component = next(
            (
                c
                for row in current.get("components") or []
                for c in row.get("components") or []
                if c.get("custom_id") == custom_id
            ),
            None,
        )
        component_type = component["type"] if component else 3
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type, "values": values}
        guild = self._guild_of(channel)
        if guild is not None and component_type == 6:
            data["resolved"] = {"roles": {v: guild.roles[v].payload() for v in values if v in guild.roles}}
        elif guild is not None and component_type == 8:
            data["resolved"] = {
                "channels": {
                    v: {**self.channels[v].payload(), "permissions": str(ALL_PERMISSIONS)}
                    for v in values
                    if v in self.channels
                }
            }
        payload = self._interaction(3, data, user=user, channel=channel, message=current)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return payload

    def _command_id(self, name: str) -> str:
        for commands in self.commands.values():
            for command in commands:
                if command["name"] == name:
                    return str(command["id"])
        return self.snowflake()

    def dm_channel_of(self, user: FakeUser) -> FakeChannel | None:
        return next((c for c in self.channels.values() if c.type == DM and c.recipient is user), None)

    def messages_in(self, channel: FakeChannel | str) -> list[dict[str, Any]]:
        cid = channel if isinstance(channel, str) else channel.id
        return [m for m in self.messages.values() if m["channel_id"] == cid]

    async def wait_for_state(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until the world satisfies `predicate` (checked after every change the bot makes)."""
        async with self._state_changed:
            await asyncio.wait_for(self._state_changed.wait_for(predicate), timeout)
            return predicate()

    async def _changed(self) -> None:
        async with self._state_changed:
            self._state_changed.notify_all()

    # ------------------------------------------------------------ REST

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.TOKEN}"

    def _guild_of(self, channel: FakeChannel) -> FakeGuild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id else None

    async def _unhandled(self, request: web.Request) -> web.Response:
        self.unhandled.append(f"{request.method} {request.path}")
        return error(404, 0, "404: Not Found")

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return error(401, 0, "401: Unauthorized")
        return discord_json(self.bot_user.payload())

    async def _application(self, request: web.Request) -> web.Response:
        return discord_json(
            {
                "id": self.app_id,
                "name": "modbot",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.guild.members[self.guild.owner_id].user.payload(),
                "verify_key": "00",
                "flags": 0,
            }
        )

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return discord_json(
            {
                "url": self.ws_url,
                "shards": self.recommended_shards,
                "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
            }
        )

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["uid"])
        return discord_json(user.payload()) if user else error(404, 10013, "Unknown User")

    async def _open_dm(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.users.get(str(body.get("recipient_id")))
        if user is None:
            return error(400, 50035, "Invalid Form Body")
        channel = self.dm_channel_of(user)
        if channel is None:
            channel = FakeChannel(self.snowflake(), "", DM, recipient=user)
            self.channels[channel.id] = channel
        return discord_json(channel.payload())

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self.channels.get(request.match_info["cid"])
        return discord_json(channel.payload()) if channel else error(404, 10003, "Unknown Channel")

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self.channels.get(request.match_info["cid"])
        if channel is None:
            return error(404, 10003, "Unknown Channel")
        body = await request.json()
        problems = limit_problems(body)
        if problems:
            return discord_json({"message": "Invalid Form Body", "code": 50035, "errors": problems}, 400)
        guild = self._guild_of(channel)
        if channel.type == DM:
            assert channel.recipient is not None
            if not channel.recipient.dms_open:
                return error(403, 50007, "Cannot send messages to this user")
        elif guild is not None:
            needed = VIEW_CHANNEL | (SEND_MESSAGES_IN_THREADS if channel.type in THREAD_TYPES else SEND_MESSAGES)
            if guild.permissions_in(channel, self.bot_user.id) & needed != needed:
                return forbidden_missing_permissions()
        data = self.message_payload(channel, self.bot_user, body.get("content") or "")
        data.update(
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            allowed_mentions=body.get("allowed_mentions"),
            pings=sorted(pings_of(body.get("content") or "", body.get("allowed_mentions"), guild)),
        )
        self.messages[data["id"]] = data
        await self.dispatch("MESSAGE_CREATE", _public(data), guild_id=channel.guild_id)
        await self._changed()
        return discord_json(_public(data))

    async def _get_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(request.match_info["mid"])
        if message is None or message["channel_id"] != request.match_info["cid"]:
            return unknown_message()
        return discord_json(_public(message))

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(request.match_info["mid"])
        if message is None or message["channel_id"] != request.match_info["cid"]:
            return unknown_message()
        if message["author"]["id"] != self.bot_user.id:
            return error(403, 50005, "Cannot edit a message authored by another user")
        body = await request.json()
        edited = {**message, **{k: body[k] for k in ("content", "embeds", "components") if k in body}}
        problems = limit_problems(edited)
        if problems:
            return discord_json({"message": "Invalid Form Body", "code": 50035, "errors": problems}, 400)
        edited["edited_timestamp"] = now_iso()
        edited["edits"] = [*message.get("edits", []), body]
        self.messages[edited["id"]] = edited
        await self.dispatch("MESSAGE_UPDATE", _public(edited), guild_id=edited.get("guild_id"))
        await self._changed()
        return discord_json(_public(edited))

    async def _delete_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(request.match_info["mid"])
        if message is None or message["channel_id"] != request.match_info["cid"]:
            return unknown_message()
        channel = self.channels[message["channel_id"]]
        guild = self._guild_of(channel)
        own = message["author"]["id"] == self.bot_user.id
        if guild is not None and not own and not guild.permissions_in(channel, self.bot_user.id) & MANAGE_MESSAGES:
            return forbidden_missing_permissions()
        del self.messages[message["id"]]
        event = {"id": message["id"], "channel_id": channel.id}
        if guild is not None:
            event["guild_id"] = guild.id
        await self.dispatch("MESSAGE_DELETE", event, guild_id=channel.guild_id)
        await self._changed()
        return web.Response(status=204)

    async def _get_member(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(request.match_info["gid"])
        member = guild.members.get(request.match_info["uid"]) if guild else None
        return discord_json(member.payload()) if member else error(404, 10007, "Unknown Member")

    async def _edit_member(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(request.match_info["gid"])
        if guild is None:
            return error(404, 10004, "Unknown Guild")
        member = guild.members.get(request.match_info["uid"])
        if member is None:
            return error(404, 10007, "Unknown Member")
        body = await request.json()
        if "communication_disabled_until" in body:
            target = guild.permissions_of(member.user.id)
            # Discord refuses to time out without Moderate Members, and never times out an
            # administrator or the owner, whatever the bot's permissions.
            if not guild.permissions_of(self.bot_user.id) & MODERATE_MEMBERS or target & ADMINISTRATOR:
                return forbidden_missing_permissions()
            member.communication_disabled_until = body["communication_disabled_until"]
        await self.dispatch("GUILD_MEMBER_UPDATE", {"guild_id": guild.id, **member.payload()}, guild_id=guild.id)
        await self._changed()
        return discord_json(member.payload())

    async def _put_commands(self, request: web.Request) -> web.Response:
        body = await request.json()
        stored = [
            {
                **command,
                # Discord keeps (and returns) the permissions as a string, whatever was sent.
                "default_member_permissions": (
                    None
                    if command.get("default_member_permissions") is None
                    else str(command["default_member_permissions"])
                ),
                "id": self.snowflake(),
                "application_id": request.match_info["app"],
                "version": "1",
                "description": command.get("description", ""),
            }
            for command in body
        ]
        self.commands[request.path] = stored
        return discord_json(stored)

    async def _get_commands(self, request: web.Request) -> web.Response:
        return discord_json(self.commands.get(request.path, []))

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        known = self.interactions.get(token)
        if known is None or known["interaction"]["id"] != request.match_info["iid"]:
            return error(404, 10062, "Unknown interaction")
        if known["callbacks"]:
            return error(400, 40060, "Interaction has already been acknowledged.")
        body = await request.json()
        known["callbacks"].append(body)
        interaction = known["interaction"]
        data = body.get("data") or {}
        answer: dict[str, Any] = {
            "interaction": {
                "id": interaction["id"],
                "type": interaction["type"],
                "response_message_loading": body["type"] == 5,
                "response_message_ephemeral": bool(data.get("flags", 0) & EPHEMERAL),
            }
        }
        channel = self.channels[interaction["channel_id"]]
        if body["type"] == 4:  # a reply
            message = self._bot_message(channel, data, interaction)
            known["original_message_id"] = message["id"]
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": 4, "message": _public(message)}
        elif body["type"] == 7 and known["original_message_id"] in self.messages:  # edit the clicked message
            message = self.messages[known["original_message_id"]]
            message.update({k: data[k] for k in ("content", "embeds", "components") if k in data})
            answer["resource"] = {"type": 7, "message": _public(message)}
        elif body["type"] == 5:  # "thinking": the reply comes later through @original
            message = self._bot_message(channel, {"flags": data.get("flags", 0)}, interaction)
            known["original_message_id"] = message["id"]
            answer["interaction"]["response_message_id"] = message["id"]
        await self._changed()
        return discord_json(answer)

    def _bot_message(
        self, channel: FakeChannel, data: dict[str, Any], interaction: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        message = self.message_payload(channel, self.bot_user, data.get("content") or "")
        message.update(
            embeds=data.get("embeds") or [],
            components=data.get("components") or [],
            flags=data.get("flags", 0),
            allowed_mentions=data.get("allowed_mentions"),
            pings=sorted(pings_of(data.get("content") or "", data.get("allowed_mentions"), self._guild_of(channel))),
        )
        if interaction is not None:
            user = (interaction.get("member") or {}).get("user") or interaction.get("user")
            message["interaction_metadata"] = {
                "id": interaction["id"],
                "type": interaction["type"],
                "user": user,
                "authorizing_integration_owners": {},
            }
        self.messages[message["id"]] = message
        return message

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.uploads.get(request.match_info["aid"])
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _followup(self, request: web.Request) -> web.Response:
        known = self.interactions.get(request.match_info["token"])
        if known is None:
            return error(404, 10015, "Unknown Webhook")
        body, files = await _body_and_files(request)
        problems = limit_problems(body)
        if problems:
            return discord_json({"message": "Invalid Form Body", "code": 50035, "errors": problems}, 400)
        channel = self.channels[known["interaction"]["channel_id"]]
        message = self._bot_message(channel, body, known["interaction"])
        message["webhook_id"] = self.app_id
        if files:
            message["files"] = files
            message["attachments"] = [
                {
                    "id": self.snowflake(),
                    "filename": name,
                    "size": len(data),
                    "url": f"{self.base}/files/{name}",
                    "proxy_url": f"{self.base}/files/{name}",
                }
                for name, data in files.items()
            ]
        await self._changed()
        return discord_json(_public(message))

    def _webhook_target(self, request: web.Request) -> dict[str, Any] | None:
        known = self.interactions.get(request.match_info["token"])
        if known is None:
            return None
        mid = request.match_info["mid"]
        return self.messages.get(known["original_message_id"] if mid == "@original" else mid)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_target(request)
        return discord_json(_public(message)) if message else unknown_message()

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_target(request)
        if message is None:
            return unknown_message()
        body = await request.json()
        message.update({k: body[k] for k in ("content", "embeds", "components") if k in body})
        problems = limit_problems(message)
        if problems:
            return discord_json({"message": "Invalid Form Body", "code": 50035, "errors": problems}, 400)
        message["edited_timestamp"] = now_iso()
        await self._changed()
        return discord_json(_public(message))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_target(request)
        if message is None:
            return unknown_message()
        del self.messages[message["id"]]
        return web.Response(status=204)

    # ------------------------------------------------------------ gateway

    def session_for(self, guild_id: str | None) -> GatewaySession | None:
        """The session (shard) a guild's events go to; events without a guild go to shard 0."""
        for session in self.sessions.values():
            if session.shard is None:
                return session
            shard_id, count = session.shard
            if (int(guild_id) >> 22 if guild_id else 0) % count == shard_id:
                return session
        return None

    def _guilds_of_shard(self, shard: tuple[int, int] | None) -> list[FakeGuild]:
        if shard is None:
            return list(self.guilds.values())
        return [g for g in self.guilds.values() if (int(g.id) >> 22) % shard[1] == shard[0]]

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: str | None = None) -> int:
        """Send an event to the session that owns the guild; logged for RESUME even while it is disconnected.

        Returns the event's sequence number (0 when no session gets it).
        """
        session = self.session_for(guild_id)
        if session is None:
            return 0
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            data = self._as_seen_by(session, data)
            if data is None:
                return 0
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append(frame)
        if session.ws is not None and not session.ws.closed:
            with contextlib.suppress(ConnectionError):
                await session.ws.send_json(frame)
        return session.seq

    def _as_seen_by(self, session: GatewaySession, data: dict[str, Any]) -> dict[str, Any] | None:
        """Intents decide what a session receives: no GUILD_MESSAGES, no guild messages; no
        MESSAGE_CONTENT, empty content (except the bot's own messages and DMs)."""
        in_guild = "guild_id" in data
        if in_guild and not session.intents & INTENT_GUILD_MESSAGES:
            return None
        if not in_guild and not session.intents & INTENT_DIRECT_MESSAGES:
            return None
        own = data["author"]["id"] == self.bot_user.id
        if in_guild and not own and not session.intents & INTENT_MESSAGE_CONTENT:
            return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    async def reconnect(self, shard_id: int = 0) -> GatewaySession:
        """Ask the client to reconnect (op 7), as Discord does; it resumes. Waits for the RESUME."""
        session = next(s for s in self.sessions.values() if s.shard_id == shard_id)
        resumes = session.resumes
        assert session.ws is not None
        await session.ws.send_json({"op": 7, "d": None})
        async with self._state_changed:
            await asyncio.wait_for(self._state_changed.wait_for(lambda: session.resumes > resumes), 10)
        return session

    def redeliver_on_resume(self, count: int, shard_id: int = 0) -> None:
        """On the next RESUME, also replay the last `count` events the client already had."""
        session = next(s for s in self.sessions.values() if s.shard_id == shard_id)
        session.redeliver = count

    async def wait_identified(self, count: int = 1, timeout: float = 15.0) -> None:
        async with self._state_changed:
            await asyncio.wait_for(self._state_changed.wait_for(lambda: len(self.sessions) >= count), timeout)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.query.get("encoding") != "json":
            await ws.close(code=4002, message=b"only encoding=json is served")
            return ws
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45000}})
        session: GatewaySession | None = None
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            self.gateway_frames_in.append(frame)
            op, d = frame["op"], frame.get("d")
            if op == 1:
                await ws.send_json({"op": 11})
            elif op == 2:
                session = await self._identify(ws, d)
            elif op == 6:
                session = await self._resume(ws, d)
            elif op == 8 and session is not None:
                guild = self.guilds[str(d["guild_id"])]
                chunk = {
                    "guild_id": guild.id,
                    "members": [m.payload() for m in guild.members.values()],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "nonce": d.get("nonce"),
                }
                await self.dispatch("GUILD_MEMBERS_CHUNK", chunk, guild_id=guild.id)
        if session is not None and session.ws is ws:
            session.ws = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> GatewaySession | None:
        if d.get("token") != self.TOKEN:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        shard = tuple(d["shard"]) if "shard" in d else None
        session = GatewaySession(self.snowflake(), shard, int(d.get("intents", 0)))  # type: ignore[arg-type]
        session.ws = ws
        # A new IDENTIFY replaces the earlier session of the same shard (a restarted bot).
        for old in [s for s in self.sessions.values() if s.shard is None or shard is None or s.shard_id == shard[0]]:
            del self.sessions[old.session_id]
        self.sessions[session.session_id] = session
        guilds = self._guilds_of_shard(session.shard)
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot_user.payload(),
            "session_id": session.session_id,
            "resume_gateway_url": self.ws_url,
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "application": {"id": self.app_id, "flags": 0},
            "private_channels": [],
        }
        if shard is not None:
            ready["shard"] = list(shard)
        await self._send_to(session, "READY", ready)
        for guild in guilds:
            await self._send_to(session, "GUILD_CREATE", guild.payload(self.hidden_threads))
        await self._changed()
        return session

    async def _send_to(self, session: GatewaySession, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append(frame)
        assert session.ws is not None
        await session.ws.send_json(frame)

    async def _resume(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> GatewaySession | None:
        session = self.sessions.get(d.get("session_id", ""))
        if session is None or d.get("token") != self.TOKEN:
            await ws.send_json({"op": 9, "d": False})  # invalid session: identify again
            return None
        session.ws = ws
        after = int(d.get("seq") or 0) - session.redeliver
        session.redeliver = 0
        for frame in [f for f in session.log if f["s"] > after]:
            await ws.send_json(frame)
        await self._send_to(session, "RESUMED", {})
        session.resumes += 1
        await self._changed()
        return session


def _public(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as Discord returns it: without the fake's own bookkeeping."""
    return {k: v for k, v in message.items() if k not in ("pings", "allowed_mentions", "edits", "files")}


async def _body_and_files(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A message body as JSON, or as multipart (payload_json and files[n]) when it carries files.

    Parsed from the bytes (the recording middleware has read the stream already).
    """
    return body_and_files(request.headers.get("Content-Type", ""), await request.read())


def request_body(recorded: Recorded) -> dict[str, Any]:
    """A recorded message request's JSON body, whether it was sent as JSON or as multipart with files."""
    return body_and_files(recorded.headers.get("Content-Type", ""), recorded.body)[0]


def body_and_files(content_type: str, raw: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    if not content_type.startswith("multipart/form-data"):
        return json.loads(raw), {}
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed = BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    body: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for part in parsed.iter_parts():
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        if part.get_param("name", header="content-disposition") == "payload_json":
            body = json.loads(data)
        elif (filename := part.get_filename()) is not None:
            files[filename] = data
    return body, files


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c.get("custom_id", "") for row in message.get("components") or [] for c in row.get("components") or []]


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's buttons by custom_id."""
    return {c["custom_id"]: c for row in message.get("components") or [] for c in row.get("components") or []}
