"""Buttons and the appeal form through the real discord.py: acknowledged at once, handed to the core, after restarts."""

from __future__ import annotations

import pytest

from adapters.discord.buttons import ClickActor
from adapters.discord.custom_ids import CaseAction
from adapters.discord.replies import FAILED, Reply
from bot.domain import EffectKind
from tests.discord.conftest import DiscordWorld
from tests.fakes.discord_fake import EPHEMERAL, MANAGE_GUILD, FakeDiscord, buttons

pytestmark = pytest.mark.asyncio


async def flagged(world: DiscordWorld, text: str = "you idiot") -> tuple[str, dict]:
    """A case flagged in the mod channel: its id and its flag post."""
    fake = world.fake
    message = await fake.post_message(fake.general, fake.alice, text)
    case = await world.decided.wait_for(message["id"])
    [post] = [m for m in fake.messages_in(fake.mod_log) if case.id in m["embeds"][0]["footer"]["text"]]
    return case.id, post


async def answered(fake: FakeDiscord, interaction: dict) -> tuple[dict, dict]:
    """The interaction's acknowledgement and the follow-up that answers it."""
    callback = await fake.rec.wait_for("POST", f"/interactions/{interaction['id']}/{interaction['token']}/callback")
    followup = await fake.rec.wait_for("POST", f"/webhooks/{fake.app_id}/{interaction['token']}")
    return callback.json, followup.json


async def test_confirm_is_acknowledged_at_once_and_passed_to_the_core_with_the_moderators_roles(
    running: DiscordWorld,
) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    case_id, post = await flagged(running)
    click = await fake.click(post, f"modbot:confirm:{case_id}", user=fake.mo)
    callback, followup = await answered(fake, click)
    assert callback == {"type": 5, "data": {"flags": EPHEMERAL}}  # "thinking", only the moderator sees it
    assert followup["content"] == "Done." and followup["flags"] & EPHEMERAL
    assert followup["allowed_mentions"] == {"parse": []}
    [(name, actor, called_case, action)] = running.actions.calls
    assert (name, called_case, action) == ("review", case_id, CaseAction.CONFIRM)
    assert actor == ClickActor(
        user_id=fake.mo.id, name="mo", server_id=fake.guild.id, role_ids=(fake.mod_role.id,), is_admin=False
    )


