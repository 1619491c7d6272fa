"""Slash commands through the real discord.py against the local Discord, with the whole app behind them.

Each test runs one bot process as `modbot run` assembles it (tests/discord/conftest.py
`BotProcess`): the launcher's Discord entry, the app from `bootstrap`, a SQLite file.
Negative assertions come after a barrier: the interaction's answer, which the bot sends
only once the core has acted (or refused).
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.discord.commands import PerMemberLimit
from adapters.discord.policy_text import policy_document
from bot.domain import EffectKind, EffectRule, Mode
from bot.policy_format import parse_policy
from bot.policy_library import content_of
from bot.store.ports import CaseQuery, PolicyContent
from tests.conftest import POLICY_DIR
from tests.discord.conftest import HARASSMENT, BotProcess
from tests.discord.helpers import acknowledged, answer_of, followups, owner, text_of
from tests.fakes.discord_fake import MANAGE_GUILD, MANAGE_MESSAGES, FakeUser

pytestmark = pytest.mark.asyncio

HARASSMENT_FILE = (POLICY_DIR / "harassment.md").read_text(encoding="utf-8")


async def versions(process: BotProcess, name: str = "harassment") -> list[tuple[int, str]]:
    found = await process.bot.store.policies.versions("discord", process.fake.guild.id, name)
    return [(p.version, p.author) for p in found]


# ---------------------------------------------------------------- the command set


async def test_the_command_set_is_registered_once_and_not_again_when_unchanged(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.start()
    path = f"/applications/{fake.app_id}/commands"
    [sync] = fake.rec.find("PUT", path)
    commands = {c["name"]: c for c in sync.json}
    assert set(commands) == {"policy", "modbot", "review", "appeal"}
    subcommands = {name: {o["name"] for o in c.get("options", [])} for name, c in commands.items()}
    assert subcommands["policy"] == {
        "set", "show", "list", "history", "diff", "rollback", "mode", "enable", "disable", "preview", "test"
    }  # fmt: skip
    assert subcommands["modbot"] == {"setup", "status"}
    assert subcommands["review"] == {"list", "decide", "appeals", "appeal"}
    # Config commands are shown to Manage Server by default; /review to moderators; /appeal to everyone.
    assert int(commands["policy"]["default_member_permissions"]) == MANAGE_GUILD
    assert int(commands["modbot"]["default_member_permissions"]) == MANAGE_GUILD
    assert int(commands["review"]["default_member_permissions"]) == MANAGE_MESSAGES
    assert commands["appeal"].get("default_member_permissions") is None
    assert all(c["contexts"] == [0] for c in commands.values())  # servers only, never DMs
    set_options = {
        o["name"]: o for o in next(o for o in commands["policy"]["options"] if o["name"] == "set")["options"]
    }
    assert set_options["file"]["type"] == 11 and set_options["template"]["autocomplete"] is True

    await bot_process.restart()
    assert len(fake.rec.find("GET", path)) == 2
    assert len(fake.rec.find("PUT", path)) == 1  # the same set: Discord is not asked to replace it


# ---------------------------------------------------------------- /policy set


async def test_policy_set_through_the_form_creates_a_version(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.start()
    admin = owner(fake)

    command = await fake.command("policy set", name="harassment", user=admin)
    form = await acknowledged(fake, command)
    # A new policy with a library template's name opens with that template, ready to edit.
    assert form["type"] == 9 and form["data"]["custom_id"] == "modbot:policy-set:harassment"
    [field] = [c for row in form["data"]["components"] for c in row["components"]]
    assert field["custom_id"] == "policy_text" and field["value"] == HARASSMENT_FILE
    assert field["max_length"] == 4000

    edited = HARASSMENT_FILE.replace("Insults, bullying", "Insults, slurs, bullying")
    submit = await fake.submit_modal(
        "modbot:policy-set:harassment", {"policy_text": edited}, user=admin, channel=fake.general
    )
    reply = await answer_of(fake, submit)
    assert "**harassment** v1 saved" in reply["content"]
    assert await versions(bot_process) == [(1, admin.id)]
    [live] = await bot_process.bot.store.policies.live("discord", fake.guild.id)
    assert live.policy.description == "Insults, slurs, bullying, and targeted abuse of server members."

    # The next form opens with the live version; sent back unchanged, it adds nothing.
    again = await fake.command("policy set", name="harassment", user=admin)
    form = await acknowledged(fake, again)
    [field] = [c for row in form["data"]["components"] for c in row["components"]]
    assert content_of(parse_policy(field["value"])) == content_of(parse_policy(edited))
    unchanged = await fake.submit_modal(
        "modbot:policy-set:harassment", {"policy_text": field["value"]}, user=admin, channel=fake.general
    )
    assert "unchanged" in (await answer_of(fake, unchanged))["content"]
    assert await versions(bot_process) == [(1, admin.id)]


async def test_a_member_without_permission_is_refused_and_nothing_changes(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.start()
    # Discord hides /policy from members without Manage Server, but an admin can grant it to
    # anyone (Integrations): the core decides. Alice is a plain member.
    by_template = await fake.command("policy set", name="harassment", template="harassment", user=fake.alice)
    refused = await answer_of(fake, by_template)
    assert "may not change policies" in refused["content"]
    # The form itself does not open for her, and a forged submission of it is refused too.
    by_form = await fake.command("policy set", name="harassment", user=fake.alice)
    assert "may not" in (await answer_of(fake, by_form))["content"]
    forged = await fake.submit_modal(
        "modbot:policy-set:harassment", {"policy_text": HARASSMENT_FILE}, user=fake.alice, channel=fake.general
    )
    assert "may not change policies" in (await answer_of(fake, forged))["content"]
    assert await versions(bot_process) == []
    assert await bot_process.bot.store.audit.for_server("discord", fake.guild.id) == []


async def test_policy_set_from_an_attached_file_and_from_a_template_under_another_name(
    bot_process: BotProcess,
) -> None:
    fake = bot_process.fake
    await bot_process.start()
    admin = owner(fake)
    upload = fake.upload("harassment.md", HARASSMENT_FILE.encode())
    reply = await answer_of(fake, await fake.command("policy set", name="harassment", file=upload, user=admin))
    assert "**harassment** v1 saved" in reply["content"]

    renamed = await fake.command("policy set", name="bullying", template="harassment", user=admin)
    assert "**bullying** v1 saved" in (await answer_of(fake, renamed))["content"]
    assert await versions(bot_process, "bullying") == [(1, admin.id)]

    wrong = fake.upload("notes.pdf", b"%PDF")
    refusal = await answer_of(fake, await fake.command("policy set", name="spam", file=wrong, user=admin))
    assert "not a policy file" in refusal["content"]
    broken = fake.upload("spam.md", b"---\nname: spam\n---\nno sections")
    problems = await answer_of(fake, await fake.command("policy set", name="spam", file=broken, user=admin))
    assert "the policy was not saved" in text_of(problems) and "missing section" in text_of(problems)
    assert await versions(bot_process, "spam") == []


async def test_policy_show_attaches_the_whole_policy_that_set_takes_back(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed()
    await bot_process.start()
    shown = await fake.command("policy show", name="harassment", user=fake.mo)
    reply = await answer_of(fake, shown)
    assert "v1" in reply["content"]
    [message] = [m for m in fake.messages.values() if m.get("files")]
    [(name, data)] = message["files"].items()
    assert name == "harassment-v1.md"
    [live] = await bot_process.bot.store.policies.live("discord", fake.guild.id)
    assert data.decode() == policy_document(live.policy)


# ---------------------------------------------------------------- the other /policy commands


async def test_list_history_diff_rollback_mode_enable_and_disable(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed()
    await bot_process.start()
    mo = fake.mo
    store = bot_process.bot.store
    await store.policies.add_version(
        "discord", fake.guild.id, PolicyContent(name="harassment", text=HARASSMENT.replace("looks", "clothes")), mo.id
    )
    bot_process.bot.pipeline.invalidate("discord", fake.guild.id)

    listed = text_of(await answer_of(fake, await fake.command("policy list", user=mo)))
    assert "**harassment** v2: on, follows the server's mode, 2 version(s)" in listed
    history = text_of(await answer_of(fake, await fake.command("policy history", name="harassment", user=mo)))
    assert "v2 by <@" in history and "v1 by <@" in history
    diff = (await answer_of(fake, await fake.command("policy diff", name="harassment", old=1, new=2, user=mo)))[
        "content"
    ]
    assert diff.startswith("```diff") and "-- HB1.a: Insulting a target or mocking their looks." in diff
    assert "+- HB1.a: Insulting a target or mocking their clothes." in diff

    rolled = await answer_of(fake, await fake.command("policy rollback", name="harassment", version=1, user=mo))
    assert "v3 is live: the text of v1" in rolled["content"]
    shadow = await answer_of(fake, await fake.command("policy mode", name="harassment", mode="shadow", user=mo))
    assert "shadow (its own mode)" in shadow["content"]
    off = await answer_of(fake, await fake.command("policy disable", name="harassment", user=mo))
    assert ": off," in off["content"]
    on = await answer_of(fake, await fake.command("policy enable", name="harassment", user=mo))
    assert ": on," in on["content"]
    [live] = await store.policies.live("discord", fake.guild.id)
    assert (live.policy.version, live.enabled, live.mode) == (3, True, Mode.SHADOW)
    missing = await answer_of(fake, await fake.command("policy show", name="nope", user=mo))
    assert "no policy named 'nope'" in missing["content"]


async def test_names_are_suggested_to_moderators_only(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed()
    await bot_process.start()

    async def suggestions(user: FakeUser, typed: str) -> list[str]:
        asked = await fake.autocomplete("policy show", "name", name=typed, user=user)
        answer = await acknowledged(fake, asked)
        assert answer["type"] == 8
        return [c["value"] for c in answer["data"]["choices"]]

    assert await suggestions(fake.mo, "har") == ["harassment"]
    assert await suggestions(fake.alice, "har") == []  # the core does not show her the policies
    templates = await fake.autocomplete("policy set", "template", name="x", template="spam", user=owner(fake))
    answer = await acknowledged(fake, templates)
    assert [c["value"] for c in answer["data"]["choices"]] == ["spam-scams"]


async def test_policy_test_answers_privately_after_acknowledging_and_is_limited_per_member(
    bot_process: BotProcess,
) -> None:
    fake = bot_process.fake
    await bot_process.seed()
    await bot_process.start()
    commands = bot_process.adapter.commands
    assert commands is not None
    commands.test_limit = PerMemberLimit(calls=2, per_seconds=3600)
    classifier = bot_process.classifier
    classifier.gate = asyncio.Event()  # the model is slow today

    first = await fake.command("policy test", text="you idiot", user=fake.mo)
    # Acknowledged while the model has not answered: the 3-second limit never waits on the core.
    assert (await acknowledged(fake, first))["type"] == 5
    assert fake.rec.find("POST", f"/webhooks/{fake.app_id}/{first['token']}") == []
    classifier.gate.set()
    reply = text_of(await answer_of(fake, first))
    assert "**Violation** (HB1.a), high confidence" in reply and "nothing was recorded" in reply

    await answer_of(fake, await fake.command("policy test", text="hello there", user=fake.mo))
    limited = await answer_of(fake, await fake.command("policy test", text="and again", user=fake.mo))
    assert "You have tested 2 texts" in limited["content"]
    assert [c.message.text for c in classifier.calls] == ["you idiot", "hello there"]
    refused = await answer_of(fake, await fake.command("policy test", text="x", user=fake.alice))
    assert "may not see policies" in refused["content"]
    assert len(classifier.calls) == 2
    # A test judges and records nothing: no case.
    assert await bot_process.bot.store.cases.find(CaseQuery(platform="discord", server_id=fake.guild.id)) == []


async def test_preview_reports_when_done_and_apply_makes_the_draft_live(bot_process: BotProcess) -> None:
    fake = bot_process.fake
    await bot_process.seed(effect_rules=(EffectRule(effects=(EffectKind.FLAG,)),))
    await bot_process.start()
    for text in ("you idiot", "nice build", "what an idiot move"):
        posted = await fake.post_message(fake.general, fake.alice, text)
        await bot_process.decided.wait_for(posted["id"])
    bot_process.classifier.bad_word = "build"  # the draft flags other things than the live policy
    preview = await fake.command("policy preview", name="harassment", template="harassment", user=fake.mo)
    started, report = await followups(fake, preview, count=2)
    assert "Previewing **harassment** on the last 100" in started["content"]
    [embed] = report["embeds"]
    assert "**1 newly flagged**, **2 no longer flagged**" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "nice build" in fields["Newly flagged (1)"]
    [[apply_button]] = [row["components"] for row in report["components"]]
    assert apply_button["custom_id"].startswith("modbot:apply-draft:")
    assert await versions(bot_process) == [(1, fake.guild.owner_id)]  # nothing live yet

    stored = fake.messages[next(m for m in fake.messages if fake.messages[m].get("components") == report["components"])]
    applied = await answer_of(fake, await fake.click(stored, apply_button["custom_id"], user=fake.mo))
    assert "is live: **harassment** v2" in applied["content"]
    assert await versions(bot_process) == [(1, fake.guild.owner_id), (2, fake.mo.id)]
