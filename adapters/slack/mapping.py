"""Pure conversions between Slack's event payloads and the core's Message, and Slack's ids.

Ids. A Slack `ts` is unique only within its channel, so a message's id is
"<channel>:<ts>" (unique in the workspace), and the same form references what the bot
posted (the flag post). A thread is named by its root message: a reply's `channel_id`
is the root's message id "<channel>:<thread_ts>" and its `parent_channel_id` is the
channel. So context comes from the thread, exemptions and scope from the channel
(`Message.scope_channel_id`), and the sink finds the real channel and ts in the
message id. The root of a thread is an ordinary channel message.

Text. Slack sends message text in its own markup: `&`, `<` and `>` escaped as entities,
and mentions and links as `<…>` tokens. The core gets plain text, as a person reads it
(`<@U1>` becomes "@U1", a link whose label differs from its URL keeps both, so the model
sees where a disguised link goes); adapters/slack/render.py escapes it again on the way out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.domain import Attachment, Author, Message

PLATFORM = "slack"

# Subtypes that carry what a person wrote. Everything else (joins, leaves, topic and
# purpose changes, bot messages, deletions, pins, huddles...) is not user content.
USER_CONTENT_SUBTYPES: frozenset[str | None] = frozenset({None, "thread_broadcast", "file_share", "me_message"})
# Direct messages with the bot are private: the bot moderates channels only.
_DIRECT_CHANNEL_TYPES = frozenset({"im", "mpim"})

_TOKEN = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_SPECIAL_MENTIONS = {"channel", "here", "everyone"}


def message_id(channel: str, ts: str) -> str:
    """A message's id, unique in the workspace: its channel and its ts."""
    return f"{channel}:{ts}"


def split_reference(reference: str) -> tuple[str, str]:
    """(channel, ts) of a message id or a stored reference "<channel>:<ts>"."""
    channel, sep, ts = reference.partition(":")
    if not sep or not channel or not ts:
        raise ValueError(f"not a Slack message reference: {reference!r} (expected channel:ts)")
    return channel, ts


def slack_time(ts: str) -> datetime:
    """A Slack ts ("1700000000.000100": seconds and a sequence) as a UTC time."""
    return datetime.fromtimestamp(float(ts), tz=UTC)


def plain_text(slack_text: str) -> str:
    """Slack's message markup as a person reads it: tokens resolved, entities decoded."""

    def token(m: re.Match[str]) -> str:
        inner = m.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):  # a user: <@U123> or <@U123|name>
            return "@" + (label or target[1:])
        if target.startswith("#"):  # a channel: <#C123|general>
            return "#" + (label or target[1:])
        if target.startswith("!"):
            word = target[1:]
            if word in _SPECIAL_MENTIONS:
                return "@" + word
            if word.startswith("subteam^"):  # a user group: <!subteam^S123|@mods>
                return label or "@" + word.removeprefix("subteam^")
            return label or word  # <!date^…|fallback> and the like
        if target.startswith("mailto:"):
            return label or target.removeprefix("mailto:")
        if label and label not in (target, target.split("://", 1)[-1]):
            # A link whose text is not its address: keep both, for a disguised link is
            # exactly what a scam policy must see.
            return f"{label} ({target})"
        return target

    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], _TOKEN.sub(token, slack_text))


def _attachments(files: Sequence[Mapping[str, Any]] | None) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(name=str(f.get("name") or f.get("title") or "file"), content_type=str(f.get("mimetype") or ""))
        for f in files or ()
        if isinstance(f, Mapping)
    )


def _is_from_a_bot(message: Mapping[str, Any], bot_user_id: str | None) -> bool:
    return (
        message.get("subtype") == "bot_message"
        or bool(message.get("bot_id"))
        or (bot_user_id is not None and message.get("user") == bot_user_id)
    )


def _build(
    message: Mapping[str, Any],
    *,
    team_id: str,
    channel: str,
    roles: Sequence[str],
    edited_at: datetime | None,
) -> Message | None:
    user, ts = message.get("user"), message.get("ts")
    if not isinstance(user, str) or not isinstance(ts, str) or not user or not ts:
        return None
    thread_ts = str(message.get("thread_ts") or ts)
    in_thread = thread_ts != ts
    return Message(
        platform=PLATFORM,
        server_id=team_id,
        channel_id=message_id(channel, thread_ts) if in_thread else channel,
        parent_channel_id=channel if in_thread else None,
        message_id=message_id(channel, ts),
        author=Author(id=user, name=str(message.get("username") or ""), roles=tuple(roles)),
        text=plain_text(str(message.get("text") or "")),
        attachments=_attachments(message.get("files")),
        reply_to=message_id(channel, thread_ts) if in_thread else None,
        sent_at=slack_time(ts),
        edited=edited_at is not None,
        edited_at=edited_at,
    )


def message_from_event(
    event: Mapping[str, Any], *, team_id: str, bot_user_id: str | None = None, roles: Sequence[str] = ()
) -> Message | None:
    """The Message a `message` event carries, or None when it is not a person's content in a channel.

    `roles` are the author's user group ids (S…), when the caller knows them: on Slack,
    exempt and moderator "roles" are user groups.
    """
    if event.get("type") != "message" or event.get("channel_type") in _DIRECT_CHANNEL_TYPES:
        return None
    if event.get("subtype") not in USER_CONTENT_SUBTYPES or _is_from_a_bot(event, bot_user_id):
        return None
    channel = event.get("channel")
    if not isinstance(channel, str) or not channel:
        return None
    return _build(event, team_id=team_id, channel=channel, roles=roles, edited_at=None)


def revision_from_edit(
    event: Mapping[str, Any], *, team_id: str, bot_user_id: str | None = None, roles: Sequence[str] = ()
) -> Message | None:
    """A `message_changed` event as a new revision of the message, or None when no person edited its text.

    Slack also sends message_changed when a link unfurls or a thread gains a reply; those
    carry no `edited` stamp or leave the text as it was, and are not revisions.
    """
    if event.get("subtype") != "message_changed" or event.get("channel_type") in _DIRECT_CHANNEL_TYPES:
        return None
    new, old = event.get("message"), event.get("previous_message")
    channel = event.get("channel")
    if not isinstance(new, Mapping) or not isinstance(channel, str) or not channel:
        return None
    edited = new.get("edited")
    if not isinstance(edited, Mapping) or not isinstance(edited.get("ts"), str):
        return None
    if new.get("subtype") not in USER_CONTENT_SUBTYPES or _is_from_a_bot(new, bot_user_id):
        return None
    if isinstance(old, Mapping) and old.get("text") == new.get("text"):
        return None
    return _build(new, team_id=team_id, channel=channel, roles=roles, edited_at=slack_time(str(edited["ts"])))


def team_of(body: Mapping[str, Any]) -> str | None:
    """The workspace an Events API request belongs to."""
    team = body.get("team_id")
    if isinstance(team, str) and team:
        return team
    event = body.get("event")
    if isinstance(event, Mapping) and isinstance(event.get("team"), str):
        return str(event["team"])
    return None
