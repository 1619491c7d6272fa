"""Buttons and forms end to end: confirm, dismiss, reasoning, appeal, uphold and overturn, through the real Bolt app.

A test presses a button only if it is on the message as Slack holds it now (the local
Slack refuses to build a click for a button that is not there), so "the buttons are gone"
is checked by what a moderator could still press.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain import Case, CaseStatus, EffectKind, EffectOutcome
from tests.fakes.slack_fake import ADMIN_TOKEN, ADMIN_USER_ID, BOT_TOKEN, FakeSlack, StoredMessage
from tests.slack.conftest import MOD_CHANNEL, MakeWorkspace, Workspace
from tests.slack.test_commands import MEMBER, MOD, words
from tests.slack.test_http_events import texts_in

AUTHOR = "U0AUTHOR"
AUTHOR_DM = "D0AUTHOR"  # the local Slack's DM channel with U0AUTHOR


def buttons(message: StoredMessage | dict[str, Any]) -> list[str]:
    blocks = message.blocks if isinstance(message, StoredMessage) else message.get("blocks") or []
    return [e["action_id"] for b in blocks if b.get("type") == "actions" for e in b["elements"]]


def post_in(fake: FakeSlack, channel: str, needle: str) -> StoredMessage:
    """The one message in this channel whose notification text holds `needle`."""
    [found] = [m for m in fake.messages.values() if m.channel == channel and needle in m.text]
    return found


async def press(ws: Workspace, post: StoredMessage, action: str, case_id: str, user: str) -> str:
    """Press a button as `user`; return the hook of the click's response_url."""
    payload = ws.fake.click(post.channel, post.ts, f"modbot:{action}:{case_id}", user=user)
    answer = await ws.interact(payload)
    assert (answer.status, answer.body) == (200, None)  # acknowledged, nothing else in the ack
    await ws.settle()
    return str(payload["response_url"]).rsplit("/", 1)[1]


async def setup(make_workspace: MakeWorkspace, mode: str = "http", **kwargs: Any) -> Workspace:
    ws = await make_workspace(mode, moderators=(MOD,), **kwargs)
    ws.fake.add_user(MOD, "mod", display_name="Mo")
    ws.fake.add_user(MEMBER, "member")
    if mode == "socket":
        await ws.fake.socket_connected.wait()
    return ws


async def deliver(ws: Workspace, event: dict[str, Any]) -> None:
    if ws.adapter.port is None:
        await ws.fake.send_envelope("events_api", event)
    else:
        assert (await ws.fake.deliver(ws.events_url, event))[0] == 200
    await ws.settle()


async def flag(ws: Workspace, text: str = "you are an idiot") -> tuple[Case, StoredMessage]:
    event = ws.fake.user_message(text, user=AUTHOR)
    await deliver(ws, event)
    [case] = ws.cases_of("C0GENERAL", event["event"]["ts"])
    return case, post_in(ws.fake, MOD_CHANNEL, case.id)


async def case_now(ws: Workspace, case_id: str) -> Case:
    found = await ws.store.cases.get(case_id)
    assert found is not None
    return found


# ---------------------------------------------------------------- review


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_confirm_decides_the_case_and_the_flag_loses_its_buttons(
    make_workspace: MakeWorkspace, mode: str
) -> None:
    ws = await setup(make_workspace, mode)
    case, post = await flag(ws)
    assert buttons(post) == [f"modbot:{a}:{case.id}" for a in ("confirm", "dismiss", "reasoning")]

    hook = await press(ws, post, "confirm", case.id, MOD)

    decided = await case_now(ws, case.id)
    assert (decided.status, decided.decided_by) == (CaseStatus.CONFIRMED, MOD)
    [update] = ws.fake.calls_to("chat.update")
    assert (update.args["channel"], update.args["ts"], update.token) == (MOD_CHANNEL, post.ts, BOT_TOKEN)
    now = ws.fake.messages[(MOD_CHANNEL, post.ts)]
    assert buttons(now) == [] and "Confirmed" in "\n".join(texts_in(now.blocks))
    assert "Mo" in "\n".join(texts_in(now.blocks))  # who decided, named
    said = await ws.fake.wait_for_response(hook)
    assert said["response_type"] == "ephemeral" and f"Confirmed case `{case.id}`" in words(said)
    assert "update flag: done" in words(said)
    with pytest.raises(AssertionError, match="no button"):
        ws.fake.click(MOD_CHANNEL, post.ts, f"modbot:confirm:{case.id}", user=MOD)


