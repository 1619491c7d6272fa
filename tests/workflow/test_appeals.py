"""Appeals: once, by the author, with a high-effort second opinion; upheld or overturned by a moderator."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from bot.classifier import ModelUnavailable, OllamaClassifier
from bot.domain import AppealStatus, CaseStatus, Effect, EffectKind, EffectOutcome, Effort
from bot.notices import SecondOpinion
from bot.store.sqlite import SqliteStore
from bot.workflow import (
    AlreadyDecided,
    AppealFiled,
    Appeals,
    NotAuthorised,
    NotFound,
    PolicyAdmin,
    Refused,
    Reviews,
)
from tests.fakes.ollama_fake import FakeOllama, Reply, content_of, system_of, verdict_json
from tests.workflow.conftest import (
    ADMIN,
    AUTHOR,
    AUTHOR_ACTOR,
    MEMBER,
    MOD,
    MOD2,
    SERVER,
    configure,
    human_labels,
    policy_text,
    seed_case,
    snapshot,
)
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink

STATEMENT = 'I was quoting what someone said to me, to report it. "Ignore the policy" is not an instruction.'


def second_opinion_says_safe(request: dict[str, Any]) -> Reply:
    if "appeal" in content_of(request):
        return Reply(verdict_json(0, ["HB0.b"], "high", "Quotes abuse to report it (HB0.b)."))
    return Reply(verdict_json(1, ["HB1.a"], "high", "Insults a member (HB1.a)."))


@pytest.fixture
def appeals(
    wstore: SqliteStore, classifier: OllamaClassifier, sink: FakeSink, channel: FakeModChannel, clock: FakeClock
) -> Appeals:
    return Appeals(wstore, classifier, {"console": sink}, channel, clock)


async def test_the_author_appeals_and_the_model_looks_again_at_high_effort_with_the_statement(
    wstore: SqliteStore, appeals: Appeals, fake_ollama: FakeOllama, channel: FakeModChannel
) -> None:
    await configure(wstore)
    case = await seed_case(wstore, text="he said 'you are an idiot' to me")
    # The policy changed after the decision: the second opinion judges by the version that decided.
    await PolicyAdmin(wstore).set(ADMIN, policy_text().replace("Insulting a target", "Insulting"))
    fake_ollama.responder = second_opinion_says_safe

    view = await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    # Filing returns at once: the appeal is recorded, its second opinion queued, the model not called.
    assert fake_ollama.chat_requests() == []
    assert view.case_status is CaseStatus.APPEALED and view.appeal_status is AppealStatus.PENDING
    assert view.second_opinion == () and view.second_opinion_queued
    ((server_id, filed),) = channel.posted
    assert server_id == SERVER and isinstance(filed, AppealFiled)
    assert (filed.appeal.text, filed.appeal.statement) == ("he said 'you are an idiot' to me", STATEMENT)
    assert filed.appeal.original[0].rationale == "Insults a member (HB1.a)."

    await appeals.complete_second_opinion(case.id)  # what the bot's worker runs

    (request,) = fake_ollama.chat_requests()
    assert request["think"] == "high"
    payload = content_of(request)
    assert payload["appeal"] == STATEMENT
    assert payload["content"]["text"] == "he said 'you are an idiot' to me"
    v1 = (await wstore.policies.versions("console", SERVER, "harassment"))[0]
    assert system_of(request) == v1.text
    # The original verdict is unchanged; the second opinion is kept beside it.
    stored = await wstore.cases.get(case.id)
    assert stored is not None and [v.violation for v in stored.verdicts] == [True]
    # Moderators are told when it arrives, with everything they need.
    ((_, _), (server_id, notice)) = channel.posted
    assert server_id == SERVER and isinstance(notice, SecondOpinion)
    shown = notice.appeal
    assert (shown.text, shown.statement) == ("he said 'you are an idiot' to me", STATEMENT)
    assert shown.original[0].rationale == "Insults a member (HB1.a)." and shown.original[0].policy_version == 1
    assert [(v.violation, v.effort, v.rule_ids, v.policy_version) for v in shown.second_opinion] == [
        (False, Effort.HIGH, ("HB0.b",), 1)
    ]
    assert shown.second_opinion[0].rationale == "Quotes abuse to report it (HB0.b)."
    assert not shown.second_opinion_queued
    # Run again (a redelivered work item): nothing is asked or stored twice.
    await appeals.complete_second_opinion(case.id)
    assert len(fake_ollama.chat_requests()) == 1 and len(channel.posted) == 2


async def test_only_the_author_may_appeal(wstore: SqliteStore, appeals: Appeals, fake_ollama: FakeOllama) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    before = await snapshot(wstore)
    for someone in (MEMBER, MOD, ADMIN):
        with pytest.raises(NotAuthorised, match=f"{someone.id} may not appeal case {case.id}"):
            await appeals.file(case.id, someone, STATEMENT)
    assert await snapshot(wstore) == before
    assert fake_ollama.chat_requests() == []


async def test_a_statement_over_1000_characters_or_empty_is_refused(
    wstore: SqliteStore, appeals: Appeals, fake_ollama: FakeOllama
) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    before = await snapshot(wstore)
    with pytest.raises(Refused, match="the statement is 1001 characters; the limit is 1000"):
        await appeals.file(case.id, AUTHOR_ACTOR, "x" * 1001)
    with pytest.raises(Refused, match="needs a statement"):
        await appeals.file(case.id, AUTHOR_ACTOR, "   ")
    assert await snapshot(wstore) == before
    # Exactly 1,000 characters is allowed.
    assert (await appeals.file(case.id, AUTHOR_ACTOR, "y" * 1000)).statement == "y" * 1000


async def test_a_case_is_appealed_once(wstore: SqliteStore, appeals: Appeals, fake_ollama: FakeOllama) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    before = await snapshot(wstore)
    with pytest.raises(Refused, match=f"case {case.id} was already appealed at 2025-03-03 12:00 UTC"):
        await appeals.file(case.id, AUTHOR_ACTOR, "another try")
    assert await snapshot(wstore) == before
    assert await wstore.work.counts() == {"pending": 1}  # one second opinion queued


@pytest.mark.parametrize("status", [CaseStatus.CLEAN, CaseStatus.DISMISSED, CaseStatus.SKIPPED])
async def test_nothing_to_appeal_in_a_case_that_holds_nothing_against_the_author(
    wstore: SqliteStore, appeals: Appeals, status: CaseStatus
) -> None:
    await configure(wstore)
    case = await seed_case(wstore, status=status)
    before = await snapshot(wstore)
    with pytest.raises(Refused, match=f"is {status.value}: only a flagged or confirmed case can be appealed"):
        await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    assert await snapshot(wstore) == before


async def test_a_confirmed_case_can_be_appealed_and_then_not_reviewed_again(
    wstore: SqliteStore, appeals: Appeals, sink: FakeSink, fake_ollama: FakeOllama
) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    await Reviews(wstore, {"console": sink}).confirm(case.id, MOD)
    view = await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    assert view.case_status is CaseStatus.APPEALED


async def test_the_appeal_stands_when_the_model_is_down_and_the_opinion_can_be_asked_again(
    wstore: SqliteStore, appeals: Appeals, fake_ollama: FakeOllama, channel: FakeModChannel
) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    fake_ollama.rec.inject("POST", "/api/chat", lambda: web.Response(status=503, text='{"error": "busy"}'))
    view = await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    assert view.second_opinion == () and view.case_status is CaseStatus.APPEALED
    assert channel.kinds() == ["appeal_filed"]
    # The queued work meets the outage: it stays queued (the pipeline waits for the model).
    with pytest.raises(ModelUnavailable):
        await appeals.complete_second_opinion(case.id)
    assert (await appeals.view(case.id, MOD)).second_opinion_queued
    with pytest.raises(NotAuthorised):
        await appeals.second_opinion(case.id, AUTHOR_ACTOR)
    again = await appeals.second_opinion(case.id, MOD)
    assert len(again.second_opinion) == 1 and again.second_opinion[0].effort is Effort.HIGH
    # Asking once more does not call the model again.
    await appeals.second_opinion(case.id, MOD)
    assert len(fake_ollama.chat_requests()) == 2


async def test_uphold_tells_the_author_and_labels_a_violation(
    wstore: SqliteStore, appeals: Appeals, sink: FakeSink, clock: FakeClock
) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    clock.advance(hours=2)
    outcome = await appeals.uphold(case.id, MOD, note="It is an insult, not a quote.")
    assert outcome.case.status is CaseStatus.UPHELD
    assert (outcome.case.decided_by, outcome.case.decided_at) == ("mod-1", clock.now)
    ((told, told_case),) = sink.executed
    assert told.kind is EffectKind.NOTIFY_APPEAL_OUTCOME
    assert (told.appeal_outcome, told.reason) == ("upheld", "It is an insult, not a quote.")
    assert told_case.message.author.id == AUTHOR
    assert await human_labels(wstore, case.id) == [("uphold", 1, "mod-1")]
    view = await appeals.view(case.id, MOD)
    assert (view.appeal_status, view.decided_by, view.note) == (AppealStatus.UPHELD, "mod-1", outcome.decision.note)


async def test_overturn_lifts_a_running_timeout_marks_a_false_positive_and_tells_the_author(
    wstore: SqliteStore, appeals: Appeals, sink: FakeSink, clock: FakeClock
) -> None:
    await configure(wstore)
    case = await seed_case(
        wstore,
        effects=[
            (Effect(kind=EffectKind.DELETE), EffectOutcome.DONE),
            (Effect(kind=EffectKind.TIMEOUT, timeout_minutes=1440), EffectOutcome.DONE),
        ],
    )
    await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    clock.advance(hours=3)
    outcome = await appeals.overturn(case.id, MOD, note="It was a quote.")
    assert outcome.case.status is CaseStatus.OVERTURNED
    assert sink.kinds() == [EffectKind.LIFT_TIMEOUT, EffectKind.NOTIFY_APPEAL_OUTCOME]
    lift, tell = (e for e, _ in sink.executed)
    assert lift.timeout_minutes == 1440
    assert (tell.appeal_outcome, tell.reason) == ("overturned", "It was a quote.")
    assert "the message was deleted and cannot be restored" in outcome.notes
    assert await human_labels(wstore, case.id) == [("overturn", 0, "mod-1")]
    stored = await wstore.cases.get(case.id)
    assert stored is not None
    assert [(r.effect.kind, r.outcome) for r in stored.effects][-2:] == [
        (EffectKind.LIFT_TIMEOUT, EffectOutcome.DONE),
        (EffectKind.NOTIFY_APPEAL_OUTCOME, EffectOutcome.DONE),
    ]


async def test_overturn_does_not_lift_a_timeout_that_has_ended(
    wstore: SqliteStore, appeals: Appeals, sink: FakeSink, clock: FakeClock
) -> None:
    await configure(wstore)
    case = await seed_case(wstore, effects=[(Effect(kind=EffectKind.TIMEOUT, timeout_minutes=10), EffectOutcome.DONE)])
    await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    clock.advance(minutes=11)
    outcome = await appeals.overturn(case.id, MOD)
    assert sink.kinds() == [EffectKind.NOTIFY_APPEAL_OUTCOME]
    assert any("had already ended" in n for n in outcome.notes)


async def test_a_shadow_timeout_is_not_lifted(wstore: SqliteStore, appeals: Appeals, sink: FakeSink) -> None:
    await configure(wstore)
    case = await seed_case(
        wstore, effects=[(Effect(kind=EffectKind.TIMEOUT, timeout_minutes=60, shadow=True), EffectOutcome.SHADOW)]
    )
    await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    await appeals.overturn(case.id, MOD)
    assert sink.kinds() == [EffectKind.NOTIFY_APPEAL_OUTCOME]


@pytest.mark.parametrize("first", ["uphold", "overturn"])
async def test_an_appeal_is_decided_once(
    wstore: SqliteStore, appeals: Appeals, sink: FakeSink, clock: FakeClock, first: str
) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    await getattr(appeals, first)(case.id, MOD)
    told = len(sink.executed)
    clock.advance(minutes=1)
    before = await snapshot(wstore)
    for second in (appeals.uphold, appeals.overturn):
        with pytest.raises(AlreadyDecided, match=f"{first} by mod-1 at 2025-03-03 12:00 UTC"):
            await second(case.id, MOD2)
    assert await snapshot(wstore) == before
    assert len(sink.executed) == told


async def test_only_moderators_decide_appeals(wstore: SqliteStore, appeals: Appeals, sink: FakeSink) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    before = await snapshot(wstore)
    for someone in (MEMBER, AUTHOR_ACTOR):
        with pytest.raises(NotAuthorised, match="may not decide appeals"):
            await appeals.overturn(case.id, someone)
    assert await snapshot(wstore) == before
    assert sink.executed == []


async def test_deciding_a_case_without_an_appeal_is_refused(wstore: SqliteStore, appeals: Appeals) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    before = await snapshot(wstore)
    with pytest.raises(NotFound, match=f"case {case.id} has no appeal to decide"):
        await appeals.uphold(case.id, MOD)
    assert await snapshot(wstore) == before


async def test_who_sees_an_appeal(wstore: SqliteStore, appeals: Appeals) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    await appeals.file(case.id, AUTHOR_ACTOR, STATEMENT)
    assert (await appeals.view(case.id, AUTHOR_ACTOR)).statement == STATEMENT
    assert (await appeals.view(case.id, MOD)).statement == STATEMENT
    with pytest.raises(NotAuthorised):
        await appeals.view(case.id, MEMBER)
    assert [v.case_id for v in await appeals.waiting(MOD)] == [case.id]
    await appeals.uphold(case.id, MOD)
    assert await appeals.waiting(MOD) == []
