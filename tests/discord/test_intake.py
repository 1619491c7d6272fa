"""Intake through the real discord.py: what members post reaches the core once, and what bots post does not."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from bot.domain import CaseStatus, EffectKind, EffectOutcome
from tests.discord.conftest import DiscordWorld
from tests.fakes.discord_fake import FakeDiscord, FakeUser, custom_ids

pytestmark = pytest.mark.asyncio


def requests_after(fake: FakeDiscord, mark: int) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.rec.requests[mark:]]


async def test_a_violating_message_produces_the_configured_effects_in_order(running: DiscordWorld) -> None:
    fake = running.fake
    mark = len(fake.rec.requests)
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    case = await running.decided.wait_for(message["id"])

    assert case.status is CaseStatus.OPEN and case.rule_ids == ("HB1.a",)
    assert [(r.effect.kind, r.outcome) for r in case.effects] == [
        (kind, EffectOutcome.DONE)
        for kind in (
            EffectKind.FLAG,
            EffectKind.DM_MODERATORS,
            EffectKind.DELETE,
            EffectKind.TIMEOUT,
            EffectKind.NOTIFY_AUTHOR,
        )
    ]
    mo_dm, alice_dm = fake.dm_channel_of(fake.mo), fake.dm_channel_of(fake.alice)
    assert mo_dm is not None and alice_dm is not None
    assert requests_after(fake, mark) == [
        ("POST", f"/channels/{fake.mod_log.id}/messages"),  # the flag
        ("POST", "/users/@me/channels"),  # the moderator's DM channel
        ("POST", f"/channels/{mo_dm.id}/messages"),
        ("DELETE", f"/channels/{fake.general.id}/messages/{message['id']}"),
        ("PATCH", f"/guilds/{fake.guild.id}/members/{fake.alice.id}"),
        ("POST", "/users/@me/channels"),  # the author's DM channel
        ("POST", f"/channels/{alice_dm.id}/messages"),
    ]
    # The flag post's reference is what UPDATE_FLAG edits later.
    [flag] = fake.messages_in(fake.mod_log)
    assert case.effects[0].reference == f"{fake.mod_log.id}/{flag['id']}"
    assert custom_ids(flag) == [
        f"modbot:{action}:{case.id}" for action in ("confirm", "confirm-delete", "timeout", "dismiss", "reasoning")
    ]
    assert fake.guild.members[fake.alice.id].communication_disabled_until is not None
    timeout = fake.rec.find("PATCH", f"/guilds/{fake.guild.id}/members/{fake.alice.id}")[0]
    # discord.py percent-encodes the audit reason; Discord decodes it.
    assert unquote(timeout.headers["X-Audit-Log-Reason"]) == f"modbot case {case.id}: time-out of 15 min (HB1.a)"
    assert message["id"] not in fake.messages
    # The flag post came back over the gateway as MESSAGE_CREATE, as on Discord, and the
    # bot did not take its own message in.
    assert running.decided.of(flag["id"]) == []


async def test_a_clean_message_produces_no_call_at_all(running: DiscordWorld) -> None:
    fake = running.fake
    mark = len(fake.rec.requests)
    clean = await fake.post_message(fake.general, fake.alice, "good morning everyone")
    case = await running.decided.wait_for(clean["id"])  # decided, and its (no) effects carried out
    assert case.status is CaseStatus.CLEAN and case.effects == ()
    # Barrier: a violation posted after it is flagged; by then the clean one is long done.
    barrier = await fake.post_message(fake.general, fake.bob, "bob here, you idiot")
    await running.decided.wait_for(barrier["id"])
    assert clean["id"] in fake.messages
    calls = requests_after(fake, mark)
    assert not [c for c in calls if clean["id"] in c[1]]
    assert ("PATCH", f"/guilds/{fake.guild.id}/members/{fake.alice.id}") not in calls
    assert fake.guild.members[fake.alice.id].communication_disabled_until is None


async def test_a_replayed_message_create_doubles_nothing(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    await running.decided.wait_for(message["id"])
    await fake.redispatch("MESSAGE_CREATE", message)  # Discord delivers at least once
    barrier = await fake.post_message(fake.general, fake.bob, "you idiot too")
    await running.decided.wait_for(barrier["id"])
    await running.pipeline.drain()  # type: ignore[union-attr]
    assert len(running.decided.of(message["id"])) == 1
    assert len(fake.messages_in(fake.mod_log)) == 2  # one flag each, none doubled
    assert len(running.classifier.calls) == 2


async def test_a_resumed_session_gets_missed_events_once_and_redelivered_ones_do_nothing(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    first = await fake.post_message(fake.general, fake.alice, "you idiot")
    await running.decided.wait_for(first["id"])
    # Discord asks the bot to reconnect; on RESUME it replays the last event again (at
    # least once) besides the ones after the bot's sequence number.
    fake.redeliver_on_resume(1)
    session = await fake.reconnect()
    assert session.resumes == 1
    resume = [f for f in fake.gateway_frames_in if f["op"] == 6]
    assert resume and resume[-1]["d"]["session_id"] == session.session_id
    later = await fake.post_message(fake.general, fake.bob, "you idiot as well")
    await running.decided.wait_for(later["id"])
    await running.pipeline.drain()  # type: ignore[union-attr]
    assert len(running.decided.of(first["id"])) == 1
    assert len(fake.messages_in(fake.mod_log)) == 2


async def test_events_sent_while_disconnected_arrive_on_resume(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    session = next(iter(fake.sessions.values()))
    assert session.ws is not None
    await session.ws.close()  # the connection drops (code 1000 from the server)
    # Discord keeps the session's events for a resume; this one is sent while no socket is open.
    missed = await fake.post_message(fake.general, fake.alice, "you idiot, while it was away")
    case = await running.decided.wait_for(missed["id"], timeout=20)
    assert case.status is CaseStatus.OPEN and session.resumes >= 1


async def test_threads_and_forum_posts_carry_their_parent_channel(running: DiscordWorld) -> None:
    fake = running.fake
    thread = await fake.create_thread(fake.general, "a thread")
    in_thread = await fake.post_message(thread, fake.alice, "hello from a thread")
    post = await fake.create_forum_post(fake.forum, "Help please", "my question", author=fake.bob)
    thread_case = await running.decided.wait_for(in_thread["id"])
    post_case = await running.decided.wait_for(post["id"])
    assert (thread_case.message.channel_id, thread_case.message.parent_channel_id) == (thread.id, fake.general.id)
    assert (post_case.message.channel_id, post_case.message.parent_channel_id) == (post["channel_id"], fake.forum.id)
    assert post_case.message.scope_channel_id == fake.forum.id


async def test_a_thread_the_cache_does_not_know_is_looked_up_once(running: DiscordWorld) -> None:
    fake = running.fake
    thread = await fake.create_thread(fake.general, "made while the bot was away", announce=False)
    first = await fake.post_message(thread, fake.alice, "one")
    second = await fake.post_message(thread, fake.bob, "two")
    for message in (first, second):
        case = await running.decided.wait_for(message["id"])
        assert (case.message.channel_id, case.message.parent_channel_id) == (thread.id, fake.general.id)
    assert len(fake.rec.find("GET", f"/channels/{thread.id}")) == 1


async def test_an_edit_of_a_message_the_bot_never_saw_is_judged_as_an_edit(running: DiscordWorld) -> None:
    fake = running.fake
    # Posted while the bot was away (nothing dispatched), edited now: only on_raw_message_edit fires.
    before = fake.message_payload(fake.general, fake.alice, "hello")
    fake.messages[before["id"]] = before
    await fake.unfurl_embeds(before)  # a link preview: MESSAGE_UPDATE without an edit
    edited = await fake.edit_message_as_author(before, "hello, you idiot")
    await fake.redispatch("MESSAGE_UPDATE", edited)  # and the edit delivered twice
    case = await running.decided.wait_for(before["id"])
    barrier = await fake.post_message(fake.general, fake.bob, "you idiot")
    await running.decided.wait_for(barrier["id"])
    await running.pipeline.drain()  # type: ignore[union-attr]
    assert len(running.decided.of(before["id"])) == 1
    assert case.status is CaseStatus.OPEN and case.message.text == "hello, you idiot"
    assert case.message.edited and case.message.edited_at is not None
    assert case.message.edited_at > case.message.sent_at


async def test_an_edit_to_abuse_produces_a_case(running: DiscordWorld) -> None:
    fake = running.fake
    message = await fake.post_message(fake.general, fake.alice, "hello there")
    clean = await running.decided.wait_for(message["id"])
    assert clean.status is CaseStatus.CLEAN
    await fake.edit_message_as_author(message, "hello there, you idiot")
    edited = await running.decided.wait_for(message["id"], count=2, timeout=3)
    assert edited.status is CaseStatus.OPEN and edited.message.edited


async def test_the_bot_other_bots_and_webhooks_are_not_taken_in(running: DiscordWorld) -> None:
    fake = running.fake
    other_bot = fake.add_user("otherbot", bot=True)
    fake.add_member(fake.guild, other_bot)
    proxy = FakeUser(fake.snowflake(), "Mia (proxied)", bot=True)
    ignored = [
        await fake.post_message(fake.general, other_bot, "you idiot, says a bot"),
        await fake.post_message(fake.general, fake.bot_user, "you idiot, says modbot itself"),
        await fake.post_message(fake.general, proxy, "you idiot, through a webhook", webhook_id=fake.snowflake()),
        await fake.post_message(fake.general, fake.alice, "", message_type=7),  # "alice joined the server"
    ]
    barrier = await fake.post_message(fake.general, fake.bob, "you idiot")
    await running.decided.wait_for(barrier["id"])
    await running.pipeline.drain()  # type: ignore[union-attr]
    assert [m for m in ignored if running.decided.of(m["id"])] == []
    assert [c.message.text for c in running.classifier.calls] == ["you idiot"]


async def test_webhook_messages_are_taken_in_where_the_server_enables_them(running: DiscordWorld) -> None:
    fake = running.fake
    running.webhook_servers.add(fake.guild.id)
    proxy = FakeUser(fake.snowflake(), "Mia (proxied)", bot=True)
    message = await fake.post_message(fake.general, proxy, "you idiot", webhook_id=fake.snowflake())
    case = await running.decided.wait_for(message["id"])
    assert case.status is CaseStatus.OPEN
    assert (case.message.author.id, case.message.author.name, case.message.author.is_bot) == (
        proxy.id,
        "Mia (proxied)",
        False,
    )
    # A webhook is no member: the time-out fails honestly instead of pretending.
    timeout = next(r for r in case.effects if r.effect.kind is EffectKind.TIMEOUT)
    assert timeout.outcome is EffectOutcome.FAILED and "no longer in the server" in timeout.detail


async def test_attachments_are_noted_and_roles_carried(running: DiscordWorld) -> None:
    fake = running.fake
    with_text = await fake.post_message(fake.general, fake.mo, "look at this", attachments=[("cat.png", "image/png")])
    only_file = await fake.post_message(fake.general, fake.alice, "", attachments=[("doc.pdf", "application/pdf")])
    case = await running.decided.wait_for(with_text["id"])
    assert [(a.name, a.content_type) for a in case.message.attachments] == [("cat.png", "image/png")]
    assert case.message.author.roles == (fake.mod_role.id,)
    skipped = await running.decided.wait_for(only_file["id"])
    assert skipped.status is CaseStatus.SKIPPED and skipped.skipped_reason == "attachments only: not classified"


async def test_the_bot_asks_for_exactly_the_intents_it_needs(running: DiscordWorld) -> None:
    [session] = running.fake.sessions.values()
    # guilds (1) + members (2, privileged) + guild messages (512) + message content (32768, privileged)
    assert session.intents == 1 | 2 | 512 | 32768
    assert session.shard is None  # MODBOT_DISCORD_SHARDS unset: a plain client
