"""From Discord's messages to the core's Message: what is taken in, what is ignored and why.

Two steps, so the decisions are table-tested without the library: `posted_from` copies
what intake needs out of a discord.py Message (nothing else), and `intake_message` decides,
as a pure function, whether it goes to the core and how it reads there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import discord

from adapters.discord.capabilities import PLATFORM
from bot.domain import Attachment, Author, Message

# Message types people write: a plain message and a reply. Everything else (joins, pins,
# boosts, thread-created notices, slash command echoes) is the platform talking.
DEFAULT_MESSAGE = 0
REPLY_MESSAGE = 19
_MEMBER_MESSAGE_TYPES = frozenset({DEFAULT_MESSAGE, REPLY_MESSAGE})


@dataclass(frozen=True)
class PostedMessage:
    """One revision of a Discord message, as far as intake cares."""

    message_id: str
    guild_id: str | None
    channel_id: str
    # The channel a thread or forum post belongs to; None outside threads (or not known).
    parent_channel_id: str | None
    author_id: str
    author_name: str
    author_is_bot: bool
    author_role_ids: tuple[str, ...]
    webhook_id: str | None
    # Posted by an application (an interaction's answer): a bot speaking, whatever the author flag says.
    from_application: bool
    message_type: int
    content: str
    attachments: tuple[tuple[str, str], ...]
    reply_to: str | None
    created_at: datetime
    edited_at: datetime | None


@dataclass(frozen=True)
class Ignored:
    """A Discord message that does not go to the core, and why (for debug logs and tests)."""

    reason: str


def intake_message(
    posted: PostedMessage, *, bot_user_id: str, accept_webhooks: bool, is_edit: bool = False
) -> Message | Ignored:
    """The core's Message for a member's message, or why there is none.

    `accept_webhooks` is the server's choice: proxies such as PluralKit repost members'
    messages through webhooks, and a server that uses one wants them moderated. Such a
    message's author is the webhook (its name is the proxied member's): a time-out of it
    fails honestly, since a webhook is not a member.
    """
    if posted.guild_id is None:
        return Ignored("a direct message: the bot moderates servers")
    if posted.author_id == bot_user_id:
        return Ignored("the bot's own message")
    if posted.webhook_id is not None and not posted.from_application:
        if not accept_webhooks:
            return Ignored("a webhook message, and this server does not take webhook messages in")
    elif posted.author_is_bot or posted.from_application:
        return Ignored("posted by a bot")
    if posted.message_type not in _MEMBER_MESSAGE_TYPES:
        return Ignored(f"a system message (type {posted.message_type})")
    if is_edit and posted.edited_at is None:
        # Discord also sends MESSAGE_UPDATE when it adds a link preview: the text did not change.
        return Ignored("an update without an edit (a link preview or embed)")
    return Message(
        platform=PLATFORM,
        server_id=posted.guild_id,
        channel_id=posted.channel_id,
        message_id=posted.message_id,
        author=Author(
            id=posted.author_id,
            name=posted.author_name,
            roles=posted.author_role_ids,
            # A webhook message taken in stands for a member: judged like one.
            is_bot=False,
        ),
        text=posted.content,
        attachments=tuple(Attachment(name=name, content_type=ctype) for name, ctype in posted.attachments),
        reply_to=posted.reply_to,
        sent_at=posted.created_at,
        edited=is_edit,
        edited_at=posted.edited_at if is_edit else None,
        parent_channel_id=posted.parent_channel_id,
    )


def posted_from(message: discord.Message, *, parent_channel_id: str | None = None) -> PostedMessage:
    """Copy what intake needs out of a discord.py Message.

    A thread's parent comes from the cached Thread; for a thread the cache does not know
    (a PartialMessageable), the caller resolves it and passes `parent_channel_id`.
    """
    channel = message.channel
    if isinstance(channel, discord.Thread) and channel.parent_id is not None:
        parent_channel_id = str(channel.parent_id)
    author = message.author
    roles: tuple[str, ...] = ()
    if isinstance(author, discord.Member):
        roles = tuple(str(role.id) for role in author.roles if not role.is_default())
    content = message.content
    if not content and message.message_snapshots:
        # A forwarded message carries its text in snapshots: judge what the member re-posted.
        content = "\n".join(s.content for s in message.message_snapshots if s.content)
    reference = message.reference
    # A forward's reference points into another channel: only a reply is "in reply to".
    replied = reference is not None and reference.type is discord.MessageReferenceType.reply
    return PostedMessage(
        message_id=str(message.id),
        guild_id=str(message.guild.id) if message.guild is not None else None,
        channel_id=str(channel.id),
        parent_channel_id=parent_channel_id,
        author_id=str(author.id),
        author_name=author.display_name,
        author_is_bot=author.bot,
        author_role_ids=roles,
        webhook_id=str(message.webhook_id) if message.webhook_id is not None else None,
        from_application=message.application_id is not None or message.interaction_metadata is not None,
        message_type=message.type.value,
        content=content,
        attachments=tuple((a.filename, a.content_type or "") for a in message.attachments),
        reply_to=str(reference.message_id) if replied and reference and reference.message_id else None,
        created_at=message.created_at,
        edited_at=message.edited_at,
    )


def is_unresolved_thread(message: discord.Message) -> bool:
    """A guild message whose channel the cache does not know: maybe a thread whose parent matters."""
    return message.guild is not None and isinstance(message.channel, discord.PartialMessageable)
