"""The Slack sink against the local Slack: each effect's Web API calls, its honest result, and its limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.slack.config import DELETE_NEEDS_ADMIN_TOKEN, NO_TIMEOUTS
from adapters.slack.sink import SlackEffectSink
from adapters.slack.web_client import build_web_client
from bot.domain import (
    AppealStatus,
    AuthorNotice,
    Case,
    CaseStatus,
    Confidence,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectRecord,
    PolicyBrief,
    RuleText,
    ServerSettings,
    Verdict,
)
from bot.notices import AppealFiled, AppealReminder, AppealView, Digest, ModelOutage, ModelRecovered, WaitingAppeal
from tests.fakes.slack_fake import ADMIN_TOKEN, BOT_TOKEN, TEAM_ID, FakeSlack
from tests.helpers import make_message
from tests.slack.test_http_events import texts_in

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BRIEF = PolicyBrief(
    name="harassment",
    version=3,
    rules=(RuleText(id="HB1.a", text="Insulting a target or mocking their looks."),),
)
SUPPORT = PolicyBrief(
    name="self-harm",
    version=1,
    author_notice=AuthorNotice.SUPPORT,
    notice_text="We care about you. If you are struggling, talk to someone you trust.",
    rules=(RuleText(id="SH1.a", text="Expressing intent to self-harm."),),
)


def sink_for(fake: FakeSlack, *, admin: bool = False) -> SlackEffectSink:
    return SlackEffectSink(build_web_client(BOT_TOKEN, fake.api_url), admin_user_token=ADMIN_TOKEN if admin else None)


def a_case(fake: FakeSlack, text: str = "you idiot", *, policy: str = "harassment", **case_fields: object) -> Case:
    event = fake.user_message(text, user="U0AUTHOR", channel="C0GENERAL")["event"]
    message = make_message(
        f"C0GENERAL:{event['ts']}", text, server=TEAM_ID, channel="C0GENERAL", author="U0AUTHOR", platform="slack"
    )
    verdict = Verdict(
        policy=policy,
        policy_version=3,
        violation=True,
        rule_ids=("HB1.a",),
        confidence=Confidence.HIGH,
        rationale="An insult aimed at a member.",
    )
    fields: dict[str, object] = {"status": CaseStatus.OPEN, "verdicts": (verdict,), "created_at": T0}
    fields.update(case_fields)
    return Case(id="0123456789AB", message=message, **fields)  # type: ignore[arg-type]


def context_for(case: Case, **fields: object) -> EffectContext:
    settings = ServerSettings(platform="slack", server_id=TEAM_ID, mod_channel_id="C0MODS")
    base: dict[str, object] = {"case": case, "settings": settings, "policies": (BRIEF, SUPPORT)}
    base.update(fields)
    return EffectContext(**base)  # type: ignore[arg-type]


async def test_flag_posts_to_the_mod_channel_and_returns_its_reference(fake_slack: FakeSlack) -> None:
    sink = sink_for(fake_slack)
    case = a_case(fake_slack)
    result = await sink.execute(Effect(kind=EffectKind.FLAG), context_for(case))
    assert result.outcome is EffectOutcome.DONE
    [post] = fake_slack.calls_to("chat.postMessage")
    assert result.reference == f"C0MODS:{next(ts for (c, ts) in fake_slack.messages if c == 'C0MODS')}"
    assert post.args["unfurl_links"] in (False, "0", "false")  # a quoted link must not unfurl in the mod channel
    # No admin token: no "Confirm and delete" button that could only fail.
    buttons = [e["text"]["text"] for b in post.json_arg("blocks") if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Confirm", "Dismiss", "Show reasoning"]


async def test_without_a_mod_channel_the_flag_fails_and_says_what_to_do(fake_slack: FakeSlack) -> None:
    case = a_case(fake_slack)
    context = context_for(case, settings=ServerSettings(platform="slack", server_id=TEAM_ID))
    result = await sink_for(fake_slack).execute(Effect(kind=EffectKind.FLAG), context)
    assert result.outcome is EffectOutcome.FAILED and "/modbot setup" in result.detail
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_a_bot_not_in_the_mod_channel_is_told_to_be_invited(fake_slack: FakeSlack) -> None:
    fake_slack.channels_without_bot.add("C0MODS")
    result = await sink_for(fake_slack).execute(Effect(kind=EffectKind.FLAG), context_for(a_case(fake_slack)))
    assert result.outcome is EffectOutcome.FAILED
    assert "not_in_channel" in result.detail and "/invite @modbot" in result.detail


async def test_update_flag_rewrites_the_post_with_the_decision_and_no_buttons(fake_slack: FakeSlack) -> None:
    sink = sink_for(fake_slack)
    case = a_case(fake_slack)
    flagged = await sink.execute(Effect(kind=EffectKind.FLAG), context_for(case))
    fake_slack.add_user("U0MOD", "mo", display_name="Mo")
    decided = case.model_copy(update={"status": CaseStatus.CONFIRMED, "decided_by": "U0MOD", "decided_at": T0})
    result = await sink.execute(
        Effect(kind=EffectKind.UPDATE_FLAG), context_for(decided, flag_reference=flagged.reference)
    )
    assert result.outcome is EffectOutcome.DONE and result.reference == flagged.reference
    [update] = fake_slack.calls_to("chat.update")
    assert f"{update.args['channel']}:{update.args['ts']}" == flagged.reference
    blocks = update.json_arg("blocks")
    assert not [b for b in blocks if b["type"] == "actions"]
    words = "\n".join(texts_in(blocks))
    assert "*Confirmed* by <https://fake-workspace.slack.com/team/U0MOD|Mo> at 2026-11-01 12:00 UTC" in words


async def test_update_flag_without_a_flag_post_fails_honestly(fake_slack: FakeSlack) -> None:
    result = await sink_for(fake_slack).execute(Effect(kind=EffectKind.UPDATE_FLAG), context_for(a_case(fake_slack)))
    assert result.outcome is EffectOutcome.FAILED and "no flag post" in result.detail
    assert fake_slack.calls_to("chat.update") == []


async def test_delete_goes_through_the_admin_user_token(fake_slack: FakeSlack) -> None:
    case = a_case(fake_slack)
    sink = sink_for(fake_slack, admin=True)
    assert EffectKind.DELETE in sink.supported_effects
    result = await sink.execute(Effect(kind=EffectKind.DELETE), context_for(case))
    assert result.outcome is EffectOutcome.DONE
    [delete] = fake_slack.calls_to("chat.delete")
    assert delete.token == ADMIN_TOKEN and f"{delete.args['channel']}:{delete.args['ts']}" == case.message.message_id
    # Deleted already (by a moderator's hand, say): the goal is met, and the result says so.
    again = await sink.execute(Effect(kind=EffectKind.DELETE), context_for(case))
    assert (again.outcome, again.detail) == (EffectOutcome.DONE, "already deleted")


async def test_without_an_admin_token_delete_is_unsupported_and_never_tried(fake_slack: FakeSlack) -> None:
    sink = sink_for(fake_slack)
    assert EffectKind.DELETE not in sink.supported_effects
    result = await sink.execute(Effect(kind=EffectKind.DELETE), context_for(a_case(fake_slack)))
    assert (result.outcome, result.detail) == (EffectOutcome.UNSUPPORTED, DELETE_NEEDS_ADMIN_TOKEN)
    assert fake_slack.calls_to("chat.delete") == []


@pytest.mark.parametrize("kind", [EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT])
async def test_timeouts_are_unsupported_and_nothing_is_called(fake_slack: FakeSlack, kind: EffectKind) -> None:
    sink = sink_for(fake_slack, admin=True)
    result = await sink.execute(Effect(kind=kind, timeout_minutes=10), context_for(a_case(fake_slack)))
    assert result.outcome is EffectOutcome.UNSUPPORTED and "Slack has no timeouts" in result.detail
    assert kind not in sink.supported_effects
    if kind is EffectKind.TIMEOUT:
        assert result.detail == NO_TIMEOUTS
    assert [c.method for c in fake_slack.calls] == []


async def test_moderators_from_a_user_group_and_by_id_get_a_dm_but_not_the_author(fake_slack: FakeSlack) -> None:
    for user in ("U0MODA", "U0MODB", "U0SOLO"):
        fake_slack.add_user(user)
    fake_slack.usergroups["S0MODS"] = ["U0MODA", "U0MODB", "U0AUTHOR"]
    case = a_case(fake_slack)
    settings = ServerSettings(
        platform="slack",
        server_id=TEAM_ID,
        mod_channel_id="C0MODS",
        moderator_role_ids=("S0MODS",),
        moderator_user_ids=("U0SOLO", "U0MODA"),  # named twice: messaged once
    )
    result = await sink_for(fake_slack).execute(
        Effect(kind=EffectKind.DM_MODERATORS), context_for(case, settings=settings)
    )
    assert result.outcome is EffectOutcome.DONE and result.detail == "sent to 3 of 3 moderators"
    opened = [c.args["users"] for c in fake_slack.calls_to("conversations.open")]
    assert opened == ["U0MODA", "U0MODB", "U0SOLO"]
    assert {c.http_method for c in fake_slack.calls_to("usergroups.users.list")} == {"GET"}


async def test_with_no_moderators_configured_the_dm_fails_and_says_why(fake_slack: FakeSlack) -> None:
    result = await sink_for(fake_slack).execute(Effect(kind=EffectKind.DM_MODERATORS), context_for(a_case(fake_slack)))
    assert result.outcome is EffectOutcome.FAILED and "moderator" in result.detail


async def test_the_author_is_told_the_rules_and_may_appeal_but_never_sees_the_reasoning(fake_slack: FakeSlack) -> None:
    case = a_case(fake_slack)
    effect = Effect(kind=EffectKind.NOTIFY_AUTHOR, policy="harassment", rule_ids=("HB1.a",), reason="SECRET rationale")
    result = await sink_for(fake_slack).execute(effect, context_for(case))
    assert result.outcome is EffectOutcome.DONE and result.reference == f"D0AUTHOR:{result.reference.split(':')[1]}"  # type: ignore[union-attr]
    [post] = fake_slack.calls_to("chat.postMessage")
    words = "\n".join(texts_in(post.json_arg("blocks")))
    assert "HB1.a" in words and "Insulting a target" in words and "SECRET" not in words
    assert "was flagged to the moderators" in words  # nothing was deleted, so it does not say removed
    [appeal] = [e for b in post.json_arg("blocks") if b["type"] == "actions" for e in b["elements"]]
    assert appeal["action_id"] == f"modbot:appeal:{case.id}"


async def test_a_support_policy_sends_its_caring_message_alone(fake_slack: FakeSlack) -> None:
    case = a_case(fake_slack, "i can't do this anymore", policy="self-harm")
    effect = Effect(kind=EffectKind.NOTIFY_AUTHOR, policy="self-harm", rule_ids=("SH1.a",))
    result = await sink_for(fake_slack).execute(effect, context_for(case))
    assert result.outcome is EffectOutcome.DONE
    [post] = fake_slack.calls_to("chat.postMessage")
    words = "\n".join(texts_in(post.json_arg("blocks"))) + post.args["text"]
    assert SUPPORT.notice_text in words
    for removal_word in ("removed", "rule", "appeal", "SH1.a", "flagged", "violat"):
        assert removal_word not in words.lower()
    assert not [b for b in post.json_arg("blocks") if b["type"] == "actions"]


async def test_the_appeal_outcome_reaches_the_author(fake_slack: FakeSlack) -> None:
    case = a_case(fake_slack)
    deleted = EffectRecord(
        id=1, case_id=case.id, effect=Effect(kind=EffectKind.DELETE), outcome=EffectOutcome.DONE, updated_at=T0
    )
    case = case.model_copy(update={"status": CaseStatus.OVERTURNED, "effects": (deleted,)})
    effect = Effect(kind=EffectKind.NOTIFY_APPEAL_OUTCOME, appeal_outcome="overturned", reason="Sorry, <!here> banter.")
    result = await sink_for(fake_slack).execute(effect, context_for(case))
    assert result.outcome is EffectOutcome.DONE
    words = "\n".join(texts_in(fake_slack.calls_to("chat.postMessage")[0].json_arg("blocks")))
    assert "reversed their decision" in words and "cannot restore a deleted message" in words
    assert "Sorry, &lt;!here&gt; banter." in words


async def test_a_closed_dm_is_recorded_failed_with_slacks_reason(fake_slack: FakeSlack) -> None:
    case = a_case(fake_slack)
    fake_slack.users["U0AUTHOR"].deleted = True
    effect = Effect(kind=EffectKind.NOTIFY_AUTHOR, policy="harassment", rule_ids=("HB1.a",))
    result = await sink_for(fake_slack).execute(effect, context_for(case))
    assert result.outcome is EffectOutcome.FAILED and "user_disabled" in result.detail


async def test_a_rate_limit_is_waited_out_and_the_flag_still_posted(fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit_next("chat.postMessage", retry_after=0)
    result = await sink_for(fake_slack).execute(Effect(kind=EffectKind.FLAG), context_for(a_case(fake_slack)))
    assert result.outcome is EffectOutcome.DONE
    assert len(fake_slack.calls_to("chat.postMessage")) == 2  # the 429, then the post


async def test_a_long_rate_limit_is_not_waited_out_but_recorded(fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit_next("chat.postMessage", retry_after=3600)
    result = await sink_for(fake_slack).execute(Effect(kind=EffectKind.FLAG), context_for(a_case(fake_slack)))
    assert result.outcome is EffectOutcome.FAILED and "ratelimited" in result.detail
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_lookups_that_fail_do_not_stop_the_flag(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("users.info", "missing_scope")
    fake_slack.fail_next("chat.getPermalink", "message_not_found")
    result = await sink_for(fake_slack).execute(Effect(kind=EffectKind.FLAG), context_for(a_case(fake_slack)))
    assert result.outcome is EffectOutcome.DONE
    words = "\n".join(texts_in(fake_slack.calls_to("chat.postMessage")[0].json_arg("blocks")))
    assert "team/U0AUTHOR|U0AUTHOR>" in words and "Open the message" not in words


def _appeal(status: AppealStatus = AppealStatus.PENDING) -> AppealView:
    verdict = Verdict(policy="harassment", policy_version=3, violation=True, rule_ids=("HB1.a",), rationale="insult")
    return AppealView(
        case_id="0123456789AB",
        server_id=TEAM_ID,
        channel_id="C0GENERAL:1700000000.000100",
        message_id="C0GENERAL:1700000000.000200",
        author_id="U0AUTHOR",
        text="you idiot <!channel>",
        case_status=CaseStatus.APPEALED,
        original=(verdict,),
        appeal_id=7,
        statement="It was a joke between friends <@U0FRIEND>",
        appeal_status=status,
        second_opinion=(),
        second_opinion_error="the model was not answering",
        filed_at=T0,
    )


NOTICES = [
    AppealFiled(appeal=_appeal()),
    AppealReminder(
        server_id=TEAM_ID,
        limit_hours=24,
        appeals=(WaitingAppeal(case_id="0123456789AB", appeal_id=7, filed_at=T0, waiting_hours=30.0),),
    ),
    Digest(
        server_id=TEAM_ID,
        day="2026-11-01",
        period_start=T0,
        period_end=T0,
        messages=100,
        flagged=3,
        confirmed=2,
        dismissed=1,
        appeals_filed=1,
        appeals_decided=1,
        overturned=0,
        overturn_rate=0.0,
        median_latency_ms=850.0,
        shadow_evaluation=("harassment: precision 0.90 <!here>",),
    ),
    ModelOutage(since=T0, problem="connection refused"),
    ModelRecovered(outage_started=T0, recovered_at=T0),
]


@pytest.mark.parametrize("notice", NOTICES, ids=lambda n: n.kind)
async def test_every_notice_reaches_the_mod_channel(fake_slack: FakeSlack, notice: object) -> None:
    server = ServerSettings(platform="slack", server_id=TEAM_ID, mod_channel_id="C0MODS")
    result = await sink_for(fake_slack).post(server, notice)  # type: ignore[arg-type]
    assert result.outcome is EffectOutcome.DONE and result.reference is not None
    [post] = fake_slack.calls_to("chat.postMessage")
    assert post.args["channel"] == "C0MODS"
    assert "<!" not in "\n".join(texts_in(post.json_arg("blocks")))


async def test_an_appeal_notice_carries_uphold_and_overturn(fake_slack: FakeSlack) -> None:
    server = ServerSettings(platform="slack", server_id=TEAM_ID, mod_channel_id="C0MODS")
    await sink_for(fake_slack).post(server, AppealFiled(appeal=_appeal()))
    blocks = fake_slack.calls_to("chat.postMessage")[0].json_arg("blocks")
    buttons = [(e["action_id"], e["value"]) for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [("modbot:uphold:0123456789AB", "7"), ("modbot:overturn:0123456789AB", "7")]
    words = "\n".join(texts_in(blocks))
    assert "&lt;@U0FRIEND&gt;" in words and "the model was not answering" in words


async def test_without_a_mod_channel_a_notice_is_unsupported(fake_slack: FakeSlack) -> None:
    server = ServerSettings(platform="slack", server_id=TEAM_ID)
    result = await sink_for(fake_slack).post(server, ModelOutage(since=T0, problem="down"))
    assert result.outcome is EffectOutcome.UNSUPPORTED and "/modbot setup" in result.detail
    assert fake_slack.calls == []
