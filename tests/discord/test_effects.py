"""Effects on Discord with their honest results: mentions never ping, failures are results, nothing loops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import effect_runner
from bot.domain import (
    Case,
    CaseStatus,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectRecord,
)
from bot.notices import (
    AppealFiled,
    AppealReminder,
    AppealView,
    Digest,
    ModelOutage,
    ModelRecovered,
    PolicyCount,
    WaitingAppeal,
)
from tests.discord.conftest import DiscordWorld
from tests.fakes.discord_fake import (
    ADMINISTRATOR,
    MANAGE_MESSAGES,
    buttons,
    rate_limited,
    server_error,
    unknown_message,
)

pytestmark = pytest.mark.asyncio

NO_MENTIONS = {"parse": []}


def effect(case: Case, kind: EffectKind) -> EffectRecord:
    return next(r for r in case.effects if r.effect.kind is kind)


def bot_posts(world: DiscordWorld) -> list[dict]:
    fake = world.fake
    return [m for m in fake.messages.values() if m["author"]["id"] == fake.bot_user.id]


def warnings_in_mod_log(world: DiscordWorld) -> list[dict]:
    return [
        m
        for m in world.fake.messages_in(world.fake.mod_log)
        if m["embeds"] and m["embeds"][0]["title"].startswith("modbot is missing a permission")
    ]


async def test_mentions_in_the_content_are_echoed_but_never_ping(running: DiscordWorld) -> None:
    fake = running.fake
    text = f"@everyone @here <@&{fake.mod_role.id}> <@{fake.bob.id}> <@!{fake.mo.id}> you idiot"
    message = await fake.post_message(fake.general, fake.alice, text)
    case = await running.decided.wait_for(message["id"])
    assert all(r.outcome is EffectOutcome.DONE for r in case.effects), case.effects
    posts = bot_posts(running)
    assert len(posts) == 3  # the flag, the moderator's DM, the author's DM
    for post in posts:
        assert post["pings"] == []
        assert post["allowed_mentions"] == NO_MENTIONS
    [flag] = fake.messages_in(fake.mod_log)
    excerpt = flag["embeds"][0]["description"]
    # Shown as text (a zero-width space after the sigil), readable, and inert.
    assert "@\u200beveryone" in excerpt and f"<@\u200b&{fake.mod_role.id}>" in excerpt
    assert f"<@\u200b{fake.bob.id}>" in excerpt and "@everyone" not in excerpt
    # The author is shown as a mention (rendered as a name, never a ping inside an embed).
    assert flag["embeds"][0]["fields"][0]["value"].startswith(f"<@{fake.alice.id}>")


async def test_the_moderator_role_is_pinged_only_where_the_settings_ask(world: DiscordWorld) -> None:
    fake = world.fake
    world.ping_role = fake.mod_role.id
    await world.start_bot()
    message = await world.fake.post_message(fake.general, fake.alice, f"<@&{fake.mod_role.id}> @everyone idiot")
    await world.decided.wait_for(message["id"])
    [flag] = fake.messages_in(fake.mod_log)
    assert flag["content"] == f"<@&{fake.mod_role.id}>"
    assert flag["pings"] == [f"role:{fake.mod_role.id}"]  # the excerpt's @everyone and role stay inert
    allowed = flag["allowed_mentions"]
    assert allowed["parse"] == [] and [str(r) for r in allowed["roles"]] == [fake.mod_role.id]
    assert all(p["pings"] == [] for p in bot_posts(world) if p is not flag)


async def test_a_missing_permission_fails_the_effect_warns_once_and_the_bot_keeps_running(
    running: DiscordWorld,
) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG, EffectKind.DELETE))
    full = fake.bot_role.permissions
    await fake.set_role_permissions(fake.bot_role, full & ~MANAGE_MESSAGES)
    first = await fake.post_message(fake.general, fake.alice, "you idiot")
    second = await fake.post_message(fake.general, fake.bob, "you idiot too")
    for message in (first, second):
        case = await running.decided.wait_for(message["id"])
        delete = effect(case, EffectKind.DELETE)
        assert delete.outcome is EffectOutcome.FAILED
        assert delete.detail == "missing permission: Manage Messages (Discord 50013)"
        assert effect(case, EffectKind.FLAG).outcome is EffectOutcome.DONE
        assert message["id"] in fake.messages
    [warning] = warnings_in_mod_log(running)
    assert "Manage Messages" in warning["embeds"][0]["title"] and warning["pings"] == []
    assert len(fake.rec.find("DELETE", f"/channels/{fake.general.id}/messages/{first['id']}")) == 1  # no retry loop

    # Still running: the permission given back, deletes work again.
    await fake.set_role_permissions(fake.bot_role, full)
    third = await fake.post_message(fake.general, fake.alice, "still an idiot")
    assert effect(await running.decided.wait_for(third["id"]), EffectKind.DELETE).outcome is EffectOutcome.DONE
    # Taken away again later: that is news, and warned about once more.
    await fake.set_role_permissions(fake.bot_role, full & ~MANAGE_MESSAGES)
    fourth = await fake.post_message(fake.general, fake.bob, "idiot, again")
    await running.decided.wait_for(fourth["id"])
    assert len(warnings_in_mod_log(running)) == 2


async def test_a_message_already_gone_counts_as_deleted(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG, EffectKind.DELETE))
    message_id = fake.snowflake()
    # Someone else deleted it between the post and the bot's DELETE.
    fake.rec.inject("DELETE", f"/channels/{fake.general.id}/messages/{message_id}", unknown_message)
    await fake.post_message(fake.general, fake.alice, "you idiot", message_id=message_id)
    case = await running.decided.wait_for(message_id)
    delete = effect(case, EffectKind.DELETE)
    assert (delete.outcome, delete.detail) == (EffectOutcome.DONE, "already deleted")
    assert warnings_in_mod_log(running) == []


async def test_closed_dms_are_recorded_with_the_reason(running: DiscordWorld) -> None:
    fake = running.fake
    fake.alice.dms_open = False
    fake.mo.dms_open = False
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    case = await running.decided.wait_for(message["id"])
    notify = effect(case, EffectKind.NOTIFY_AUTHOR)
    assert notify.outcome is EffectOutcome.FAILED
    assert notify.detail == "the member does not accept DMs from modbot (Discord 50007)"
    moderators = effect(case, EffectKind.DM_MODERATORS)
    assert moderators.outcome is EffectOutcome.FAILED
    assert moderators.detail == "sent to 0 of 1 moderators; 1 with DMs closed (Discord 50007)"
    assert effect(case, EffectKind.DELETE).outcome is EffectOutcome.DONE


async def test_a_503_is_retried_a_bounded_number_of_times(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    flag_path = f"/channels/{fake.mod_log.id}/messages"
    fake.rec.inject("POST", flag_path, lambda: server_error(503), times=1)
    recovered = await fake.post_message(fake.general, fake.alice, "you idiot")
    assert effect(await running.decided.wait_for(recovered["id"]), EffectKind.FLAG).outcome is EffectOutcome.DONE
    assert len(fake.rec.find("POST", flag_path)) == 2

    fake.rec.inject("POST", flag_path, lambda: server_error(503), times=3)
    lost = await fake.post_message(fake.general, fake.bob, "you idiot")
    flag = effect(await running.decided.wait_for(lost["id"]), EffectKind.FLAG)
    assert (flag.outcome, flag.detail) == (EffectOutcome.FAILED, "Discord failed with 503 after retries")
    assert len(fake.rec.find("POST", flag_path)) == 2 + 3  # one try and two retries, then it stops
    # The bot keeps running.
    after = await fake.post_message(fake.general, fake.alice, "idiot")
    assert effect(await running.decided.wait_for(after["id"]), EffectKind.FLAG).outcome is EffectOutcome.DONE


async def test_a_429_is_waited_out_by_the_library(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    flag_path = f"/channels/{fake.mod_log.id}/messages"
    fake.rec.inject("POST", flag_path, rate_limited(0.05))
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    assert effect(await running.decided.wait_for(message["id"]), EffectKind.FLAG).outcome is EffectOutcome.DONE
    assert len(fake.rec.find("POST", flag_path)) == 2


async def test_a_member_above_the_bot_cannot_be_timed_out_and_admins_are_told_why(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG, EffectKind.TIMEOUT))
    admins = fake.add_role(fake.guild, "Admins", ADMINISTRATOR, position=5)
    fake.guild.members[fake.bob.id].roles.append(admins.id)
    message = await fake.post_message(fake.general, fake.bob, "you idiot")
    timeout = effect(await running.decided.wait_for(message["id"]), EffectKind.TIMEOUT)
    assert timeout.outcome is EffectOutcome.FAILED
    assert timeout.detail.startswith("missing permission: a role above the member's highest role")
    [warning] = warnings_in_mod_log(running)
    assert "a role above" in warning["embeds"][0]["title"]


async def test_no_mod_channel_fails_the_flag_with_what_to_do(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(
        effects=(EffectKind.FLAG, EffectKind.DM_MODERATORS), mod_channel_id=None, moderator_role_ids=()
    )
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    case = await running.decided.wait_for(message["id"])
    assert effect(case, EffectKind.FLAG).detail == "no mod channel is set for this server: /modbot setup sets one"
    assert effect(case, EffectKind.DM_MODERATORS).detail == (
        "no moderator roles are set for this server: /modbot setup sets them"
    )
    assert all(r.outcome is EffectOutcome.FAILED for r in case.effects)


async def decided_copy(world: DiscordWorld, case: Case, status: CaseStatus, by: str) -> EffectContext:
    """The context the core builds for an effect of a decided case (bot.effect_runner.build_context)."""
    stored = await world.store.cases.get(case.id)
    assert stored is not None
    decided = stored.model_copy(update={"status": status, "decided_by": by, "decided_at": datetime.now(UTC)})
    return await effect_runner.build_context(world.store, decided)


async def test_a_decision_updates_the_flag_post_and_disables_its_buttons(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    case = await running.decided.wait_for(message["id"])
    context = await decided_copy(running, case, CaseStatus.CONFIRMED, fake.mo.id)
    assert context.flag_reference == effect(case, EffectKind.FLAG).reference

    result = await running.bot.sink.execute(Effect(kind=EffectKind.UPDATE_FLAG, requested_by=fake.mo.id), context)
    assert (result.outcome, result.reference) == (EffectOutcome.DONE, context.flag_reference)
    [flag] = fake.messages_in(fake.mod_log)
    assert len(flag["edits"]) == 1 and flag["edits"][0]["allowed_mentions"] == NO_MENTIONS
    decision = next(f for f in flag["embeds"][0]["fields"] if f["name"] == "Decision")
    assert decision["value"].startswith(f"Confirmed by <@{fake.mo.id}>")
    states = {cid.split(":")[1]: b.get("disabled", False) for cid, b in buttons(flag).items()}
    assert states == {"confirm": True, "confirm-delete": True, "timeout": True, "dismiss": True, "reasoning": False}

    # The flag post deleted by a moderator: the update fails and says why.
    del fake.messages[flag["id"]]
    gone = await running.bot.sink.execute(Effect(kind=EffectKind.UPDATE_FLAG), context)
    assert (gone.outcome, gone.detail) == (EffectOutcome.FAILED, "the flag post no longer exists (deleted in Discord)")


async def test_an_overturn_lifts_the_timeout_and_tells_the_author(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG, EffectKind.TIMEOUT))
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    case = await running.decided.wait_for(message["id"])
    assert fake.guild.members[fake.alice.id].communication_disabled_until is not None
    context = await decided_copy(running, case, CaseStatus.OVERTURNED, fake.mo.id)

    lift = Effect(kind=EffectKind.LIFT_TIMEOUT, reason="appeal overturned", requested_by=fake.mo.id)
    assert (await running.bot.sink.execute(lift, context)).outcome is EffectOutcome.DONE
    assert fake.guild.members[fake.alice.id].communication_disabled_until is None
    patch = fake.rec.find("PATCH", f"/guilds/{fake.guild.id}/members/{fake.alice.id}")[-1]
    assert patch.json == {"communication_disabled_until": None}

    outcome = Effect(
        kind=EffectKind.NOTIFY_APPEAL_OUTCOME, appeal_outcome="overturned", reason="Fair point, <@&1> *sorry*"
    )
    result = await running.bot.sink.execute(outcome, context)
    assert result.outcome is EffectOutcome.DONE
    dm = fake.dm_channel_of(fake.alice)
    assert dm is not None and result.reference is not None and result.reference.startswith(f"{dm.id}/")
    [told] = fake.messages_in(dm)
    embed = told["embeds"][0]
    assert "overturned" in embed["description"] and told["components"] == []  # no appeal of an appeal
    assert embed["fields"] == [
        {"name": "Moderator's note", "value": "Fair point, <@\u200b&1> \\*sorry\\*", "inline": False}
    ]


async def test_notices_reach_the_mod_channel_within_discords_limits(running: DiscordWorld) -> None:
    fake = running.fake
    settings = await running.store.settings.get("discord", fake.guild.id)
    assert settings is not None
    now = datetime.now(UTC)
    view = AppealView(
        case_id="0123456789AB",
        server_id=fake.guild.id,
        channel_id=fake.general.id,
        message_id="42",
        author_id=fake.alice.id,
        text="x" * 5000,
        case_status=CaseStatus.APPEALED,
        original=(),
        appeal_id=7,
        statement="@everyone it was a **joke** " + "y" * 2000,
        appeal_status="pending",  # type: ignore[arg-type]
        second_opinion=(),
        second_opinion_error="the model was down",
        filed_at=now,
    )
    notices = [
        AppealFiled(appeal=view),
        AppealReminder(
            server_id=fake.guild.id,
            limit_hours=24,
            appeals=tuple(
                WaitingAppeal(case_id=f"CASE{i:08d}", appeal_id=i, filed_at=now, waiting_hours=30) for i in range(200)
            ),
        ),
        Digest(
            server_id=fake.guild.id,
            day="2026-11-30",
            period_start=now - timedelta(days=1),
            period_end=now,
            messages=1000,
            flagged=12,
            confirmed=9,
            dismissed=3,
            appeals_filed=2,
            appeals_decided=1,
            overturned=1,
            overturn_rate=1.0,
            median_latency_ms=850.0,
            by_policy=tuple(PolicyCount(policy=f"policy-{i}", rule_id=None, flags=i) for i in range(100)),
        ),
        ModelOutage(since=now, problem="connection refused " * 100),
        ModelRecovered(outage_started=now - timedelta(hours=1), recovered_at=now),
    ]
    for notice in notices:
        result = await running.bot.sink.post(settings, notice)
        assert result.outcome is EffectOutcome.DONE, (notice.kind, result.detail)
    posts = fake.messages_in(fake.mod_log)
    assert len(posts) == len(notices)
    appeal = posts[0]
    assert [cid.split(":")[1] for cid in buttons(appeal)] == ["uphold", "overturn"]
    assert all(p["pings"] == [] and p["allowed_mentions"] == NO_MENTIONS for p in posts)

    unset = settings.model_copy(update={"mod_channel_id": None})
    result = await running.bot.sink.post(unset, notices[-1])
    assert result.outcome is EffectOutcome.UNSUPPORTED
