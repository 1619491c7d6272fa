"""intake_message, table-tested: which Discord messages reach the core, and how they read there."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.discord.mapping import Ignored, PostedMessage, intake_message
from bot.domain import Attachment, Author, Message

BOT = "1000"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

MEMBER_MESSAGE = PostedMessage(
    message_id="5001",
    guild_id="2000",
    channel_id="3000",
    parent_channel_id=None,
    author_id="4000",
    author_name="alice",
    author_is_bot=False,
    author_role_ids=("2100",),
    webhook_id=None,
    from_application=False,
    message_type=0,
    content="hello",
    attachments=(),
    reply_to=None,
    created_at=T0,
    edited_at=None,
)


def take(posted: PostedMessage, *, webhooks: bool = False, is_edit: bool = False) -> Message | Ignored:
    return intake_message(posted, bot_user_id=BOT, accept_webhooks=webhooks, is_edit=is_edit)


def test_a_members_message_maps_to_the_core_message() -> None:
    assert take(MEMBER_MESSAGE) == Message(
        platform="discord",
        server_id="2000",
        channel_id="3000",
        message_id="5001",
        author=Author(id="4000", name="alice", roles=("2100",), is_bot=False),
        text="hello",
        sent_at=T0,
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"parent_channel_id": "3001", "channel_id": "3100"}, {"channel_id": "3100", "parent_channel_id": "3001"}),
        ({"message_type": 19, "reply_to": "4999"}, {"reply_to": "4999"}),
        (
            {"attachments": (("cat.png", "image/png"), ("notes", ""))},
            {"attachments": (Attachment(name="cat.png", content_type="image/png"), Attachment(name="notes"))},
        ),
        ({"content": "bad\x00text\ud800"}, {"text": "bad\ufffdtext\ufffd"}),  # valid text at the boundary
    ],
    ids=["thread-or-forum-post", "reply", "attachments", "invalid-unicode"],
)
def test_what_a_message_carries(change: dict[str, object], expected: dict[str, object]) -> None:
    message = take(replace(MEMBER_MESSAGE, **change))  # type: ignore[arg-type]
    assert isinstance(message, Message)
    for name, value in expected.items():
        assert getattr(message, name) == value


def test_an_edit_is_a_revision_with_the_edit_time() -> None:
    edited_at = T0 + timedelta(minutes=3)
    message = take(replace(MEMBER_MESSAGE, content="hello, idiot", edited_at=edited_at), is_edit=True)
    assert isinstance(message, Message)
    assert (message.edited, message.edited_at, message.sent_at, message.revised_at) == (True, edited_at, T0, edited_at)
    # A new message carries Discord's edited time only when it is an edit.
    assert take(replace(MEMBER_MESSAGE, edited_at=edited_at)).edited_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "webhooks", "is_edit", "reason"),
    [
        ({"guild_id": None}, False, False, "a direct message: the bot moderates servers"),
        ({"author_id": BOT, "author_is_bot": True}, False, False, "the bot's own message"),
        ({"author_is_bot": True}, False, False, "posted by a bot"),
        ({"webhook_id": "77", "author_is_bot": True}, False, False, "a webhook message, and this server does not"),
        # Another bot's answer to a slash command comes through its application's webhook.
        ({"webhook_id": "77", "from_application": True, "author_is_bot": True}, True, False, "posted by a bot"),
        ({"from_application": True}, False, False, "posted by a bot"),
        ({"message_type": 7}, False, False, "a system message (type 7)"),
        ({"message_type": 18}, False, False, "a system message (type 18)"),
        ({}, False, True, "an update without an edit (a link preview or embed)"),
    ],
    ids=["dm", "itself", "bot", "webhook-off", "app-webhook", "app", "member-join", "thread-created", "unfurl"],
)
def test_what_is_not_taken_in_and_why(change: dict[str, object], webhooks: bool, is_edit: bool, reason: str) -> None:
    result = take(replace(MEMBER_MESSAGE, **change), webhooks=webhooks, is_edit=is_edit)  # type: ignore[arg-type]
    assert isinstance(result, Ignored) and result.reason.startswith(reason)


def test_a_webhook_message_is_taken_in_where_the_server_enables_it() -> None:
    proxied = replace(
        MEMBER_MESSAGE, webhook_id="77", author_id="77", author_name="Mia (PK)", author_is_bot=True, author_role_ids=()
    )
    message = take(proxied, webhooks=True)
    assert isinstance(message, Message)
    assert message.author == Author(id="77", name="Mia (PK)", roles=(), is_bot=False)
