"""User groups as roles: exempt groups at intake, moderator groups for the core, and people named one by one."""

from __future__ import annotations

import logging

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.people import People
from adapters.slack.web_client import build_web_client
from bot.domain import CaseStatus, ServerSettings
from bot.workflow.actors import Actor, is_moderator
from tests.fakes.slack_fake import ADMIN_USER_ID, BOT_TOKEN, TEAM_ID, FakeSlack
from tests.slack.conftest import MakeWorkspace, Workspace


async def post(ws: Workspace, text: str, user: str) -> CaseStatus:
    event = ws.fake.user_message(text, user=user)
    assert (await ws.fake.deliver(ws.events_url, event))[0] == 200
    await ws.settle()
    [case] = ws.cases_of("C0GENERAL", event["event"]["ts"])
    return case.status


async def test_a_member_of_an_exempt_user_group_is_not_judged(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http", exempt_role_ids=("S0TRUSTED",))
    ws.fake.add_usergroup("S0TRUSTED", "trusted", ["U0OLDTIMER"])
    assert await post(ws, "you idiot, that was a great move", "U0OLDTIMER") is CaseStatus.SKIPPED
    assert await post(ws, "you idiot", "U0NEWBIE") is CaseStatus.OPEN
    assert len(ws.model.calls) == 1  # only the newcomer's message went to the model
    [skipped] = [c for c in ws.cases if c.status is CaseStatus.SKIPPED]
    assert skipped.message.author.roles == ("S0TRUSTED",)


async def test_membership_is_looked_up_once_a_minute_not_per_message(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http", exempt_role_ids=("S0TRUSTED",))
    ws.fake.add_usergroup("S0TRUSTED", "trusted", ["U0OLDTIMER"])
    for i in range(3):
        await post(ws, f"hello {i}", "U0OLDTIMER")
    assert len(ws.fake.calls_to("usergroups.users.list")) == 1


async def test_without_exempt_groups_intake_asks_slack_nothing(make_workspace: MakeWorkspace) -> None:
    ws = await make_workspace("http")
    await post(ws, "hello", "U0NEWBIE")
    assert ws.fake.calls_to("usergroups.users.list") == [] and ws.fake.calls_to("users.info") == []


async def test_when_slack_will_not_list_an_exempt_group_the_message_is_judged(
    make_workspace: MakeWorkspace, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await make_workspace("http", exempt_role_ids=("S0TRUSTED",))
    ws.fake.add_usergroup("S0TRUSTED", "trusted", ["U0OLDTIMER"])
    ws.fake.fail_next("usergroups.users.list", "plan_upgrade_required")
    with caplog.at_level(logging.WARNING, logger="adapters.slack.people"):
        assert await post(ws, "you idiot", "U0OLDTIMER") is CaseStatus.OPEN
    assert any("S0TRUSTED" in r.getMessage() and "plan_upgrade_required" in r.getMessage() for r in caplog.records)


async def test_the_actor_carries_moderator_groups_and_the_admin_flag(fake_slack: FakeSlack) -> None:
    fake_slack.add_usergroup("S0MODS", "mods", ["U0GROUPIE"])
    fake_slack.add_usergroup("S0OTHER", "other", ["U0GROUPIE"])
    fake_slack.add_user("U0GUEST", "guest")
    people = People(_client(fake_slack))
    settings = ServerSettings(platform="slack", server_id=TEAM_ID, moderator_role_ids=("S0MODS", "U0NOTAGROUP"))
    groupie = await people.actor("U0GROUPIE", settings)
    assert groupie == Actor(id="U0GROUPIE", platform="slack", server_id=TEAM_ID, roles=("S0MODS",), is_admin=False)
    admin = await people.actor(ADMIN_USER_ID, settings)
    assert admin.is_admin and admin.roles == ()
    assert (await people.actor("U0GUEST", settings)).roles == ()
    assert [is_moderator(a, settings) for a in (groupie, admin)] == [True, True]
    assert not is_moderator(await people.actor("U0GUEST", settings), settings)
    # Only the configured groups are looked up, never every group the user might be in.
    assert {c.args["usergroup"] for c in fake_slack.calls_to("usergroups.users.list")} == {"S0MODS"}


def test_people_named_one_by_one_are_moderators_in_the_core() -> None:
    settings = ServerSettings(platform="slack", server_id=TEAM_ID, moderator_user_ids=("U0SOLO",))
    assert is_moderator(Actor(id="U0SOLO", platform="slack", server_id=TEAM_ID), settings)
    assert not is_moderator(Actor(id="U0OTHER", platform="slack", server_id=TEAM_ID), settings)


def _client(fake: FakeSlack) -> AsyncWebClient:
    return build_web_client(BOT_TOKEN, fake.api_url)
