"""The local Slack itself: the rules the adapter's tests rely on, checked with the real slack_sdk."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_fake import (
    ADMIN_TOKEN,
    BOT_TOKEN,
    MEMBER_TOKEN,
    FakeSlack,
    block_kit_problems,
    sign,
)


def test_sign_matches_slacks_documented_example() -> None:
    # The example in Slack's "Verifying requests from Slack" guide, by hand and by slack_sdk.
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = sign(secret, body, 1531420618)
    assert headers["X-Slack-Signature"] == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    expected = "v0=" + hmac.new(secret.encode(), f"v0:1531420618:{body}".encode(), hashlib.sha256).hexdigest()
    assert headers["X-Slack-Signature"] == expected
    assert SignatureVerifier(secret, clock=_FixedClock(1531420618)).is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )


class _FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


async def test_delete_rules_as_slack_enforces_them(fake_slack: FakeSlack) -> None:
    event = fake_slack.user_message("hello", user="U0AUTHOR", channel="C0GENERAL")["event"]
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    for token in (BOT_TOKEN, MEMBER_TOKEN):
        with pytest.raises(SlackApiError) as refused:
            await client.chat_delete(channel="C0GENERAL", ts=event["ts"], token=token)
        assert refused.value.response["error"] == "cant_delete_message"
    assert (await client.chat_delete(channel="C0GENERAL", ts=event["ts"], token=ADMIN_TOKEN))["ok"]
    with pytest.raises(SlackApiError) as gone:
        await client.chat_delete(channel="C0GENERAL", ts=event["ts"], token=ADMIN_TOKEN)
    assert gone.value.response["error"] == "message_not_found"
    own = await client.chat_postMessage(channel="C0MODS", text="mine")
    assert (await client.chat_delete(channel="C0MODS", ts=own["ts"]))["ok"]  # the bot's own post


async def test_read_methods_arrive_as_get_and_writes_as_post(fake_slack: FakeSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    fake_slack.add_user("U0AUTHOR")
    await client.users_info(user="U0AUTHOR")
    await client.conversations_open(users="U0AUTHOR")
    await client.chat_postMessage(channel="C0MODS", text="hi", blocks=[{"type": "divider"}])
    assert [(c.method, c.http_method) for c in fake_slack.calls] == [
        ("users.info", "GET"),
        ("conversations.open", "POST"),
        ("chat.postMessage", "POST"),
    ]


async def test_blocks_over_slacks_limits_are_refused(fake_slack: FakeSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0MODS", text="t", blocks=too_long)
    assert refused.value.response["error"] == "invalid_blocks"
    assert block_kit_problems([{"type": "divider"}] * 51) == ["51 blocks, more than 50"]


async def test_a_wrong_token_is_refused(fake_slack: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-someone-else", base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        await client.auth_test()
    assert refused.value.response["error"] == "invalid_auth"
