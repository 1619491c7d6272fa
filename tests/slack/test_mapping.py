"""Slack payloads to the core's Message: a table of events, and Slack's text markup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.slack.mapping import message_from_event, plain_text, revision_from_edit, split_reference, team_of

BOT = "U0MODBOT"


def event(**fields: Any) -> dict[str, Any]:
    base = {"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1700000000.000100"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (event(), {"message_id": "C1:1700000000.000100", "channel_id": "C1", "parent_channel_id": None}),
        (event(subtype="thread_broadcast", thread_ts="1699999999.000001"), {"channel_id": "C1:1699999999.000001"}),
        (event(subtype="file_share", files=[{"name": "a.png", "mimetype": "image/png"}]), {"attachments": 1}),
        (event(subtype="me_message", text="waves"), {"text": "waves"}),
        # A thread's root is an ordinary channel message.
        (event(thread_ts="1700000000.000100"), {"channel_id": "C1", "reply_to": None}),
        (
            event(thread_ts="1699999999.000001"),
            {
                "channel_id": "C1:1699999999.000001",
                "parent_channel_id": "C1",
                "reply_to": "C1:1699999999.000001",
                "scope_channel_id": "C1",
            },
        ),
        (event(channel_type="group", channel="G1"), {"message_id": "G1:1700000000.000100"}),
    ],
    ids=["channel", "thread broadcast", "file share", "/me", "thread root", "thread reply", "private channel"],
)
def test_person_content_is_taken_in(payload: dict[str, Any], expected: dict[str, Any]) -> None:
    message = message_from_event(payload, team_id="T1", bot_user_id=BOT)
    assert message is not None
    assert (message.platform, message.server_id, message.author.id) == ("slack", "T1", "U1")
    assert message.sent_at == datetime.fromtimestamp(1700000000.0001, tz=UTC)
    assert not message.edited and message.edited_at is None
    for name, value in expected.items():
        got = len(message.attachments) if name == "attachments" else getattr(message, name)
        assert got == value, name


@pytest.mark.parametrize(
    "payload",
    [
        event(subtype="channel_join"),
        event(subtype="channel_leave"),
        event(subtype="channel_topic"),
        event(subtype="bot_message", user=None, bot_id="B1"),
        event(bot_id="B2"),  # an app posting as its bot user
        event(user=BOT),  # the bot itself
        event(subtype="message_deleted"),
        event(subtype="message_changed"),  # handled by revision_from_edit
        event(channel_type="im"),
        event(channel_type="mpim"),
        event(user=None),
        event(type="reaction_added"),
    ],
    ids=[
        "join",
        "leave",
        "topic",
        "bot_message",
        "app bot",
        "own",
        "deleted",
        "changed",
        "DM",
        "group DM",
        "no user",
        "not a message",
    ],
)
def test_what_is_not_a_persons_content_is_not_taken_in(payload: dict[str, Any]) -> None:
    assert message_from_event(payload, team_id="T1", bot_user_id=BOT) is None


def edit(new: dict[str, Any], old_text: str | None = "old", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "ts": "1700000100.000000",
        "message": new,
    }
    if old_text is not None:
        body["previous_message"] = {"type": "message", "user": "U1", "text": old_text, "ts": new.get("ts")}
    body.update(fields)
    return body


EDITED = {"type": "message", "user": "U1", "text": "new", "ts": "1700000000.000100"}


def test_an_edit_is_a_revision_of_the_same_message_with_the_edit_time() -> None:
    revision = revision_from_edit(
        edit({**EDITED, "edited": {"user": "U1", "ts": "1700000060.000000"}}), team_id="T1", bot_user_id=BOT
    )
    assert revision is not None
    assert (revision.message_id, revision.text, revision.edited) == ("C1:1700000000.000100", "new", True)
    assert revision.edited_at == datetime.fromtimestamp(1700000060, tz=UTC)
    assert revision.sent_at == datetime.fromtimestamp(1700000000.0001, tz=UTC)


@pytest.mark.parametrize(
    "payload",
    [
        edit(EDITED),  # an unfurl or a new reply count: no one edited it
        edit({**EDITED, "edited": {"ts": "1700000060.0"}}, old_text="new"),  # same text
        edit({**EDITED, "user": BOT, "edited": {"ts": "1700000060.0"}}),  # the bot's own chat.update
        edit({**EDITED, "bot_id": "B9", "edited": {"ts": "1700000060.0"}}),
        edit({**EDITED, "edited": {"ts": "1700000060.0"}}, channel_type="im"),
    ],
    ids=["unfurl", "same text", "own update", "another bot", "DM"],
)
def test_changes_that_are_not_a_persons_edit_are_not_revisions(payload: dict[str, Any]) -> None:
    assert revision_from_edit(payload, team_id="T1", bot_user_id=BOT) is None


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"),
        ("&amp;lt; typed literally", "&lt; typed literally"),
        ("hi <@U123> and <@U456|bob>", "hi @U123 and @bob"),
        ("<!channel> <!here> <!everyone>", "@channel @here @everyone"),
        ("<!subteam^S1|@mods> <!subteam^S2>", "@mods @S2"),
        ("see <#C1|general> and <#C2>", "see #general and #C2"),
        ("<https://example.org>", "https://example.org"),
        ("<https://example.org|example.org>", "https://example.org"),
        ("<https://evil.example|paypal.com>", "paypal.com (https://evil.example)"),
        ("<mailto:a@b.org|a@b.org>", "a@b.org"),
        ("<!date^1392734382^{date}|Feb 18>", "Feb 18"),
    ],
)
def test_slack_markup_becomes_what_a_person_reads(slack: str, plain: str) -> None:
    assert plain_text(slack) == plain


def test_ids_and_references() -> None:
    assert split_reference("C1:1700000000.000100") == ("C1", "1700000000.000100")
    with pytest.raises(ValueError, match="channel:ts"):
        split_reference("C1")
    assert team_of({"team_id": "T1"}) == "T1" and team_of({"event": {"team": "T2"}}) == "T2"
    assert team_of({}) is None


def test_lone_surrogates_and_nul_are_made_valid_at_the_boundary() -> None:
    message = message_from_event(event(text="bad \ud800 and \x00"), team_id="T1")
    assert message is not None and message.text == "bad \ufffd and \ufffd"
