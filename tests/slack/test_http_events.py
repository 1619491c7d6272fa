"""HTTP mode end to end: signed events through the real Bolt app and a real pipeline, out to the Web API."""

from __future__ import annotations

import time

import pytest

from adapters.slack.render import action_id
from bot.domain import CaseStatus, EffectKind, EffectOutcome
from tests.fakes.slack_fake import BOT_TOKEN, BOT_USER_ID, TEAM_ID, SlackUser, event_callback
from tests.slack.conftest import MOD_CHANNEL, MakeWorkspace


def texts_in(value: object) -> list[str]:
    """Every string inside a JSON value (a message's text and all its blocks)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts_in(v)]
    if isinstance(value, list):
        return [t for v in value for t in texts_in(v)]
    return []


async def test_a_violating_message_is_flagged_to_the_mod_channel(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http")
    fake = ws.fake
    event = fake.user_message("you are an idiot", user="U0AUTHOR", channel="C0GENERAL")
    ts = event["event"]["ts"]

    assert await fake.deliver(ws.events_url, event) == (200, "")
    await ws.settle()

    [case] = ws.cases_of("C0GENERAL", ts)
    assert case.status is CaseStatus.OPEN and case.message.server_id == TEAM_ID
    [flag] = [r for r in case.effects if r.effect.kind is EffectKind.FLAG]
    [post] = fake.calls_to("chat.postMessage")
    assert post.args["channel"] == MOD_CHANNEL and post.token == BOT_TOKEN
    assert flag.outcome is EffectOutcome.DONE and flag.reference is not None
    channel, posted_ts = flag.reference.split(":", 1)
    assert channel == MOD_CHANNEL
    stored = fake.messages[(MOD_CHANNEL, posted_ts)]
    words = "\n".join(texts_in(stored.blocks))
    assert "you are an idiot" in words and "HB1.a" in words and "Insulting a target" in words
    assert "Insults a member (HB1.a)." in words and "high" in words
    assert fake.permalink("C0GENERAL", ts) in words
    action_ids = [e["action_id"] for b in stored.blocks if b["type"] == "actions" for e in b["elements"]]
    assert action_ids == [action_id(a, case.id) for a in ("confirm", "dismiss", "reasoning")]
    # Read methods went as GET, as slack_sdk sends them; the fake answered both verbs.
    assert {c.http_method for c in fake.calls_to("chat.getPermalink")} == {"GET"}


async def test_a_clean_message_calls_nothing_after_the_barrier(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http")
    fake = ws.fake
    assert (await fake.deliver(ws.events_url, fake.user_message("lovely weather today")))[0] == 200
    await ws.settle()

    assert [c.status for c in ws.cases] == [CaseStatus.CLEAN]
    assert fake.calls_to("chat.postMessage") == [] and fake.calls_to("chat.delete") == []


@pytest.mark.parametrize(
    ("secret", "age_seconds"),
    [("not-the-signing-secret", 0), (None, 6 * 60)],
    ids=["forged signature", "older than five minutes"],
)
async def test_unsigned_or_stale_requests_get_401_and_change_nothing(
    make_workspace: MakeWorkspace, secret: str | None, age_seconds: int
) -> None:
    ws = await make_workspace("http")
    fake = ws.fake
    forged = fake.user_message("you idiot", channel="C0GENERAL")
    kwargs: dict[str, object] = {"timestamp": int(time.time()) - age_seconds}
    if secret is not None:
        kwargs["secret"] = secret
    status, _ = await fake.deliver(ws.events_url, forged, **kwargs)  # type: ignore[arg-type]
    assert status == 401

    # Barrier: a genuine event after the forged one, flagged; then nothing else may have happened.
    barrier = fake.user_message("barrier, you idiot", channel="C0BARRIER")
    assert (await fake.deliver(ws.events_url, barrier))[0] == 200
    await ws.settle()
    assert [c.message.channel_id for c in ws.cases] == ["C0BARRIER"]
    assert len(fake.calls_to("chat.postMessage")) == 1


async def test_a_retried_event_doubles_nothing(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http", effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    fake = ws.fake
    event = fake.user_message("you idiot")
    assert (await fake.deliver(ws.events_url, event))[0] == 200
    # Slack retries when it thinks the first delivery failed; here, as if our 200 was lost.
    for attempt in (1, 2, 3):
        assert (await fake.deliver(ws.events_url, event, retry_num=attempt))[0] == 200
    await ws.settle()

    assert len(ws.cases) == 1 and len(ws.model.calls) == 1
    assert len(fake.calls_to("chat.postMessage")) == 2  # one flag, one DM to the author


async def test_a_retry_of_the_same_message_under_a_new_event_id_is_still_decided_once(
    make_workspace: MakeWorkspace,
) -> None:
    # Not the event-id memory but the core's idempotent intake: same channel and ts, one case.
    ws = await make_workspace("http")
    fake = ws.fake
    first = fake.user_message("you idiot")
    again = event_callback(first["event"])
    assert again["event_id"] != first["event_id"]
    for body in (first, again):
        assert (await fake.deliver(ws.events_url, body))[0] == 200
    await ws.settle()
    assert len(ws.cases) == 1 and len(fake.calls_to("chat.postMessage")) == 1


async def test_own_posts_bots_and_joins_are_not_taken_in(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http")
    fake = ws.fake
    fake.users["U0OTHERBOT"] = SlackUser("U0OTHERBOT", "otherbot", is_bot=True)
    ignored = [
        fake.user_message("idiot, says the bot itself", user=BOT_USER_ID, bot_id="B0MODBOT"),
        fake.user_message("idiot, says another app", user="U0OTHERBOT", bot_id="B0OTHER"),
        fake.user_message("idiot", subtype="bot_message", bot_id="B0LEGACY"),
        fake.user_message("<@U0NEW> has joined the channel, idiot", user="U0NEW", subtype="channel_join"),
        fake.user_message("idiot in a direct message", channel="D0DIRECT", channel_type="im"),
    ]
    for body in ignored:
        assert (await fake.deliver(ws.events_url, body))[0] == 200
    barrier = fake.user_message("barrier, you idiot", channel="C0BARRIER")
    assert (await fake.deliver(ws.events_url, barrier))[0] == 200
    await ws.settle()

    assert [c.message.channel_id for c in ws.cases] == ["C0BARRIER"]


async def test_a_thread_reply_lives_in_its_thread_and_is_deleted_where_it_is(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http", admin=True, effects=(EffectKind.FLAG, EffectKind.DELETE))
    fake = ws.fake
    root = fake.user_message("what do you all think?", user="U0ASKER")
    root_ts = root["event"]["ts"]
    reply = fake.user_message("you idiot", thread_ts=root_ts)
    reply_ts = reply["event"]["ts"]
    for body in (root, reply):
        assert (await fake.deliver(ws.events_url, body))[0] == 200
    await ws.settle()

    [case] = ws.cases_of("C0GENERAL", reply_ts)
    assert case.message.channel_id == f"C0GENERAL:{root_ts}" and case.message.parent_channel_id == "C0GENERAL"
    delete = await fake.wait_for_call("chat.delete")
    assert (delete.args["channel"], delete.args["ts"]) == ("C0GENERAL", reply_ts)
    assert ("C0GENERAL", reply_ts) not in fake.messages and ("C0GENERAL", root_ts) in fake.messages


async def test_a_store_that_cannot_take_the_message_gets_no_ack_so_slack_retries(
    make_workspace: MakeWorkspace,
) -> None:
    ws = await make_workspace("http")
    fake = ws.fake
    event = fake.user_message("you idiot")
    real_submit = ws.pipeline.submit
    failures = 0

    async def failing_once(message: object) -> bool:
        # The core's intake failing (a full disk, say): a port fake, not a library internal.
        nonlocal failures
        if failures == 0:
            failures += 1
            raise OSError("disk full")
        return await real_submit(message)  # type: ignore[arg-type]

    ws.pipeline.submit = failing_once  # type: ignore[method-assign]
    status, _ = await fake.deliver(ws.events_url, event)
    assert status == 500  # not acknowledged: Slack will deliver it again
    assert (await fake.deliver(ws.events_url, event, retry_num=1))[0] == 200
    await ws.settle()
    assert len(ws.cases) == 1 and len(fake.calls_to("chat.postMessage")) == 1


async def test_an_unreadable_payload_is_acknowledged_and_dropped(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http")
    fake = ws.fake
    broken = fake.user_message("you idiot")
    broken["event"]["ts"] = "not-a-time"
    assert (await fake.deliver(ws.events_url, broken))[0] == 200  # retrying would not help
    barrier = fake.user_message("barrier, you idiot", channel="C0BARRIER")
    assert (await fake.deliver(ws.events_url, barrier))[0] == 200
    await ws.settle()
    assert [c.message.channel_id for c in ws.cases] == ["C0BARRIER"]


async def test_a_thread_in_an_exempt_channel_is_exempt_with_it(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http", exempt_channel_ids=("C0STAFF",))
    fake = ws.fake
    root = fake.user_message("staff only", channel="C0STAFF")
    reply = fake.user_message("you idiot", channel="C0STAFF", thread_ts=root["event"]["ts"])
    for body in (root, reply):
        assert (await fake.deliver(ws.events_url, body))[0] == 200
    await ws.settle()
    assert [(c.status, c.skipped_reason) for c in ws.cases] == [(CaseStatus.SKIPPED, "channel is exempt")] * 2
    assert fake.calls_to("chat.postMessage") == [] and ws.model.calls == []
