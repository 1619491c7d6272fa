"""/modbot setup and /modbot status through the real discord.py, and what the settings they save change.

Setup is a private message of select menus: each pick is saved through the core at once and
the page is drawn again from the saved settings, with the bot's own permissions checked
(the local Discord models channel permission overwrites and role order, as Discord does).
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord.setup import ActionMapping, SetupError, changes_for, mapping_of
from bot.domain import Confidence, EffectKind, EffectRule, Mode, ServerSettings
from tests.discord.conftest import BotProcess
from tests.discord.helpers import acknowledged, answer_of, flag_post_of, followups, owner, text_of
from tests.fakes.discord_fake import EMBED_LINKS, MANAGE_MESSAGES, FakeDiscord, FakeUser


def components(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["custom_id"]: c for row in message.get("components") or [] for c in row.get("components") or []}


def fields(message: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


async def open_setup(fake: FakeDiscord, user: FakeUser) -> dict[str, Any]:
    """Run /modbot setup; the private message it answers with, as stored (its menus are clicked later)."""
    command = await fake.command("modbot setup", user=user)
    [reply] = await followups(fake, command)
    return next(m for m in fake.messages.values() if m.get("components") and m["components"] == reply["components"])


async def pick(
    fake: FakeDiscord, page: dict[str, Any], custom_id: str, values: list[str], user: FakeUser
) -> dict[str, Any]:
    """Pick in a menu (or press a page button); returns the page as the bot drew it again."""
    edits = len([r for r in fake.rec.requests if r.method == "PATCH" and r.path.endswith("/messages/@original")])
    if values or custom_id.startswith("modbot:setup:"):
        interaction = await fake.select(page, custom_id, values, user=user)
    else:
        interaction = await fake.click(page, custom_id, user=user)
    assert (await acknowledged(fake, interaction))["type"] == 6  # "updating this message"
    await fake.rec.wait_for("PATCH", lambda p: p.endswith("/messages/@original"), count=edits + 1)
    return fake.messages[page["id"]]


async def saved(process: BotProcess) -> ServerSettings:
    found = await process.bot.store.settings.get("discord", process.fake.guild.id)
    assert found is not None
    return found


async def test_setup_saves_each_pick_through_the_core_and_says_which_permissions_are_missing(
    bot_process: BotProcess,
) -> None:
    fake = bot_process.fake
    await bot_process.start()
    admin = owner(fake)
    page = await open_setup(fake, admin)
    menus = components(page)
    assert set(menus) == {
        "modbot:setup:mod_channel",
        "modbot:setup:moderator_roles",
        "modbot:setup:exempt_roles",
        "modbot:setup:exempt_channels",
        "modbot:setup-page:actions",
    }
    assert menus["modbot:setup:mod_channel"]["type"] == 8 and menus["modbot:setup:moderator_roles"]["type"] == 6
    shown = fields(page)
    assert "No mod channel is chosen" in shown["Permissions"]
    assert shown["Every violation"] == "Flag in the mod channel" and shown["High confidence, also"] == "nothing"

    # The mod channel exists, but modbot may not embed there.
    await fake.set_overwrite(fake.mod_log, fake.bot_role, deny=EMBED_LINKS)
    page = await pick(fake, page, "modbot:setup:mod_channel", [fake.mod_log.id], admin)
    assert (await saved(bot_process)).mod_channel_id == fake.mod_log.id
    chosen = components(page)["modbot:setup:mod_channel"]["default_values"]
    assert [(int(v["id"]), v["type"]) for v in chosen] == [(int(fake.mod_log.id), "channel")]
    assert f"Missing in the mod channel <#{fake.mod_log.id}>: Embed Links" in fields(page)["Permissions"]
    page = await pick(fake, page, "modbot:setup:moderator_roles", [fake.mod_role.id], admin)
    page = await pick(fake, page, "modbot:setup:exempt_channels", [fake.forum.id], admin)
    settings = await saved(bot_process)
    assert (settings.moderator_role_ids, settings.exempt_channel_ids) == ((fake.mod_role.id,), (fake.forum.id,))

    # What happens: delete every violation, time out at high confidence, for an hour.
    page = await pick(fake, page, "modbot:setup-page:actions", [], admin)
    assert set(components(page)) >= {"modbot:setup:mode", "modbot:setup:effects_every", "modbot:setup:timeout"}
    await fake.set_overwrite(fake.general, fake.bot_role, deny=MANAGE_MESSAGES)
    elders = fake.add_role(fake.guild, "Elders", position=5)
    await fake.dispatch(
        "GUILD_ROLE_CREATE", {"guild_id": fake.guild.id, "role": elders.payload()}, guild_id=fake.guild.id
    )
    page = await pick(fake, page, "modbot:setup:effects_every", ["flag", "delete"], admin)
    page = await pick(fake, page, "modbot:setup:effects_high", ["timeout", "notify_author"], admin)
    page = await pick(fake, page, "modbot:setup:timeout", ["60"], admin)
    settings = await saved(bot_process)
    assert settings.effect_rules == (
        EffectRule(min_confidence=Confidence.LOW, effects=(EffectKind.FLAG, EffectKind.DELETE), timeout_minutes=60),
        EffectRule(
            min_confidence=Confidence.HIGH, effects=(EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR), timeout_minutes=60
        ),
    )
    problems = fields(page)["Permissions"]
    assert f"Missing Manage Messages in <#{fake.general.id}>: messages there cannot be deleted." in problems
    assert f"modbot's role is below <@&{elders.id}>" in problems
    assert f"<#{fake.forum.id}>" not in problems  # exempt: not checked

    page = await pick(fake, page, "modbot:setup:mode", ["shadow"], admin)
    assert (await saved(bot_process)).mode is Mode.SHADOW
    page = await pick(fake, page, "modbot:setup-page:options", [], admin)
    page = await pick(fake, page, "modbot:setup-page:done", [], admin)
    assert page["components"] == [] and page["embeds"][0]["title"] == "modbot setup, saved"


async def test_a_moderator_may_not_make_moderators_and_nothing_changes(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed()
    await bot_process.start()
    before = await saved(bot_process)
    page = await open_setup(fake, fake.mo)  # moderators may see and change settings, but not who moderates

    interaction = await fake.select(
        page, "modbot:setup:moderator_roles", [fake.mod_role.id, fake.guild.id], user=fake.mo
    )
    [refusal] = await followups(fake, interaction)
    # What Discord shows (the core's words, markdown escaped), said to the moderator who asked.
    assert refusal["content"].replace("\\", "").startswith("You may not change moderator_role_ids")
    assert await saved(bot_process) == before
    member = await answer_of(fake, await fake.command("modbot setup", user=fake.alice))
    assert "may not see settings" in member["content"]


async def test_the_options_page_turns_on_webhook_messages_and_the_moderator_ping(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed()
    await bot_process.start()
    admin = owner(fake)
    proxy = fake.add_user("PluralKit proxy", bot=True)
    ignored = await fake.post_message(fake.general, proxy, "you idiot", webhook_id=fake.snowflake())
    barrier = await fake.post_message(fake.general, fake.bob, "you idiot too")
    await bot_process.decided.wait_for(barrier["id"])
    assert bot_process.decided.of(ignored["id"]) == []  # off by default

    page = await open_setup(fake, admin)
    page = await pick(fake, page, "modbot:setup-page:actions", [], admin)
    page = await pick(fake, page, "modbot:setup-page:options", [], admin)
    page = await pick(fake, page, "modbot:setup:webhooks", ["on"], admin)
    page = await pick(fake, page, "modbot:setup:ping_role", [fake.mod_role.id], admin)
    assert fields(page)["Mentioned on flags and appeals"] == f"<@&{fake.mod_role.id}>"

    proxied = await fake.post_message(fake.general, proxy, "you idiot", webhook_id=fake.snowflake())
    case = await bot_process.decided.wait_for(proxied["id"])
    post = flag_post_of(fake, case.id)
    assert post["content"] == f"<@&{fake.mod_role.id}>" and post["pings"] == [f"role:{fake.mod_role.id}"]
    assert post["allowed_mentions"]["parse"] == [] and list(map(str, post["allowed_mentions"]["roles"])) == [
        fake.mod_role.id
    ]


async def test_status_says_whether_the_model_answers_the_queue_and_todays_counts(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed()
    await bot_process.start()
    for text in ("you idiot", "good game"):
        message = await fake.post_message(fake.general, fake.alice, text)
        await bot_process.decided.wait_for(message["id"])

    report = text_of(await answer_of(fake, await fake.command("modbot status", user=fake.mo)))
    assert "Model: reachable" in report
    assert "0 message(s) waiting or being judged" in report
    assert "2 message(s) judged, 1 flagged, 0 confirmed" in report

    bot_process.probe.problem = "model gpt-oss-safeguard:20b is not pulled on http://ollama:11434"
    down = text_of(await answer_of(fake, await fake.command("modbot status", user=fake.mo)))
    assert "Model: **not reachable**: model gpt-oss-safeguard:20b is not pulled" in down
    refused = await answer_of(fake, await fake.command("modbot status", user=fake.alice))
    assert "may not see settings" in refused["content"]


# ---------------------------------------------------------------- the verdict → action mapping, as data


def test_the_default_mapping_is_flag_only_and_round_trips() -> None:
    default = ServerSettings(platform="discord", server_id="g")
    mapping = mapping_of(default)
    assert mapping == ActionMapping(every=(EffectKind.FLAG,), high=(), timeout_minutes=10, custom=False)
    assert mapping.rules() == default.effect_rules


def test_rules_from_the_command_line_are_said_to_be_replaced() -> None:
    custom = ServerSettings(
        platform="discord",
        server_id="g",
        effect_rules=(
            EffectRule(policies=("spam-scams",), effects=(EffectKind.DELETE,)),
            EffectRule(min_confidence=Confidence.MEDIUM, effects=(EffectKind.FLAG,)),
        ),
    )
    assert mapping_of(custom).custom
    changes = changes_for("effects_every", ["flag"], custom)
    assert changes == {"effect_rules": (EffectRule(effects=(EffectKind.FLAG,)),)}


@pytest.mark.parametrize(
    ("setting", "values"),
    [
        ("mod_channel", ["not-an-id"]),
        ("effects_every", ["lift_timeout"]),
        ("timeout", ["7"]),
        ("mode", ["enforce", "shadow"]),
        ("nope", []),
    ],
)
def test_values_that_make_no_setting_are_refused(setting: str, values: list[str]) -> None:
    with pytest.raises((SetupError, ValueError)):
        changes_for(setting, values, ServerSettings(platform="discord", server_id="g"))
