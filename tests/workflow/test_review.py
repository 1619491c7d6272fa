"""Review: confirm (with optional delete or timeout) and dismiss, once, by moderators only."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain import CaseStatus, Effect, EffectKind, EffectOutcome
from bot.store.sqlite import SqliteStore
from bot.workflow import AlreadyDecided, NotAuthorised, NotFound, Refused, Reviews
from tests.workflow.conftest import MEMBER, MOD, MOD2, SERVER, configure, human_labels, seed_case, snapshot
from tests.workflow.fakes import FakeClock, FakeSink


async def test_confirm_records_the_moderator_the_time_and_a_violation_label(
    wstore: SqliteStore, sink: FakeSink, clock: FakeClock
) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    clock.advance(minutes=7)
    outcome = await Reviews(wstore, {"console": sink}, clock).confirm(case.id, MOD, note="clear insult")
    assert outcome.case.status is CaseStatus.CONFIRMED
    assert (outcome.case.decided_by, outcome.case.decided_at) == ("mod-1", clock.now)
    assert (outcome.decision.action.value, outcome.decision.moderator_id, outcome.decision.note) == (
        "confirm",
        "mod-1",
        "clear insult",
    )
    assert outcome.decision.at == clock.now
    assert await human_labels(wstore, case.id) == [("confirm", 1, "mod-1")]
    assert sink.executed == []  # nothing asked for, nothing done


async def test_confirm_can_delete_and_time_out(wstore: SqliteStore, sink: FakeSink, clock: FakeClock) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    outcome = await Reviews(wstore, {"console": sink}, clock).confirm(case.id, MOD, delete=True, timeout_minutes=60)
    # The author sees a consequence, so by default they are told why (and may appeal), last.
    assert sink.kinds() == [EffectKind.DELETE, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR]
    timeout = sink.executed[1][0]
    assert (timeout.timeout_minutes, timeout.requested_by) == (60, "mod-1")
    assert sink.executed[0][1].status is CaseStatus.CONFIRMED  # the adapter sees the decided case
    stored = await wstore.cases.get(case.id)
    assert stored is not None
    assert [(r.effect.kind, r.outcome) for r in stored.effects] == [
        (EffectKind.DELETE, EffectOutcome.DONE),
        (EffectKind.TIMEOUT, EffectOutcome.DONE),
        (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE),
    ]
    assert [r.outcome for r in outcome.effects] == [EffectOutcome.DONE] * 3
    told = stored.effects[2].effect
    assert (told.policy, told.rule_ids, told.requested_by) == ("harassment", ("HB1.a",), "mod-1")


async def test_an_effect_the_platform_cannot_do_is_recorded_as_unsupported(
    wstore: SqliteStore, clock: FakeClock
) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    sink = FakeSink(unsupported={EffectKind.TIMEOUT}, failing={EffectKind.DELETE})
    outcome = await Reviews(wstore, {"console": sink}, clock).confirm(case.id, MOD, delete=True, timeout_minutes=5)
    assert [(r.effect.kind, r.outcome) for r in outcome.effects] == [
        (EffectKind.DELETE, EffectOutcome.FAILED),
        (EffectKind.TIMEOUT, EffectOutcome.UNSUPPORTED),
        (EffectKind.NOTIFY_AUTHOR, EffectOutcome.DONE),
    ]
    assert "RuntimeError: delete failed" in outcome.effects[0].detail
    assert outcome.case.status is CaseStatus.CONFIRMED  # the decision stands


async def test_a_message_already_deleted_is_not_deleted_again(wstore: SqliteStore, sink: FakeSink) -> None:
    await configure(wstore)
    case = await seed_case(wstore, effects=[(Effect(kind=EffectKind.DELETE), EffectOutcome.DONE)])
    outcome = await Reviews(wstore, {"console": sink}).confirm(case.id, MOD, delete=True)
    assert sink.executed == []
    assert outcome.notes == ("the message was already deleted",)


async def test_dismiss_is_a_false_positive_label(wstore: SqliteStore, sink: FakeSink) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    outcome = await Reviews(wstore, {"console": sink}).dismiss(case.id, MOD, note="banter")
    assert outcome.case.status is CaseStatus.DISMISSED
    assert await human_labels(wstore, case.id) == [("dismiss", 0, "mod-1")]


async def test_needs_review_cases_can_be_decided(wstore: SqliteStore, sink: FakeSink) -> None:
    await configure(wstore)
    case = await seed_case(wstore, status=CaseStatus.NEEDS_REVIEW, verdicts=[])
    assert (await Reviews(wstore, {"console": sink}).confirm(case.id, MOD)).case.status is CaseStatus.CONFIRMED


@pytest.mark.parametrize("second", ["confirm", "dismiss"])
async def test_a_second_decision_is_refused_and_says_who_decided_first(
    wstore: SqliteStore, sink: FakeSink, clock: FakeClock, second: str
) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    reviews = Reviews(wstore, {"console": sink}, clock)
    await reviews.confirm(case.id, MOD)
    decided_at = clock.now
    clock.advance(minutes=3)
    before = await snapshot(wstore)
    with pytest.raises(AlreadyDecided) as refused:
        if second == "confirm":
            await reviews.confirm(case.id, MOD2, timeout_minutes=30)
        else:
            await reviews.dismiss(case.id, MOD2)
    assert refused.value.moderator_id == "mod-1"
    assert refused.value.at == decided_at
    assert f"confirm by mod-1 at {decided_at:%Y-%m-%d %H:%M} UTC" in str(refused.value)
    assert await snapshot(wstore) == before
    assert len(sink.executed) == 0


async def test_two_moderators_at_once_one_decision(wstore: SqliteStore, sink: FakeSink) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    reviews = Reviews(wstore, {"console": sink})
    results = await asyncio.gather(
        reviews.confirm(case.id, MOD, timeout_minutes=10), reviews.dismiss(case.id, MOD2), return_exceptions=True
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, AlreadyDecided)]
    assert len(wins) == 1 and len(losses) == 1
    assert len(await human_labels(wstore, case.id)) == 1


async def test_a_decision_written_elsewhere_blocks_a_second_one(wstore: SqliteStore, sink: FakeSink) -> None:
    """A decision written by another process (here: straight into the table) still blocks a second one."""
    await configure(wstore)
    case = await seed_case(wstore)
    async with wstore.raw_transaction() as conn:
        await conn.execute(
            "INSERT INTO human_decisions (case_id, server_id, action, violation, moderator_id, note, at)"
            " VALUES (?, ?, 'dismiss', 0, 'other-process', '', ?)",
            (case.id, SERVER, wstore.now().isoformat()),
        )
    before = await snapshot(wstore)
    with pytest.raises(AlreadyDecided, match="dismiss by other-process"):
        await Reviews(wstore, {"console": sink}).confirm(case.id, MOD)
    assert await snapshot(wstore) == before


async def test_only_moderators_may_review_and_a_refusal_changes_nothing(wstore: SqliteStore, sink: FakeSink) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    reviews = Reviews(wstore, {"console": sink})
    before = await snapshot(wstore)
    with pytest.raises(NotAuthorised, match="member-9 may not confirm cases"):
        await reviews.confirm(case.id, MEMBER, delete=True)
    with pytest.raises(NotAuthorised):
        await reviews.dismiss(case.id, MEMBER)
    with pytest.raises(NotAuthorised):
        await reviews.open_cases(MEMBER)
    assert await snapshot(wstore) == before
    assert sink.executed == []


@pytest.mark.parametrize("status", [CaseStatus.CLEAN, CaseStatus.SKIPPED, CaseStatus.APPEALED])
async def test_only_flagged_cases_are_reviewed(wstore: SqliteStore, sink: FakeSink, status: CaseStatus) -> None:
    await configure(wstore)
    case = await seed_case(wstore, status=status)
    before = await snapshot(wstore)
    with pytest.raises(Refused, match=f"case {case.id} is"):
        await Reviews(wstore, {"console": sink}).confirm(case.id, MOD)
    assert await snapshot(wstore) == before


async def test_bad_input_is_refused_before_anything_changes(wstore: SqliteStore, sink: FakeSink) -> None:
    await configure(wstore)
    case = await seed_case(wstore)
    reviews = Reviews(wstore, {"console": sink})
    before = await snapshot(wstore)
    with pytest.raises(Refused, match="timeout of 0 minutes is out of range"):
        await reviews.confirm(case.id, MOD, timeout_minutes=0)
    with pytest.raises(Refused, match="the note is 1001 characters"):
        await reviews.dismiss(case.id, MOD, note="x" * 1001)
    with pytest.raises(NotFound, match="no case 'NOPE'"):
        await reviews.confirm("NOPE", MOD)
    assert await snapshot(wstore) == before


async def test_open_cases_lists_what_awaits_a_moderator(wstore: SqliteStore, sink: FakeSink) -> None:
    await configure(wstore)
    first = await seed_case(wstore)
    await seed_case(wstore, status=CaseStatus.CLEAN, text="hello")
    third = await seed_case(wstore, status=CaseStatus.NEEDS_REVIEW, verdicts=[])
    reviews = Reviews(wstore, {"console": sink})
    assert [c.id for c in await reviews.open_cases(MOD)] == [first.id, third.id]
    await reviews.dismiss(first.id, MOD)
    assert [c.id for c in await reviews.open_cases(MOD)] == [third.id]


async def test_the_unique_index_is_the_last_guard(
    wstore: SqliteStore, sink: FakeSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the friendly pre-check, the index still refuses, and the refusal still names the first decider."""
    await configure(wstore)
    case = await seed_case(wstore)
    reviews = Reviews(wstore, {"console": sink})
    await reviews.dismiss(case.id, MOD)

    async def no_check(*args: object) -> None:
        return None

    monkeypatch.setattr("bot.workflow.review.refuse_if_decided", no_check)
    async with wstore.raw_transaction() as conn:  # as if the status change had been lost
        await conn.execute("UPDATE cases SET status = 'open' WHERE id = ?", (case.id,))
    before = await snapshot(wstore)
    with pytest.raises(AlreadyDecided, match="dismiss by mod-1"):
        await reviews.confirm(case.id, MOD2, timeout_minutes=5)
    assert await snapshot(wstore) == before
    assert sink.executed == []