async def test_confirm_and_delete_deletes_with_the_admin_token_and_tells_the_author(
    make_workspace: MakeWorkspace,
) -> None:
    ws = await setup(make_workspace, admin=True)
    case, post = await flag(ws)
    assert f"modbot:confirm_delete:{case.id}" in buttons(post)
    await press(ws, post, "confirm_delete", case.id, MOD)
    [delete] = ws.fake.calls_to("chat.delete")
    assert delete.token == ADMIN_TOKEN and delete.args["channel"] == "C0GENERAL"
    assert ("C0GENERAL", case.message.message_id.split(":")[1]) not in ws.fake.messages
    told = post_in(ws.fake, AUTHOR_DM, "About your message")
    assert "was removed" in "\n".join(texts_in(told.blocks))
    decided = await case_now(ws, case.id)
    kinds = {r.effect.kind: r.outcome for r in decided.effects}
    assert kinds[EffectKind.DELETE] is EffectOutcome.DONE and kinds[EffectKind.UPDATE_FLAG] is EffectOutcome.DONE


async def test_dismiss_clears_the_case_and_updates_the_flag(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace)
    case, post = await flag(ws)
    await press(ws, post, "dismiss", case.id, ADMIN_USER_ID)  # a workspace admin moderates too
    decided = await case_now(ws, case.id)
    assert (decided.status, decided.decided_by) == (CaseStatus.DISMISSED, ADMIN_USER_ID)
    now = ws.fake.messages[(MOD_CHANNEL, post.ts)]
    assert buttons(now) == [] and "Dismissed" in "\n".join(texts_in(now.blocks))
    assert ws.fake.calls_to("chat.delete") == [] and AUTHOR_DM not in {m.channel for m in ws.fake.messages.values()}


async def test_a_member_pressing_confirm_is_refused_and_nothing_changes(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace)
    case, post = await flag(ws)
    hook = await press(ws, post, "confirm", case.id, MEMBER)
    assert "may not" in words(await ws.fake.wait_for_response(hook))
    assert (await case_now(ws, case.id)).status is CaseStatus.OPEN
    assert ws.fake.calls_to("chat.update") == [] and ws.fake.calls_to("chat.delete") == []
    assert buttons(ws.fake.messages[(MOD_CHANNEL, post.ts)]) == buttons(post)


async def test_a_case_decided_anywhere_loses_its_buttons_in_slack(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace)
    case, post = await flag(ws)
    # Decided from the command line (the console operator acting as the workspace's admin).
    admin = await ws.adapter.people.actor(ADMIN_USER_ID, await ws.settings())
    await ws.app.reviews.dismiss(case.id, admin, note="fine")
    now = ws.fake.messages[(MOD_CHANNEL, post.ts)]
    assert buttons(now) == [] and "Dismissed" in "\n".join(texts_in(now.blocks))


async def test_a_second_decision_is_refused_with_who_decided(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace)
    case, post = await flag(ws)
    # Two moderators press at once: both clicks are built from the post as it was.
    first = ws.fake.click(MOD_CHANNEL, post.ts, f"modbot:confirm:{case.id}", user=MOD)
    second = ws.fake.click(MOD_CHANNEL, post.ts, f"modbot:dismiss:{case.id}", user=ADMIN_USER_ID)
    await ws.interact(first)
    await ws.interact(second)
    await ws.settle()
    replies = {
        words(await ws.fake.wait_for_response(str(p["response_url"]).rsplit("/", 1)[1])) for p in (first, second)
    }
    assert any(f"Confirmed case `{case.id}`" in r for r in replies)
    assert any("already decided: confirm by U0MOD" in r for r in replies)
    assert (await case_now(ws, case.id)).status is CaseStatus.CONFIRMED


