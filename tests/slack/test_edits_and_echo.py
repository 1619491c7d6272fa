"""Edits taken in as revisions, and what members and the model wrote echoed back without a single ping."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest_asyncio

from adapters.slack.app import SlackAdapter
from adapters.slack.config import load_settings
from bot.domain import EffectKind, Message, ServerSettings
from tests.fakes.slack_fake import BOT_ID, BOT_USER_ID, FakeSlack
from tests.slack.conftest import MakeWorkspace, ScriptedModel, slack_env
from tests.slack.test_http_events import texts_in


@dataclass
class RecordingIntake:
    """The intake port in memory: what the adapter submits, in order."""

    submitted: list[Message] = field(default_factory=list)

    async def submit(self, message: Message) -> bool:
        self.submitted.append(message)
        return True

    async def settings_for(self, message: Message) -> ServerSettings:
        return ServerSettings(platform=message.platform, server_id=message.server_id)


@pytest_asyncio.fixture
async def intake_only(fake_slack: FakeSlack) -> AsyncIterator[tuple[SlackAdapter, RecordingIntake]]:
    intake = RecordingIntake()
    adapter = SlackAdapter(load_settings(**slack_env("http", api_url=fake_slack.api_url)))
    await adapter.start(intake)
    yield adapter, intake
    await adapter.stop()


async def test_an_edit_is_submitted_as_a_new_revision(
    fake_slack: FakeSlack, intake_only: tuple[SlackAdapter, RecordingIntake]
) -> None:
    adapter, intake = intake_only
    url = f"http://127.0.0.1:{adapter.port}/slack/events"
    original = fake_slack.user_message("see you tomorrow", ts="1700000000.000100")
    edit = fake_slack.edited_message(original, "see you tomorrow, idiot", edited_ts="1700000090.000000")
    for body in (original, edit):
        assert (await fake_slack.deliver(url, body))[0] == 200

    first, revised = intake.submitted
    assert first.message_id == revised.message_id == "C0GENERAL:1700000000.000100"
    assert (first.edited, revised.edited) == (False, True)
    assert revised.text == "see you tomorrow, idiot"
    assert revised.edited_at == datetime(2023, 11, 14, 22, 14, 50, tzinfo=UTC)
    assert revised.sent_at == first.sent_at


async def test_the_bots_own_edits_and_unfurls_are_not_revisions(
    fake_slack: FakeSlack, intake_only: tuple[SlackAdapter, RecordingIntake]
) -> None:
    adapter, intake = intake_only
    url = f"http://127.0.0.1:{adapter.port}/slack/events"
    own = fake_slack.user_message("Flagged: case 1", user=BOT_USER_ID, bot_id=BOT_ID)
    own_edit = fake_slack.edited_message(own, "Confirmed: case 1")
    own_edit["event"]["message"]["bot_id"] = BOT_ID
    linked = fake_slack.user_message("look at https://example.org")
    unfurl = fake_slack.edited_message(linked, "look at https://example.org")
    del unfurl["event"]["message"]["edited"]  # Slack adds the preview: no person edited anything
    barrier = fake_slack.user_message("barrier")
    for body in (own_edit, unfurl, barrier):
        assert (await fake_slack.deliver(url, body))[0] == 200
    # Submission happens before the 200, so the barrier's 200 means everything before it was seen.
    assert [m.text for m in intake.submitted] == ["barrier"]


async def test_an_edit_to_abuse_produces_a_case(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http")
    fake = ws.fake
    original = fake.user_message("see you tomorrow")
    assert (await fake.deliver(ws.events_url, original))[0] == 200
    await ws.settle()
    assert (await fake.deliver(ws.events_url, fake.edited_message(original, "see you tomorrow, idiot")))[0] == 200
    await ws.settle()
    assert [c.violation for c in ws.cases] == [False, True]


PINGS = re.compile(r"<[!@]")  # a channel link <#C…> names a channel and pings nobody


async def test_mentions_in_content_and_in_the_rationale_are_escaped_in_every_echo(
    make_workspace: MakeWorkspace,
) -> None:
    model = ScriptedModel(rationale="Calls <@U0VICTIM> an idiot; <!channel> <!here> <!everyone> <!subteam^S0MODS>")
    ws = await make_workspace(
        "http",
        effects=(EffectKind.FLAG, EffectKind.DM_MODERATORS, EffectKind.NOTIFY_AUTHOR),
        moderators=("U0MOD",),
        model=model,
    )
    fake = ws.fake
    fake.add_user("U0MOD", "mod", display_name="<!channel> mod")  # even a display name is member text
    # As Slack sends it: real mentions as tokens; characters typed literally as entities.
    content = "<!channel> <@U0VICTIM> is an idiot <!subteam^S0MODS|@mods> &lt;!here&gt; &lt;@U123&gt; @everyone"
    event = fake.user_message(content, user="U0AUTHOR")
    assert (await fake.deliver(ws.events_url, event))[0] == 200
    await ws.settle()

    posts = fake.calls_to("chat.postMessage")
    assert {p.args["channel"] for p in posts} == {"C0MODS", "D0MOD", "D0AUTHOR"}
    for post in posts:
        blocks = post.json_arg("blocks")
        for text in [post.args["text"], *texts_in(blocks)]:
            assert not PINGS.search(text), (post.args["channel"], text)
            assert not re.search(r"@(channel|here|everyone)\b", text), (post.args["channel"], text)
        for obj in _text_objects(blocks):
            if obj["type"] == "mrkdwn":
                assert obj.get("verbatim") is True  # Slack does not turn a plain "@here" into a mention
    flag_text = "\n".join(texts_in(posts[0].json_arg("blocks")))
    assert "&lt;!channel&gt;" in flag_text and "&lt;@U0VICTIM&gt;" in flag_text  # the rationale, inert
    assert "@\u200bchannel" in flag_text and "&lt;!here&gt;" in flag_text and "&lt;@U123&gt;" in flag_text
    author_dm = next(p for p in posts if p.args["channel"] == "D0AUTHOR")
    assert "U0VICTIM an idiot" not in "\n".join(texts_in(author_dm.json_arg("blocks")))  # never the reasoning


def _text_objects(value: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and "text" in value:
            found.append(value)
        for v in value.values():
            found += _text_objects(v)
    elif isinstance(value, list):
        for v in value:
            found += _text_objects(v)
    return found


async def test_a_retry_of_an_event_already_taken_in_is_not_submitted_again(
    fake_slack: FakeSlack, intake_only: tuple[SlackAdapter, RecordingIntake]
) -> None:
    # The event-id memory spares the store a second write; the core's idempotent intake
    # is what guarantees one decision (test_http_events covers that with a real pipeline).
    adapter, intake = intake_only
    url = f"http://127.0.0.1:{adapter.port}/slack/events"
    event = fake_slack.user_message("hello")
    for retry in (None, 1, 2):
        assert (await fake_slack.deliver(url, event, retry_num=retry))[0] == 200
    assert [m.text for m in intake.submitted] == ["hello"]
