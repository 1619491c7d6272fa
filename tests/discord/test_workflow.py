"""Buttons, forms and commands driving the core's review and appeal services end to end.

The real discord.py against the local Discord, with the whole app (tests/discord/conftest.py
`BotProcess`): a flag is confirmed, dismissed, appealed, upheld and overturned, and what
Discord sees is checked: the deletions, the time-out and its lift, the DMs, the flag post
and the appeal post edited with their buttons disabled; also across restarts of the bot.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain import Case, CaseStatus, EffectKind, EffectRule
from tests.discord.conftest import BotProcess
from tests.discord.helpers import (
    acknowledged,
    answer_of,
    appeal_post_of,
    enabled_buttons,
    flag_post_of,
    followups,
    second_opinion_post_of,
    text_of,
)
from tests.fakes.discord_fake import EPHEMERAL, FakeDiscord

pytestmark = pytest.mark.asyncio

FLAG_ONLY = (EffectRule(effects=(EffectKind.FLAG,)),)


async def flagged(process: BotProcess, text: str = "you idiot") -> tuple[dict[str, Any], Case]:
    """Alice posts a violation; the pipeline decides it (and its effects ran)."""
    fake = process.fake
    message = await fake.post_message(fake.general, fake.alice, text)
    return message, await process.decided.wait_for(message["id"])


async def case_now(process: BotProcess, case_id: str) -> Case:
    found = await process.bot.store.cases.get(case_id)
    assert found is not None
    return found


def dms_to(fake: FakeDiscord, user: Any) -> list[dict[str, Any]]:
    channel = fake.dm_channel_of(user)
    return fake.messages_in(channel) if channel is not None else []


def last_edit(message: dict[str, Any]) -> dict[str, Any]:
    return message["edits"][-1]  # type: ignore[no-any-return]


async def test_confirm_and_delete_deletes_tells_the_author_and_updates_the_flag(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed(effect_rules=FLAG_ONLY)  # the default: flag only
    await bot_process.start()
    message, case = await flagged(bot_process)
    post = flag_post_of(fake, case.id)
    assert enabled_buttons(post) == [
        f"modbot:{a}:{case.id}" for a in ("confirm", "confirm-delete", "timeout", "dismiss", "reasoning")
    ]
    assert dms_to(fake, fake.alice) == []  # flag only: the author hears nothing yet

    reply = await answer_of(fake, await fake.click(post, f"modbot:confirm-delete:{case.id}", user=fake.mo))

    assert reply["content"].splitlines() == [
        f"Case {case.id} confirmed.",
        "Message deleted.",
        "The author was told by DM.",  # the server's default: tell the author when a confirmation acts
    ]
    assert message["id"] not in fake.messages
    [notice] = dms_to(fake, fake.alice)
    assert enabled_buttons(notice) == [f"modbot:appeal:{case.id}"]
    updated = flag_post_of(fake, case.id)
    assert enabled_buttons(updated) == [f"modbot:reasoning:{case.id}"]  # reasoning stays readable
    decision = {f["name"]: f["value"] for f in updated["embeds"][0]["fields"]}["Decision"]
    assert decision.startswith(f"Confirmed by <@{fake.mo.id}>")
    assert (await case_now(bot_process, case.id)).status is CaseStatus.CONFIRMED


async def test_a_member_who_clicks_confirm_is_refused_and_nothing_changes(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed(effect_rules=FLAG_ONLY)
    await bot_process.start()
    message, case = await flagged(bot_process)
    post = flag_post_of(fake, case.id)
    requests_before = len(fake.rec.requests)

    refused = await answer_of(fake, await fake.click(post, f"modbot:confirm-delete:{case.id}", user=fake.bob))

    assert "may not confirm cases" in refused["content"]
    assert message["id"] in fake.messages and post.get("edits") is None
    assert (await case_now(bot_process, case.id)).status is CaseStatus.OPEN
    # Only the interaction's own acknowledgement and answer reached Discord.
    later = [f"{r.method} {r.path}" for r in fake.rec.requests[requests_before:]]
    assert [r for r in later if not r.startswith(("POST /interactions/", "POST /webhooks/"))] == []


async def test_show_reasoning_is_for_moderators_only(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed(effect_rules=FLAG_ONLY)
    await bot_process.start()
    _, case = await flagged(bot_process)
    post = flag_post_of(fake, case.id)

    member = await answer_of(fake, await fake.click(post, f"modbot:reasoning:{case.id}", user=fake.alice))
    assert "may not see cases" in member["content"] and "insult" not in text_of(member)
    moderator = await answer_of(fake, await fake.click(post, f"modbot:reasoning:{case.id}", user=fake.mo))
    [embed] = moderator["embeds"]
    assert embed["title"] == f"Why the model flagged case {case.id}" and embed["description"] == "insult (HB1.a)"


async def test_dismiss_clears_the_case_without_telling_the_author(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed(effect_rules=FLAG_ONLY)
    await bot_process.start()
    message, case = await flagged(bot_process)

    reply = await answer_of(
        fake, await fake.click(flag_post_of(fake, case.id), f"modbot:dismiss:{case.id}", user=fake.mo)
    )

    assert reply["content"] == f"Case {case.id} dismissed: no action against the author."
    assert message["id"] in fake.messages and dms_to(fake, fake.alice) == []
    updated = flag_post_of(fake, case.id)
    assert {f["name"]: f["value"] for f in updated["embeds"][0]["fields"]}["Decision"].startswith("Dismissed by")
    assert enabled_buttons(updated) == [f"modbot:reasoning:{case.id}"]
    again = await answer_of(fake, await fake.click(updated, f"modbot:confirm:{case.id}", user=fake.mo))
    assert "already decided" in again["content"]


async def test_time_out_appeal_from_the_dm_and_overturn_across_restarts(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    rules = (EffectRule(effects=(EffectKind.FLAG, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR), timeout_minutes=60),)
    await bot_process.seed(effect_rules=rules)
    await bot_process.start()
    _, case = await flagged(bot_process)
    alice = fake.guild.members[fake.alice.id]
    assert alice.communication_disabled_until is not None  # timed out
    [notice] = dms_to(fake, fake.alice)
    dm = fake.dm_channel_of(fake.alice)
    assert dm is not None

    click = await fake.click(notice, f"modbot:appeal:{case.id}", user=fake.alice)
    form = await acknowledged(fake, click)
    assert form["type"] == 9 and form["data"]["custom_id"] == f"modbot:appeal-form:{case.id}"
    await bot_process.restart()  # she takes her time; the bot restarts meanwhile
    submit = await fake.submit_modal(
        f"modbot:appeal-form:{case.id}", {"statement": "We were joking, he laughed."}, user=fake.alice, channel=dm
    )
    filed = await answer_of(fake, submit)
    assert f"Your appeal of case {case.id} is filed" in filed["content"]
    appeal = appeal_post_of(fake, case.id)
    assert enabled_buttons(appeal) == [f"modbot:uphold:{case.id}", f"modbot:overturn:{case.id}"]
    fields = {f["name"]: f["value"] for f in appeal["embeds"][0]["fields"]}
    assert fields["Statement"] == "We were joking, he laughed." and fields["Second opinion"] == "Not in yet."
    # The second opinion is queued work: it follows in a post of its own once the model has given it.
    second = await fake.wait_for_state(lambda: second_opinion_post_of(fake, case.id), timeout=10)
    fields = {f["name"]: f["value"] for f in second["embeds"][0]["fields"]}
    assert "violation" in fields["Second opinion"]

    await bot_process.restart()
    decided = await answer_of(fake, await fake.click(appeal, f"modbot:overturn:{case.id}", user=fake.mo))

    assert decided["content"].splitlines() == [
        f"Appeal on case {case.id}: the decision is overturned.",
        "Time-out lifted.",
        "The author was told the outcome by DM.",
    ]
    assert alice.communication_disabled_until is None
    lifted = fake.rec.find("PATCH", f"/guilds/{fake.guild.id}/members/{fake.alice.id}")[-1]
    assert lifted.json == {"communication_disabled_until": None}
    outcome = dms_to(fake, fake.alice)[-1]
    assert "overturned" in outcome["embeds"][0]["description"]
    flag = flag_post_of(fake, case.id)
    assert {f["name"]: f["value"] for f in flag["embeds"][0]["fields"]}["Decision"].startswith("Appeal overturned")
    assert enabled_buttons(flag) == [f"modbot:reasoning:{case.id}"]
    assert enabled_buttons(appeal_post_of(fake, case.id)) == []  # the appeal post shows the decision
    assert (await case_now(bot_process, case.id)).status is CaseStatus.OVERTURNED


async def test_uphold_after_a_restart_keeps_the_decision_and_tells_the_author(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    rules = (EffectRule(effects=(EffectKind.FLAG, EffectKind.DELETE, EffectKind.NOTIFY_AUTHOR)),)
    await bot_process.seed(effect_rules=rules)
    await bot_process.start()
    message, case = await flagged(bot_process)
    assert message["id"] not in fake.messages
    [notice] = dms_to(fake, fake.alice)
    await acknowledged(fake, await fake.click(notice, f"modbot:appeal:{case.id}", user=fake.alice))
    dm = fake.dm_channel_of(fake.alice)
    assert dm is not None
    submit = await fake.submit_modal(
        f"modbot:appeal-form:{case.id}", {"statement": "Unfair."}, user=fake.alice, channel=dm
    )
    await answer_of(fake, submit)
    await bot_process.restart()

    reply = await answer_of(
        fake, await fake.click(appeal_post_of(fake, case.id), f"modbot:uphold:{case.id}", user=fake.mo)
    )

    assert reply["content"].splitlines()[0] == f"Appeal on case {case.id}: the decision is upheld."
    assert "kept their decision" in dms_to(fake, fake.alice)[-1]["embeds"][0]["description"]
    assert enabled_buttons(flag_post_of(fake, case.id)) == [f"modbot:reasoning:{case.id}"]
    assert (await case_now(bot_process, case.id)).status is CaseStatus.UPHELD
    # The appeal is decided once: a second click is refused in the core's words.
    again = await answer_of(
        fake, await fake.click(appeal_post_of(fake, case.id), f"modbot:overturn:{case.id}", user=fake.mo)
    )
    assert "already decided" in again["content"]


async def test_a_member_with_closed_dms_appeals_through_the_appeal_command(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    rules = (EffectRule(effects=(EffectKind.FLAG, EffectKind.DELETE, EffectKind.NOTIFY_AUTHOR)),)
    await bot_process.seed(effect_rules=rules)
    fake.alice.dms_open = False
    await bot_process.start()
    _, case = await flagged(bot_process)
    notify = next(r for r in case.effects if r.effect.kind is EffectKind.NOTIFY_AUTHOR)
    assert "does not accept DMs" in notify.detail

    listing = await answer_of(fake, await fake.command("appeal", user=fake.alice))
    assert f"`{case.id}`" in listing["content"]
    [[picker]] = [row["components"] for row in listing["components"]]
    assert picker["custom_id"] == "modbot:appeal-pick" and [o["value"] for o in picker["options"]] == [case.id]
    stored = next(m for m in fake.messages.values() if m.get("components") == listing["components"])
    form = await acknowledged(fake, await fake.select(stored, "modbot:appeal-pick", [case.id], user=fake.alice))
    assert form["type"] == 9 and form["data"]["custom_id"] == f"modbot:appeal-form:{case.id}"
    submit = await fake.submit_modal(
        f"modbot:appeal-form:{case.id}",
        {"statement": "I quoted it to report it."},
        user=fake.alice,
        channel=fake.general,
    )
    assert "is filed" in (await answer_of(fake, submit))["content"]
    assert (await case_now(bot_process, case.id)).status is CaseStatus.APPEALED

    # Bob has no case, and sees none of hers.
    nothing = await answer_of(fake, await fake.command("appeal", user=fake.bob))
    assert "no recent case" in nothing["content"] and case.id not in nothing["content"]


async def test_review_commands_for_moderators_who_prefer_them(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed(effect_rules=FLAG_ONLY)
    await bot_process.start()
    _, case = await flagged(bot_process)

    listed = await answer_of(fake, await fake.command("review list", user=fake.mo))
    assert f"`{case.id}` open" in listed["content"]
    member = await answer_of(fake, await fake.command("review list", user=fake.alice))
    assert "may not list cases" in member["content"]
    timeout = await fake.command(
        "review decide", case=case.id.lower(), action="timeout", note="third time", minutes=30, user=fake.mo
    )
    reply = await answer_of(fake, timeout)
    assert reply["content"].splitlines()[:2] == [f"Case {case.id} confirmed.", "Author timed out for 30 min."]
    assert fake.guild.members[fake.alice.id].communication_disabled_until is not None
    [decision] = await bot_process.bot.store.decisions.for_case(case.id)
    assert (decision.moderator_id, decision.note) == (fake.mo.id, "third time")

    [notice] = dms_to(fake, fake.alice)
    await acknowledged(fake, await fake.click(notice, f"modbot:appeal:{case.id}", user=fake.alice))
    dm = fake.dm_channel_of(fake.alice)
    assert dm is not None
    await answer_of(
        fake,
        await fake.submit_modal(f"modbot:appeal-form:{case.id}", {"statement": "Sorry."}, user=fake.alice, channel=dm),
    )
    waiting = await answer_of(fake, await fake.command("review appeals", user=fake.mo))
    assert f"`{case.id}`" in waiting["content"] and "Sorry." in waiting["content"]
    decided = await answer_of(
        fake, await fake.command("review appeal", case=case.id, decision="overturn", note="fair enough", user=fake.mo)
    )
    assert decided["content"].splitlines()[:2] == [
        f"Appeal on case {case.id}: the decision is overturned.",
        "Time-out lifted.",
    ]
    assert "fair enough" in text_of(dms_to(fake, fake.alice)[-1])


async def test_every_interaction_is_acknowledged_before_the_core_answers(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed(effect_rules=(EffectRule(effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR)),))
    await bot_process.start()
    _, case = await flagged(bot_process)
    [notice] = dms_to(fake, fake.alice)
    await acknowledged(fake, await fake.click(notice, f"modbot:appeal:{case.id}", user=fake.alice))
    dm = fake.dm_channel_of(fake.alice)
    assert dm is not None
    import asyncio

    bot_process.classifier.gate = asyncio.Event()  # the second opinion waits on a busy model
    submit = await fake.submit_modal(
        f"modbot:appeal-form:{case.id}", {"statement": "Please."}, user=fake.alice, channel=dm
    )
    ack = await acknowledged(fake, submit)
    assert ack == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert fake.rec.find("POST", f"/webhooks/{fake.app_id}/{submit['token']}") == []
    bot_process.classifier.gate.set()
    [answer] = await followups(fake, submit)
    assert "is filed" in answer["content"]