async def test_show_reasoning_is_for_moderators_only_and_only_they_see_it(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace)
    case, post = await flag(ws)
    hook = await press(ws, post, "reasoning", case.id, MOD)
    said = await ws.fake.wait_for_response(hook)
    assert said["response_type"] == "ephemeral" and said["replace_original"] is False
    assert ws.model.reasoning in words(said) and "Insults a member" in words(said)
    refused = await press(ws, post, "reasoning", case.id, MEMBER)
    refusal = words(await ws.fake.wait_for_response(refused))
    assert "may not" in refusal and ws.model.reasoning not in refusal
    assert (await case_now(ws, case.id)).status is CaseStatus.OPEN  # looking decides nothing


# ---------------------------------------------------------------- appeals


async def appealed(ws: Workspace, statement: str = "It was a joke between friends.") -> tuple[Case, StoredMessage]:
    """A flagged case whose author appealed from the DM: the case and the appeal's post."""
    case, _ = await flag(ws)
    notice = post_in(ws.fake, AUTHOR_DM, "About your message")
    assert buttons(notice) == [f"modbot:appeal:{case.id}"]
    await press(ws, notice, "appeal", case.id, AUTHOR)
    form = ws.fake.last_view("modbot:appeal")
    answer = await ws.interact(ws.fake.submit_view(form["id"], {"statement": statement}, user=AUTHOR))
    assert answer.body is None
    await ws.settle()
    return case, post_in(ws.fake, MOD_CHANNEL, f"Appeal on case {case.id}")


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_the_author_appeals_from_the_dm_and_the_moderators_get_it(
    make_workspace: MakeWorkspace, mode: str
) -> None:
    ws = await setup(make_workspace, mode, effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    case, appeal_post = await appealed(ws, "It was a joke between <!channel> friends.")
    assert (await case_now(ws, case.id)).status is CaseStatus.APPEALED
    [appeal] = [a async for a in _appeals(ws, case.id)]
    assert appeal.statement == "It was a joke between <!channel> friends." and appeal.author_id == AUTHOR
    text = "\n".join(texts_in(appeal_post.blocks))
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "HB1.a" in text and "not a rule of" not in text  # the post has no brief: the id stands alone
    assert buttons(appeal_post) == [f"modbot:uphold:{case.id}", f"modbot:overturn:{case.id}"]
    told = post_in(ws.fake, AUTHOR_DM, "modbot")
    assert "is with the moderators" in "\n".join(texts_in(told.blocks))


async def _appeals(ws: Workspace, case_id: str) -> Any:
    found = await ws.store.appeals.for_case(case_id)
    if found is not None:
        yield found


async def test_an_empty_statement_is_refused_in_the_form_and_a_case_is_appealed_once(
    make_workspace: MakeWorkspace,
) -> None:
    ws = await setup(make_workspace, effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    case, _ = await flag(ws)
    notice = post_in(ws.fake, AUTHOR_DM, "About your message")
    await press(ws, notice, "appeal", case.id, AUTHOR)
    form = ws.fake.last_view("modbot:appeal")
    answer = await ws.interact(ws.fake.submit_view(form["id"], {"statement": "   "}, user=AUTHOR))
    assert answer.body == {"response_action": "errors", "errors": {"statement": "Say why the decision is wrong."}}
    await ws.settle()
    assert await ws.store.appeals.for_case(case.id) is None
    await ws.interact(ws.fake.submit_view(form["id"], {"statement": "I was quoting someone."}, user=AUTHOR))
    await ws.settle()
    opened = len(ws.fake.calls_to("views.open"))
    hook = await press(ws, notice, "appeal", case.id, AUTHOR)  # the button is still there: a second try
    assert "A case can be appealed once" in words(await ws.fake.wait_for_response(hook))
    assert len(ws.fake.calls_to("views.open")) == opened  # no second form


async def test_someone_else_cannot_appeal_the_authors_case(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace, effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    case, _ = await flag(ws)
    notice = post_in(ws.fake, AUTHOR_DM, "About your message")
    hook = await press(ws, notice, "appeal", case.id, MEMBER)  # say the DM were shared
    assert "only the author of the message may appeal" in words(await ws.fake.wait_for_response(hook))
    assert ws.fake.calls_to("views.open") == []
    assert await ws.store.appeals.for_case(case.id) is None


@pytest.mark.parametrize("action", ["overturn", "uphold"])
async def test_a_moderator_decides_the_appeal_in_a_form_and_everyone_sees_the_outcome(
    make_workspace: MakeWorkspace, action: str
) -> None:
    ws = await setup(make_workspace, effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    case, appeal_post = await appealed(ws)
    flag_post = post_in(ws.fake, MOD_CHANNEL, f"case {case.id} (")

    await press(ws, appeal_post, action, case.id, MOD)
    form = ws.fake.last_view("modbot:decide_appeal")
    assert form["title"]["text"] == f"{action.title()} the appeal"
    answer = await ws.interact(ws.fake.submit_view(form["id"], {"note": "Read it again: <@U0ADMIN>."}, user=MOD))
    assert answer.body is None
    await ws.settle()

    decided = await case_now(ws, case.id)
    assert decided.status is (CaseStatus.OVERTURNED if action == "overturn" else CaseStatus.UPHELD)
    # The author is told how it ended, with the note (escaped).
    outcome = post_in(ws.fake, AUTHOR_DM, "Your appeal")
    said = "\n".join(texts_in(outcome.blocks))
    assert ("reversed their decision" if action == "overturn" else "kept their decision") in said
    assert "Read it again: &lt;@U0ADMIN&gt;." in said and "<@" not in said
    # The appeal's post and the flag post are both rewritten, without buttons.
    appeal_now = ws.fake.messages[(MOD_CHANNEL, appeal_post.ts)]
    status = "overturned" if action == "overturn" else "upheld"
    assert buttons(appeal_now) == [] and f"Appeal on case {case.id} · {status}" in texts_in(appeal_now.blocks)
    flag_now = ws.fake.messages[(MOD_CHANNEL, flag_post.ts)]
    assert buttons(flag_now) == [] and "Appeal" in "\n".join(texts_in(flag_now.blocks))
    # The moderator is told privately in the channel.
    [ephemeral] = [c for c in ws.fake.calls_to("chat.postEphemeral") if c.args["user"] == MOD]
    assert ephemeral.args["channel"] == MOD_CHANNEL and case.id in "\n".join(texts_in(ephemeral.json_arg("blocks")))


async def test_a_member_cannot_open_the_appeal_decision(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace, effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    case, appeal_post = await appealed(ws)
    opened = len(ws.fake.calls_to("views.open"))
    hook = await press(ws, appeal_post, "overturn", case.id, MEMBER)
    assert "may not" in words(await ws.fake.wait_for_response(hook))
    assert len(ws.fake.calls_to("views.open")) == opened
    assert (await case_now(ws, case.id)).status is CaseStatus.APPEALED


async def test_the_appeal_post_of_a_case_decided_meanwhile_loses_its_stale_buttons(
    make_workspace: MakeWorkspace,
) -> None:
    ws = await setup(make_workspace, effects=(EffectKind.FLAG, EffectKind.NOTIFY_AUTHOR))
    case, appeal_post = await appealed(ws)
    await press(ws, appeal_post, "uphold", case.id, MOD)
    form = ws.fake.last_view("modbot:decide_appeal")
    admin = await ws.adapter.people.actor(ADMIN_USER_ID, await ws.settings())
    await ws.app.appeals.overturn(case.id, admin)  # decided elsewhere while the form was open
    await ws.interact(ws.fake.submit_view(form["id"], {}, user=MOD))
    await ws.settle()
    [ephemeral] = [c for c in ws.fake.calls_to("chat.postEphemeral") if c.args["user"] == MOD]
    assert "already decided" in "\n".join(texts_in(ephemeral.json_arg("blocks")))
    assert buttons(ws.fake.messages[(MOD_CHANNEL, appeal_post.ts)]) == []
    assert (await case_now(ws, case.id)).status is CaseStatus.OVERTURNED


# ---------------------------------------------------------------- member reports


async def test_a_member_reports_a_message_and_the_moderators_get_it(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace)
    event = ws.fake.user_message("meet me behind <!here> the school, <@U0KID>", user=AUTHOR)
    await deliver(ws, event)  # judged clean by the model: a person still may report it
    payload = ws.fake.shortcut_on("C0GENERAL", event["event"]["ts"], "modbot_report", user=MEMBER)
    answer = await ws.interact(payload)
    assert (answer.status, answer.body) == (200, None)
    await ws.settle()
    form = ws.fake.last_view("modbot:report")
    shown = "\n".join(texts_in(form["blocks"]))
    assert "meet me behind @\u200bhere the school, @U0KID" in shown and "<!" not in shown
    await ws.interact(ws.fake.submit_view(form["id"], {"reason": "This is grooming. <!channel>"}, user=MEMBER))
    await ws.settle()
    report = post_in(ws.fake, MOD_CHANNEL, "A member reported a message")
    shown = "\n".join(texts_in(report.blocks))
    assert shown.count("<") == shown.count("<http") + shown.count("<#")  # links only
    assert "|Member>" in shown and "|U0Author>" in shown  # reporter and author, named, not mentioned
    assert "&gt; meet me behind @\u200bhere the school, @U0KID" in shown
    assert "This is grooming. &lt;!channel&gt;" in shown and "<!" not in shown and "<@" not in shown
    assert ws.fake.permalink("C0GENERAL", event["event"]["ts"]) in shown
    hook = str(payload["response_url"]).rsplit("/", 1)[1]
    assert "the moderators have your report" in words(await ws.fake.wait_for_response(hook))
    assert not any(m.channel == AUTHOR_DM for m in ws.fake.messages.values())  # the author is not told


async def test_reports_are_limited_per_person(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace)
    event = ws.fake.user_message("hello", user=AUTHOR)
    await deliver(ws, event)
    hooks = []
    for _ in range(11):
        payload = ws.fake.shortcut_on("C0GENERAL", event["event"]["ts"], "modbot_report", user=MEMBER)
        await ws.interact(payload)
        hooks.append(str(payload["response_url"]).rsplit("/", 1)[1])
    await ws.settle()
    assert len(ws.fake.calls_to("views.open")) == 10
    assert "the next one in" in words(await ws.fake.wait_for_response(hooks[-1]))


async def test_a_report_without_a_moderators_channel_says_so(make_workspace: MakeWorkspace) -> None:
    ws = await setup(make_workspace, mod_channel_id=None)
    event = ws.fake.user_message("hello", user=AUTHOR)
    await deliver(ws, event)
    payload = ws.fake.shortcut_on("C0GENERAL", event["event"]["ts"], "modbot_report", user=MEMBER)
    await ws.interact(payload)
    await ws.settle()
    await ws.interact(ws.fake.submit_view(ws.fake.last_view("modbot:report")["id"], {}, user=MEMBER))
    await ws.settle()
    said = words(await ws.fake.wait_for_response(str(payload["response_url"]).rsplit("/", 1)[1]))
    assert "no moderators' channel" in said
