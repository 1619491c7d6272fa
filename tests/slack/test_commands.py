"""/policy and /modbot through the real Bolt app: acknowledged at once, authorised, carried out, answered privately."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from adapters.slack import interactions
from adapters.slack.interactions import TESTS_PER_WINDOW
from bot.domain import EffectKind, Mode
from tests.fakes.slack_fake import ADMIN_USER_ID, TEAM_ID
from tests.slack.conftest import POLICY_TEXT, MakeWorkspace, Workspace
from tests.slack.test_http_events import texts_in

MOD = "U0MOD"
MEMBER = "U0MEMBER"


def words(message: dict[str, Any]) -> str:
    """Everything a person reads in a posted message: its blocks' texts, else its text."""
    return "\n".join(texts_in(message.get("blocks") or [])) or str(message.get("text", ""))


async def moderated(make_workspace: MakeWorkspace, mode: str = "http", **overrides: Any) -> Workspace:
    """A workspace whose moderator U0MOD is named one by one, warmed up: Bolt's own auth.test is behind it."""
    ws = await make_workspace(mode, moderators=(MOD,), **overrides)
    ws.fake.add_user(MOD, "mod", display_name="Mo")
    ws.fake.add_user(MEMBER, "member")
    if mode == "socket":
        await ws.fake.socket_connected.wait()
        await ws.fake.send_envelope("events_api", ws.fake.user_message("warm-up"))
    else:
        await ws.fake.deliver(ws.events_url, ws.fake.user_message("warm-up"))
    await ws.settle()
    return ws


# ---------------------------------------------------------------- acknowledged within the deadline


@pytest.mark.parametrize("mode", ["http", "socket"])
@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("/policy", "list"),
        ("/policy", "show harassment"),
        ("/policy", "set harassment"),
        ("/policy", "test harassment you idiot"),
        ("/modbot", "status"),
        ("/modbot", "setup"),
    ],
)
async def test_a_command_is_acknowledged_before_modbot_asks_slack_anything(
    make_workspace: MakeWorkspace, mode: str, command: str, text: str
) -> None:
    ws = await moderated(make_workspace, mode)
    fake = ws.fake
    fake.hold_api()  # every Web API call now waits: an ack that needed one could not come
    # The bound only turns such a hang into a failure; the test is the order of events, not a time.
    sent = await asyncio.wait_for(ws.command(command, text, user=MOD), 30)
    assert sent.answer.status == 200
    # The work after the ack did start, and is held: so the ack did not wait for it.
    await fake.wait_for_call("users.info", where=lambda c: c.args.get("user") == MOD)
    assert ws.adapter.work.pending == 1
    fake.release_api()
    await ws.settle()
    assert ws.adapter.work.pending == 0


async def test_a_mistyped_command_gets_its_usage_in_the_acknowledgement_and_no_lookup(
    make_workspace: MakeWorkspace,
) -> None:
    ws = await moderated(make_workspace)
    before = len(ws.fake.calls)
    for text in ("", "frobnicate", "show", "diff harassment 1", "mode harassment loud", "test harassment"):
        sent = await ws.command("/policy", text, user=MEMBER)
        assert sent.answer.status == 200
        assert "/policy" in words(sent.answer.body), text
    sent = await ws.command("/modbot", "reboot", user=MEMBER)
    assert "/modbot setup" in words(sent.answer.body)
    await ws.settle()
    assert ws.fake.calls[before:] == []  # answered from the words alone
    assert ws.fake.responses == {}