async def test_every_review_button_reaches_the_core_with_its_action(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    case_id, post = await flagged(running)
    for action in (CaseAction.CONFIRM_DELETE, CaseAction.TIMEOUT, CaseAction.DISMISS):
        await answered(fake, await fake.click(post, f"modbot:{action.value}:{case_id}", user=fake.mo))
    assert [(c[0], c[3]) for c in running.actions.calls] == [
        ("review", CaseAction.CONFIRM_DELETE),
        ("review", CaseAction.TIMEOUT),
        ("review", CaseAction.DISMISS),
    ]


async def test_buttons_work_after_a_restart(world: DiscordWorld) -> None:
    fake = world.fake
    await world.configure(effects=(EffectKind.FLAG,))
    await world.start_bot()
    case_id, post = await flagged(world)
    await world.restart_bot()  # a new process: no view, no memory of the post
    owner = fake.guild.members[fake.guild.owner_id].user
    click = await fake.click(post, f"modbot:dismiss:{case_id}", user=owner)
    callback, followup = await answered(fake, click)
    assert callback["type"] == 5 and followup["content"] == "Done."
    [(_, actor, called_case, action)] = world.actions.calls
    assert (called_case, action, actor.user_id, actor.is_admin) == (case_id, CaseAction.DISMISS, owner.id, True)


async def test_show_reasoning_is_private_and_long_reasoning_fits(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    running.actions.reasoning_text = "step by step, @everyone *reads* this " + "x" * 6000
    case_id, post = await flagged(running)
    _, followup = await answered(fake, await fake.click(post, f"modbot:reasoning:{case_id}", user=fake.mo))
    assert followup["flags"] & EPHEMERAL and not followup.get("content")
    [embed] = followup["embeds"]
    assert len(embed["description"]) <= 4096 and "@\u200beveryone" in embed["description"]
    assert running.actions.calls[0][0] == "reasoning"


async def test_the_author_appeals_from_the_dm_through_a_form_also_after_a_restart(world: DiscordWorld) -> None:
    fake = world.fake
    await world.configure(effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    await world.start_bot()
    message = await fake.post_message(fake.general, fake.alice, "you idiot")
    case = await world.decided.wait_for(message["id"])
    dm = fake.dm_channel_of(fake.alice)
    assert dm is not None
    [notice] = fake.messages_in(dm)
    assert list(buttons(notice)) == [f"modbot:appeal:{case.id}"]

    click = await fake.click(notice, f"modbot:appeal:{case.id}", user=fake.alice)
    form = await fake.rec.wait_for("POST", f"/interactions/{click['id']}/{click['token']}/callback")
    assert form.json["type"] == 9 and form.json["data"]["custom_id"] == f"modbot:appeal-form:{case.id}"
    [field] = [c for row in form.json["data"]["components"] for c in row["components"]]
    assert (field["custom_id"], field["max_length"], field["required"]) == ("statement", 1000, True)

    await world.restart_bot()  # the member takes a while to write; the bot restarts meanwhile
    submit = await fake.submit_modal(
        f"modbot:appeal-form:{case.id}", {"statement": "It was a joke between friends."}, user=fake.alice, channel=dm
    )
    callback, followup = await answered(fake, submit)
    assert callback == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert followup["content"] == "Your appeal is filed."
    [(name, actor, called_case, statement)] = world.actions.calls
    assert (name, called_case, statement) == ("appeal", case.id, "It was a joke between friends.")
    assert (actor.user_id, actor.server_id, actor.role_ids, actor.is_admin) == (fake.alice.id, None, (), False)


async def test_a_form_submitted_once_is_answered_once(running: DiscordWorld) -> None:
    fake = running.fake
    dm_user = fake.alice
    await running.configure(effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    message = await fake.post_message(fake.general, dm_user, "you idiot")
    case = await running.decided.wait_for(message["id"])
    dm = fake.dm_channel_of(dm_user)
    assert dm is not None
    [notice] = fake.messages_in(dm)
    click = await fake.click(notice, f"modbot:appeal:{case.id}", user=dm_user)
    await fake.rec.wait_for("POST", f"/interactions/{click['id']}/{click['token']}/callback")
    # In the same process that opened the form: discord.py must not answer it a second time.
    submit = await fake.submit_modal(f"modbot:appeal-form:{case.id}", {"statement": "sorry"}, user=dm_user, channel=dm)
    await answered(fake, submit)
    barrier = await fake.submit_modal(f"modbot:appeal-form:{case.id}", {"statement": "again"}, user=dm_user, channel=dm)
    await answered(fake, barrier)
    assert len(fake.rec.find("POST", f"/interactions/{submit['id']}/{submit['token']}/callback")) == 1
    assert len(fake.interactions[submit["token"]]["callbacks"]) == 1
    assert [c[3] for c in running.actions.calls] == ["sorry", "again"]


async def test_uphold_and_overturn_reach_the_core(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    case_id, _ = await flagged(running)
    # The appeal post's buttons, as the sink posts them for an AppealFiled notice.
    post = {
        **fake.message_payload(fake.mod_log, fake.bot_user, ""),
        "components": [
            {
                "type": 1,
                "components": [
                    {"type": 2, "style": 4, "label": "Uphold", "custom_id": f"modbot:uphold:{case_id}"},
                    {"type": 2, "style": 3, "label": "Overturn", "custom_id": f"modbot:overturn:{case_id}"},
                ],
            }
        ],
    }
    fake.messages[post["id"]] = post
    manager = fake.add_user("manager")
    managers = fake.add_role(fake.guild, "Managers", MANAGE_GUILD)
    fake.add_member(fake.guild, manager, roles=[managers.id])
    await fake.dispatch("GUILD_MEMBER_ADD", {"guild_id": fake.guild.id, **fake.guild.members[manager.id].payload()})
    await answered(fake, await fake.click(post, f"modbot:overturn:{case_id}", user=manager))
    await answered(fake, await fake.click(post, f"modbot:uphold:{case_id}", user=fake.mo))
    [(_, by_manager, _, first), (_, by_mo, _, second)] = running.actions.calls
    assert (first, second) == (CaseAction.OVERTURN, CaseAction.UPHOLD)
    assert by_manager.is_admin and not by_mo.is_admin  # Manage Server counts as the server's admin


async def test_a_failure_in_the_core_is_still_answered(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    case_id, post = await flagged(running)

    async def broken(actor: ClickActor, case_id: str, action: CaseAction) -> Reply:
        raise RuntimeError("the store is gone")

    running.actions.review = broken  # type: ignore[method-assign]
    _, followup = await answered(fake, await fake.click(post, f"modbot:confirm:{case_id}", user=fake.mo))
    assert followup["content"] == FAILED.content


async def test_a_click_on_a_button_that_is_not_modbots_is_left_alone(running: DiscordWorld) -> None:
    fake = running.fake
    await running.configure(effects=(EffectKind.FLAG,))
    case_id, post = await flagged(running)
    stranger = {
        **post,
        "id": fake.snowflake(),
        "components": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": "other:thing"}]}],
    }
    fake.messages[stranger["id"]] = stranger
    ignored = await fake.click(stranger, "other:thing", user=fake.mo)
    barrier = await fake.click(post, f"modbot:confirm:{case_id}", user=fake.mo)
    await answered(fake, barrier)
    assert fake.interactions[ignored["token"]]["callbacks"] == []
    assert len(running.actions.calls) == 1