async def test_user_typed_words_in_a_usage_answer_cannot_mention_anyone(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    sent = await ws.command("/policy", "<!channel> <@U0ADMIN>", user=MEMBER)
    said = words(sent.answer.body)
    assert "<!" not in said and "<@" not in said and "@\u200bchannel" in said


# ---------------------------------------------------------------- who may


async def test_a_member_is_refused_every_policy_change_and_nothing_changes(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    audit_before = await ws.store.audit.for_server("slack", TEAM_ID)
    for text in ("disable harassment", "mode harassment shadow", "rollback harassment 1", "list", "show harassment"):
        sent = await ws.command("/policy", text, user=MEMBER)
        reply = words(await ws.reply_to(sent))
        assert "may not" in reply and "user groups" in reply, reply
    opened = await ws.command("/policy", "set harassment", user=MEMBER)
    setup = await ws.command("/modbot", "setup", user=MEMBER)
    for sent in (opened, setup):
        assert "may not" in words(await ws.reply_to(sent))
    await ws.settle()
    assert ws.fake.calls_to("views.open") == []  # no form was shown, not even one prefilled
    [live] = await ws.store.policies.live("slack", TEAM_ID)
    assert (live.enabled, live.mode, live.policy.version) == (True, None, 1)
    assert await ws.store.audit.for_server("slack", TEAM_ID) == audit_before
    leaked = [words(m) for ms in ws.fake.responses.values() for m in ms]
    assert not any("Insulting a target" in w for w in leaked)  # the policy text was not shown to them


@pytest.mark.parametrize("who", ["admin", "owner", "group member", "named"])
async def test_moderators_are_admins_owners_group_members_and_people_named(
    make_workspace: MakeWorkspace, who: str
) -> None:
    ws = await moderated(make_workspace, moderator_role_ids=("S0MODS",))
    fake = ws.fake
    user = {"admin": ADMIN_USER_ID, "owner": "U0OWNER", "group member": "U0GROUPIE", "named": MOD}[who]
    fake.add_user("U0OWNER", "olga", is_owner=True)
    fake.add_usergroup("S0MODS", "mods", ["U0GROUPIE"])
    sent = await ws.command("/policy", "disable harassment", user=user)
    assert "is off" in words(await ws.reply_to(sent))
    [live] = await ws.store.policies.live("slack", TEAM_ID)
    assert live.enabled is False


async def test_a_deactivated_admin_has_no_rights(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    ws.fake.add_user("U0GONE", "gone", is_admin=True, deleted=True)
    sent = await ws.command("/policy", "disable harassment", user="U0GONE")
    assert "may not" in words(await ws.reply_to(sent))


async def test_rights_are_looked_up_once_a_minute_not_once_a_command(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace, moderator_role_ids=("S0MODS",))
    ws.fake.add_usergroup("S0MODS", "mods", ["U0GROUPIE"])
    for _ in range(3):
        sent = await ws.command("/policy", "list", user="U0GROUPIE")
        await ws.reply_to(sent)
    lookups = [c for c in ws.fake.calls_to("users.info") if c.args.get("user") == "U0GROUPIE"]
    assert len(lookups) == 1 and len(ws.fake.calls_to("usergroups.users.list")) == 1


async def test_when_slack_will_not_say_who_someone_is_they_are_told_and_refused(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    ws.fake.fail_next("users.info", "fatal_error")
    sent = await ws.command("/policy", "disable harassment", user=MOD)
    assert sent.answer.status == 200
    reply = words(await ws.reply_to(sent))
    assert "cannot check your rights" in reply and "fatal_error" in reply
    [live] = await ws.store.policies.live("slack", TEAM_ID)
    assert live.enabled is True


# ---------------------------------------------------------------- the /policy commands


async def test_list_show_history_and_diff_answer_privately(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    await ws.app.policies.set(
        await ws.adapter.people.actor(ADMIN_USER_ID, await ws.settings()),
        POLICY_TEXT.replace("their looks,", "their looks or <!here> family,"),
    )
    listing = words(await ws.reply_to(await ws.command("/policy", "list", user=MOD)))
    assert "harassment* v2 (2 version(s)): on" in listing
    shown = await ws.reply_to(await ws.command("/policy", "show harassment 2", user=MOD))
    assert shown["response_type"] == "ephemeral"
    text = words(shown)
    assert "HB1.a: Insulting a target" in text and "&lt;!here&gt;" in text and "<!here>" not in text
    history = words(await ws.reply_to(await ws.command("/policy", "history harassment", user=MOD)))
    assert "v1: " in history and "v2: <https://fake-workspace.slack.com/team/U0ADMIN|Ada (admin)>" in history
    diff = words(await ws.reply_to(await ws.command("/policy", "diff harassment 1 2", user=MOD)))
    assert "+- HB1.a" in diff and "-- HB1.a" in diff and "&lt;!here&gt;" in diff


async def test_rollback_mode_enable_and_disable_change_what_runs(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    admin = await ws.adapter.people.actor(ADMIN_USER_ID, await ws.settings())
    await ws.app.policies.set(admin, POLICY_TEXT.replace("private life.", "private life or work."))
    said = words(await ws.reply_to(await ws.command("/policy", "rollback harassment 1", user=MOD)))
    assert "now v3, the text of v1" in said
    said = words(await ws.reply_to(await ws.command("/policy", "mode harassment shadow", user=MOD)))
    assert "runs in shadow" in said
    said = words(await ws.reply_to(await ws.command("/policy", "disable harassment", user=MOD)))
    assert "is off" in said
    [live] = await ws.store.policies.live("slack", TEAM_ID)
    assert (live.policy.version, live.mode, live.enabled) == (3, Mode.SHADOW, False)
    said = words(await ws.reply_to(await ws.command("/policy", "show harassment 9", user=MOD)))
    assert "no version 9" in said  # the core's refusal, as it says it


async def test_set_opens_a_form_with_the_live_text_and_saving_it_makes_a_version(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    fake = ws.fake
    sent = await ws.command("/policy", "set harassment", user=MOD)
    await ws.settle()
    view = fake.last_view("modbot:policy_set")
    form = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    prefilled = form["text"]["initial_value"]
    assert prefilled.startswith("---\nname: harassment\n") and "HB1.a: Insulting a target" in prefilled
    new_text = prefilled.replace("- HB1.d:", "- HB1.e: Mocking someone's accent.\n- HB1.d:")
    answer = await ws.interact(fake.submit_view(view["id"], {"text": new_text}, user=MOD))
    assert (answer.status, answer.body) == (200, None)  # the form closes
    said = words(await ws.reply_to(sent))  # the answer goes where the command was typed
    assert "Saved *harassment* v2 (was v1)" in said
    [live] = await ws.store.policies.live("slack", TEAM_ID)
    assert "HB1.e: Mocking someone's accent." in live.policy.text and live.policy.author == MOD


async def test_a_policy_that_does_not_parse_is_refused_in_the_form_and_nothing_is_saved(
    make_workspace: MakeWorkspace,
) -> None:
    ws = await moderated(make_workspace)
    fake = ws.fake
    await ws.command("/policy", "set", user=MOD)
    await ws.settle()
    view = fake.last_view("modbot:policy_set")
    calls = len(fake.calls)
    answer = await ws.interact(fake.submit_view(view["id"], {"text": "# Nothing\n\nno rules here"}, user=MOD))
    assert answer.body["response_action"] == "errors"
    assert "line" in answer.body["errors"]["text"]
    await ws.settle()
    assert len(fake.calls) == calls  # refused from the text alone
    assert [lp.policy.version for lp in await ws.store.policies.live("slack", TEAM_ID)] == [1]


async def test_a_policy_longer_than_one_input_fits_in_two(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    fake = ws.fake
    terms = "".join(f"- **Term {i}**: {'a long definition of what the policy means. ' * 4}\n" for i in range(6))
    long_text = POLICY_TEXT.replace("## DEFINITIONS\n", "## DEFINITIONS\n" + terms)
    assert 3000 < len(long_text) <= 6000
    admin = await ws.adapter.people.actor(ADMIN_USER_ID, await ws.settings())
    await ws.app.policies.set(admin, long_text)
    sent = await ws.command("/policy", "set harassment", user=MOD)
    await ws.settle()
    view = fake.last_view("modbot:policy_set")
    inputs = {b["block_id"]: b["element"].get("initial_value", "") for b in view["blocks"] if b["type"] == "input"}
    assert inputs["more"] and len(inputs["text"]) <= 3000
    edited = {
        part: inputs[part].replace("- HB0.b:", "- HB0.c: Asking someone politely to stop.\n- HB0.b:")
        for part in ("text", "more")
    }
    assert edited != {part: inputs[part] for part in ("text", "more")}
    await ws.interact(fake.submit_view(view["id"], edited, user=MOD))
    assert "Saved *harassment* v3" in words(await ws.reply_to(sent))
    [live] = await ws.store.policies.live("slack", TEAM_ID)
    assert "**Term 5**" in live.policy.text and "HB0.c: Asking someone politely to stop." in live.policy.text


async def test_preview_reports_when_done_and_its_draft_is_applied_by_button(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    fake = ws.fake
    for text in ("you idiot", "you dolt", "hello"):
        await fake.deliver(ws.events_url, fake.user_message(text))
    await ws.settle()
    sent = await ws.command("/policy", "preview harassment", user=MOD)
    await ws.settle()
    view = fake.last_view("modbot:policy_preview")
    ws.model.bad_word = "dolt"  # the draft's model flags "dolt", no longer "idiot"
    answer = await ws.interact(fake.submit_view(view["id"], {"last": "50"}, user=MOD))
    assert answer.body is None
    assert "Judging the last 50 messages" in words(await ws.reply_to(sent, 1))
    report = await ws.reply_to(sent, 2)
    said = words(report)
    assert "1 newly flagged, 1 no longer flagged" in said and "you dolt" in said
    assert [lp.policy.version for lp in await ws.store.policies.live("slack", TEAM_ID)] == [1]  # not live yet
    [draft_id] = [e["value"] for b in report["blocks"] if b["type"] == "actions" for e in b["elements"]]
    click = fake.click_in_response(sent.hook, f"modbot:apply:{draft_id}", user=MOD)
    assert (await ws.interact(click)).status == 200
    await ws.settle()
    applied = [m for ms in fake.responses.values() for m in ms if "is live as" in words(m)]
    assert applied and "v2" in words(applied[0])
    assert [lp.policy.version for lp in await ws.store.policies.live("slack", TEAM_ID)] == [2]


async def test_test_judges_a_sample_now_privately_and_records_nothing(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    sent = await ws.command("/policy", "test harassment you are an <@U0ADMIN|ada> idiot", user=MOD)
    assert "Testing your sample" in words(sent.answer.body)
    said = words(await ws.reply_to(sent))
    assert "breaks the policy" in said and "HB1.a" in said and "Insults a member" in said
    assert "nothing was recorded" in said
    assert ws.model.calls[-1].message.text == "you are an @ada idiot"  # read as a person wrote it
    assert [c for c in ws.cases if c.message.message_id.startswith("test:")] == []
    assert await ws.store.queue_counts() == {"done": 1}  # only the warm-up went through the queue


async def test_test_is_limited_per_person_and_the_limit_is_said_at_once(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    for _ in range(TESTS_PER_WINDOW):
        await ws.reply_to(await ws.command("/policy", "test harassment hello", user=MOD))
    calls = len(ws.model.calls)
    refused = await ws.command("/policy", "test harassment hello", user=MOD)
    assert "the next one in" in words(refused.answer.body)
    await ws.settle()
    assert len(ws.model.calls) == calls and refused.hook not in ws.fake.responses
    other = await ws.command("/policy", "test harassment hello", user=ADMIN_USER_ID)  # someone else may
    assert "does not break the policy" in words(await ws.reply_to(other))


async def test_templates_and_install_start_from_the_library(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    listing = words(await ws.reply_to(await ws.command("/policy", "templates", user=MOD)))
    assert "spam-scams" in listing and "self-harm" in listing
    said = words(await ws.reply_to(await ws.command("/policy", "install spam-scams", user=MOD)))
    assert "Installed spam-scams v1" in said
    names = {lp.policy.name for lp in await ws.store.policies.live("slack", TEAM_ID)}
    assert names == {"harassment", "spam-scams"}


# ---------------------------------------------------------------- /modbot


async def test_setup_offers_the_pickers_and_saves_what_changed(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace, admin=True)
    fake = ws.fake
    fake.add_usergroup("S0MODS", "mods", ["U0GROUPIE"])
    fake.add_usergroup("S0TRUSTED", "trusted", ["U0OLDTIMER"])
    sent = await ws.command("/modbot", "setup", user=ADMIN_USER_ID)
    await ws.settle()
    view = fake.last_view("modbot:setup")
    elements = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert elements["mod_channel"]["type"] == "conversations_select"
    assert elements["mod_channel"]["initial_conversation"] == "C0MODS"
    assert [o["value"] for o in elements["moderator_groups"]["options"]] == ["S0MODS", "S0TRUSTED"]
    assert elements["moderator_users"]["initial_users"] == [MOD]
    assert {o["value"] for o in elements["effects"]["options"]} == {"flag", "dm_moderators", "notify_author", "delete"}
    values = {
        "mod_channel": "C0NEWMODS",
        "moderator_groups": ["S0MODS"],
        "exempt_groups": ["S0TRUSTED"],
        "exempt_channels": ["C0RANDOM"],
        "mode": "shadow",
        "effects": ["flag", "notify_author"],
    }
    assert (await ws.interact(fake.submit_view(view["id"], values, user=ADMIN_USER_ID))).body is None
    said = words(await ws.reply_to(sent))
    assert "Saved: " in said and "said hello in" in said
    settings = await ws.settings()
    assert settings.mod_channel_id == "C0NEWMODS"
    assert (settings.moderator_role_ids, settings.moderator_user_ids) == (("S0MODS",), (MOD,))
    assert (settings.exempt_role_ids, settings.exempt_channel_ids) == (("S0TRUSTED",), ("C0RANDOM",))
    assert settings.mode is Mode.SHADOW
    assert settings.effect_rules[0].effects == (EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR)
    [hello] = fake.calls_to("chat.postMessage")[-1:]
    assert hello.args["channel"] == "C0NEWMODS"
    [entry] = [e for e in await ws.store.audit.for_server("slack", TEAM_ID) if e.action == "settings.set"]
    assert entry.actor == ADMIN_USER_ID


async def test_setup_says_when_the_bot_is_not_in_the_new_channel(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    ws.fake.channels_without_bot.add("C0PRIVATE")
    sent = await ws.command("/modbot", "setup", user=ADMIN_USER_ID)
    await ws.settle()
    view = ws.fake.last_view("modbot:setup")
    await ws.interact(ws.fake.submit_view(view["id"], {"mod_channel": "C0PRIVATE"}, user=ADMIN_USER_ID))
    said = words(await ws.reply_to(sent))
    assert "/invite @modbot" in said
    assert (await ws.settings()).mod_channel_id == "C0PRIVATE"


async def test_setup_on_a_free_workspace_names_moderators_one_by_one(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    ws.fake.user_groups_available = False
    await ws.command("/modbot", "setup", user=ADMIN_USER_ID)
    await ws.settle()
    view = ws.fake.last_view("modbot:setup")
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert "moderator_groups" not in blocks and "exempt_groups" not in blocks
    assert "no user groups" in "\n".join(texts_in(view["blocks"]))
    # Without the admin token, delete is not offered, and the form says why.
    assert "delete" not in {o["value"] for o in blocks["effects"]["element"]["options"]}
    assert "SLACK_ADMIN_USER_TOKEN" in "\n".join(texts_in(view["blocks"]))
    await ws.interact(ws.fake.submit_view(view["id"], {"moderator_users": [MOD, "U0SECOND"]}, user=ADMIN_USER_ID))
    await ws.settle()
    assert (await ws.settings()).moderator_user_ids == (MOD, "U0SECOND")
    second = await ws.command("/policy", "list", user="U0SECOND")
    assert "harassment" in words(await ws.reply_to(second))


async def test_a_moderator_may_save_setup_but_not_make_more_moderators(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    sent = await ws.command("/modbot", "setup", user=MOD)
    await ws.settle()
    view = ws.fake.last_view("modbot:setup")
    await ws.interact(ws.fake.submit_view(view["id"], {"moderator_users": [MOD, MEMBER]}, user=MOD))
    assert "only admins may" in words(await ws.reply_to(sent))
    assert (await ws.settings()).moderator_user_ids == (MOD,)
    again = await ws.command("/modbot", "setup", user=MOD)
    await ws.settle()
    view = ws.fake.last_view("modbot:setup")
    await ws.interact(ws.fake.submit_view(view["id"], {"mode": "shadow"}, user=MOD))
    assert "Saved: mode" in words(await ws.reply_to(again))


async def test_status_tells_a_moderator_what_runs_and_what_to_fix(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace, moderator_role_ids=("S0MODS", "U0NOTAGROUP"))
    ws.fake.add_usergroup("S0MODS", "mods", [])
    said = words(await ws.reply_to(await ws.command("/modbot", "status", user=MOD)))
    assert "model: healthy" in said and "queue:" in said
    assert "connected" in said or "serving HTTP" in said
    assert "Slack cannot delete: A Slack bot token can delete only" in said  # without the admin token
    assert "Slack cannot timeout: Slack has no timeouts" in said
    assert "moderators' channel: <#C0MODS>" in said and "@mods" in said and "Mo" in said
    assert "U0NOTAGROUP" in said and "not user groups" in said
    assert "store:" not in said  # the operator's file paths are not a workspace's business


# ---------------------------------------------------------------- errors inside listeners


async def test_a_crash_inside_a_command_is_told_to_the_person_never_a_404(
    make_workspace: MakeWorkspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await moderated(make_workspace)

    async def broken() -> None:
        raise RuntimeError("the status report broke")

    monkeypatch.setattr(ws.app.status, "report", broken)
    with caplog.at_level(logging.ERROR, logger="adapters.slack.interactions"):
        sent = await ws.command("/modbot", "status", user=MOD)
        assert sent.answer.status == 200
        said = words(await ws.reply_to(sent))
    assert "modbot hit an error" in said
    reference = said.split("under `")[1].split("`")[0]
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)


async def test_slack_refusing_a_form_is_told_to_the_person(make_workspace: MakeWorkspace) -> None:
    ws = await moderated(make_workspace)
    ws.fake.fail_next("views.open", "expired_trigger_id")
    sent = await ws.command("/policy", "set harassment", user=MOD)
    said = words(await ws.reply_to(sent))
    assert "Slack refused" in said and "expired_trigger_id" in said


async def test_a_crash_while_acknowledging_a_form_closes_it_and_tells_the_person(
    make_workspace: MakeWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await moderated(make_workspace)
    sent = await ws.command("/policy", "set harassment", user=MOD)
    await ws.settle()
    view = ws.fake.last_view("modbot:policy_set")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the parser broke")

    monkeypatch.setattr(interactions, "validate_policy", broken)
    answer = await ws.interact(ws.fake.submit_view(view["id"], {}, user=MOD))
    assert (answer.status, answer.body) == (200, None)  # acknowledged: Slack shows no error, the form closes
    assert "modbot hit an error" in words(await ws.reply_to(sent))
    assert [lp.policy.version for lp in await ws.store.policies.live("slack", TEAM_ID)] == [1]
