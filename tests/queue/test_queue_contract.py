"""The queue's store contract, on SQLite and on the fake: revisions, pages, deletions, removals, work."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from bot.domain import (
    Author,
    Case,
    CaseNoteKind,
    CaseStatus,
    Confidence,
    Effect,
    EffectKind,
    EffectOutcome,
    Message,
    Verdict,
)
from bot.store.ports import IntakeOutcome, ModerationStore, RunnerLockHeld, WorkKind
from tests.queue.conftest import T0
from tests.workflow.fakes import FakeClock

UPDATE = Effect(kind=EffectKind.UPDATE_FLAG, reason="edited by the author")


def msg(message_id: str, text: str, *, at: datetime = T0, edited: bool = False, server: str = "g1") -> Message:
    return Message(
        platform="console",
        server_id=server,
        channel_id="c1",
        message_id=message_id,
        author=Author(id="u1"),
        text=text,
        sent_at=T0,
        edited=edited,
        edited_at=at if edited else None,
    )


def verdict(violation: bool, reasoning: str = "thinking about it") -> Verdict:
    return Verdict(
        policy="harassment",
        policy_version=1,
        violation=violation,
        rule_ids=("HB1.a",) if violation else (),
        confidence=Confidence.HIGH,
        reasoning=reasoning,
    )


async def judge(
    store: ModerationStore,
    queue_id: int,
    message: Message,
    case_id: str,
    status: CaseStatus,
    *,
    revision: int = 1,
    flag_reference: str | None = None,
    created_at: datetime = T0,
) -> None:
    case = Case(
        id=case_id,
        message=message,
        status=status,
        verdicts=(verdict(status is not CaseStatus.CLEAN),),
        revision=revision,
        created_at=created_at,
    )
    effects = [(Effect(kind=EffectKind.FLAG), EffectOutcome.PENDING)] if flag_reference else []
    assert await store.record_decision(queue_id, case, effects)
    if flag_reference:
        await store.effects.set_outcome(
            case_id, 1, EffectOutcome.DONE, finish_queue_id=queue_id, reference=flag_reference
        )


# ---------------------------------------------------------------- revisions


async def test_an_edit_is_a_new_revision_and_a_replay_of_either_is_a_repeat(either_store: ModerationStore) -> None:
    store = either_store
    first = await store.intake(msg("m1", "hello"))
    assert (first.outcome, first.revision) == (IntakeOutcome.QUEUED, 1)
    # A gateway replays the creation; Discord sends an update when only a link preview changed.
    assert (await store.intake(msg("m1", "hello"))).outcome is IntakeOutcome.REPEAT
    assert (await store.intake(msg("m1", "hello", at=T0 + timedelta(seconds=5), edited=True))).outcome is (
        IntakeOutcome.REPEAT
    )
    edit = await store.intake(msg("m1", "you idiot", at=T0 + timedelta(seconds=10), edited=True))
    assert (edit.outcome, edit.revision) == (IntakeOutcome.QUEUED, 2)
    assert (await store.intake(msg("m1", "you idiot", at=T0 + timedelta(seconds=10), edited=True))).outcome is (
        IntakeOutcome.REPEAT
    )
    # Edited back to the first text, later: a revision of its own, judged again.
    back = await store.intake(msg("m1", "hello", at=T0 + timedelta(seconds=20), edited=True))
    assert (back.outcome, back.revision) == (IntakeOutcome.QUEUED, 3)
    assert await store.queue_counts() == {"pending": 3}


async def test_a_revision_older_than_the_latest_is_recorded_never_judged(either_store: ModerationStore) -> None:
    store = either_store
    await store.intake(msg("m1", "one"))
    await store.intake(msg("m1", "three", at=T0 + timedelta(seconds=30), edited=True))
    late = await store.intake(msg("m1", "two", at=T0 + timedelta(seconds=20), edited=True))
    assert (late.outcome, late.revision, late.accepted) == (IntakeOutcome.STALE, 3, True)
    assert (await store.intake(msg("m1", "two", at=T0 + timedelta(seconds=20), edited=True))).outcome is (
        IntakeOutcome.REPEAT
    )
    page = await store.waiting_page(T0, (), 10)
    assert [(item.revision, item.message.text) for item in page] == [(1, "one"), (2, "three")]
    assert await store.queue_state("console", "g1", "m1") == "pending"  # the latest revision, "three"


async def test_the_page_says_which_revisions_a_newer_one_superseded(either_store: ModerationStore) -> None:
    store = either_store
    await store.intake(msg("m1", "one"))
    await store.intake(msg("m1", "two", at=T0 + timedelta(seconds=1), edited=True))
    await store.intake(msg("m2", "other"))
    page = await store.waiting_page(T0, (), 10)
    assert [(item.message.message_id, item.revision, item.superseded) for item in page] == [
        ("m1", 1, True),
        ("m1", 2, False),
        ("m2", 1, False),
    ]
    await store.supersede(page[0].id)
    assert await store.queue_counts() == {"pending": 2, "superseded": 1}


async def test_a_held_revision_waits_until_its_time(either_store: ModerationStore) -> None:
    store = either_store
    await store.intake(msg("m1", "one"))
    held = await store.intake(
        msg("m1", "two", at=T0 + timedelta(seconds=1), edited=True), hold_until=T0 + timedelta(seconds=30)
    )
    assert held.outcome is IntakeOutcome.HELD
    assert [i.revision for i in await store.waiting_page(T0 + timedelta(seconds=29), (), 10)] == [1]
    assert [i.revision for i in await store.waiting_page(T0 + timedelta(seconds=30), (), 10)] == [1, 2]
    # A first revision is never held: only edits are limited.
    assert (await store.intake(msg("m9", "x"), hold_until=T0 + timedelta(hours=1))).outcome is IntakeOutcome.QUEUED


async def test_pages_are_bounded_oldest_first_and_leave_out_what_is_held_in_memory(
    either_store: ModerationStore,
) -> None:
    store = either_store
    ids = [(await store.intake(msg(f"m{i}", f"text {i}"))).queue_id for i in range(10)]
    first = await store.waiting_page(T0, (), 4)
    assert [i.id for i in first] == ids[:4]
    second = await store.waiting_page(T0, {i.id for i in first}, 4)
    assert [i.id for i in second] == ids[4:8]
    stats = await store.queue_backlog()
    assert (stats.depth, stats.oldest_enqueued_at) == (10, T0)


async def test_concurrent_intake_of_a_message_and_its_edit_keeps_their_order(either_store: ModerationStore) -> None:
    store = either_store
    taken = await asyncio.gather(
        store.intake(msg("m1", "one")),
        store.intake(msg("m1", "one")),
        store.intake(msg("m1", "two", at=T0 + timedelta(seconds=1), edited=True)),
    )
    assert [(t.outcome, t.revision) for t in taken] == [
        (IntakeOutcome.QUEUED, 1),
        (IntakeOutcome.REPEAT, None),
        (IntakeOutcome.QUEUED, 2),
    ]


async def test_an_edit_notes_the_open_case_of_an_earlier_revision_and_updates_its_flag(
    either_store: ModerationStore,
) -> None:
    store = either_store
    first = msg("m1", "you idiot")
    taken = await store.intake(first)
    assert taken.queue_id is not None
    await judge(store, taken.queue_id, first, "C1", CaseStatus.OPEN, flag_reference="mods/1")
    clean = msg("m2", "hello")
    clean_taken = await store.intake(clean)
    assert clean_taken.queue_id is not None
    await judge(store, clean_taken.queue_id, clean, "C2", CaseStatus.CLEAN)

    edit = await store.intake(
        msg("m1", "you nice person", at=T0 + timedelta(minutes=1), edited=True), flag_update=UPDATE
    )
    assert edit.noted_cases == ("C1",)
    assert (
        await store.intake(msg("m2", "hello!", at=T0 + timedelta(minutes=1), edited=True), flag_update=UPDATE)
    ).noted_cases == ()

    case = await store.cases.get("C1")
    assert case is not None
    assert [(n.kind, n.revision) for n in case.notes] == [(CaseNoteKind.EDITED, 2)]
    assert case.message.text == "you idiot"  # the evidence stays with the case
    assert [(r.effect.kind, r.outcome) for r in case.effects] == [
        (EffectKind.FLAG, EffectOutcome.DONE),
        (EffectKind.UPDATE_FLAG, EffectOutcome.PENDING),
    ]
    assert await store.cases_with_unfinished_effects() == ["C1"]
    latest = await store.cases.for_message("console", "g1", "m1")
    assert latest is not None and latest.id == "C1"  # revision 2 is not judged yet


# ---------------------------------------------------------------- deletion and removal


async def test_a_deleted_message_is_cancelled_purged_and_noted_where_it_is_evidence(
    either_store: ModerationStore, clock: FakeClock
) -> None:
    store = either_store
    flagged = msg("m1", "you idiot")
    taken = await store.intake(flagged)
    assert taken.queue_id is not None
    await judge(store, taken.queue_id, flagged, "C1", CaseStatus.OPEN, flag_reference="mods/1")
    clean = msg("m2", "my address is 1 Main St")
    clean_taken = await store.intake(clean)
    assert clean_taken.queue_id is not None
    await judge(store, clean_taken.queue_id, clean, "C2", CaseStatus.CLEAN)
    waiting = await store.intake(msg("m2", "my address is 2 Main St", at=T0 + timedelta(seconds=5), edited=True))

    at = clock.advance(minutes=1)
    kept = await store.message_deleted("console", "g1", "m1", at, flag_update=UPDATE)
    assert (kept.cancelled, kept.purged, kept.noted_cases) == (0, 0, ("C1",))
    gone = await store.message_deleted("console", "g1", "m2", at, flag_update=UPDATE)
    assert (gone.cancelled, gone.purged, gone.noted_cases) == (1, 1, ())

    c1, c2 = await store.cases.get("C1"), await store.cases.get("C2")
    assert c1 is not None and c2 is not None
    assert c1.message.text == "you idiot" and [n.kind for n in c1.notes] == [CaseNoteKind.DELETED]
    assert c1.effects[-1].effect.kind is EffectKind.UPDATE_FLAG and c1.effects[-1].outcome is EffectOutcome.PENDING
    assert c2.message.text == "" and c2.text_purged_at == at and c2.notes == ()
    assert waiting.queue_id not in {i.id for i in await store.waiting_page(at, (), 10)}
    # A replayed creation or edit of a deleted message is never taken again.
    assert (await store.intake(msg("m2", "my address is 3 Main St", at=at, edited=True))).outcome is (
        IntakeOutcome.DELETED
    )


async def test_a_deletion_before_the_message_arrives_refuses_it_when_it_comes(either_store: ModerationStore) -> None:
    store = either_store
    deleted = await store.message_deleted("console", "g1", "m1", T0)
    assert (deleted.cancelled, deleted.purged) == (0, 0)
    assert (await store.intake(msg("m1", "hello"))).outcome is IntakeOutcome.DELETED
    assert (await store.queue_backlog()).depth == 0


async def test_a_judgement_of_a_message_cancelled_meanwhile_is_dropped(either_store: ModerationStore) -> None:
    store = either_store
    message = msg("m1", "you idiot")
    taken = await store.intake(message)
    assert taken.queue_id is not None
    await store.message_deleted("console", "g1", "m1", T0)
    case = Case(id="C1", message=message, status=CaseStatus.OPEN, verdicts=(verdict(True),))
    assert not await store.record_decision(
        taken.queue_id, case, [(Effect(kind=EffectKind.FLAG), EffectOutcome.PENDING)]
    )
    assert await store.cases.get("C1") is None


async def test_a_removed_server_loses_its_queued_work_and_only_it(either_store: ModerationStore) -> None:
    store = either_store
    for i in range(3):
        await store.intake(msg(f"m{i}", "hello", server="gone"))
    await store.intake(msg("k1", "hello", server="stays"))
    await store.work.add(WorkKind.PREVIEW, "console", "gone", "draft 1", {"text": "x"}, T0)
    await store.work.add(WorkKind.PREVIEW, "console", "stays", "draft 2", {"text": "y"}, T0)
    assert await store.server_removed("console", "gone", T0) == 4
    assert [i.message.server_id for i in await store.waiting_page(T0, (), 10)] == ["stays"]
    assert [w.server_id for w in await store.work.waiting((), 10)] == ["stays"]


# ---------------------------------------------------------------- interactive work


async def test_work_is_queued_once_per_subject_and_leaves_no_input_behind(either_store: ModerationStore) -> None:
    store = either_store
    first = await store.work.add(WorkKind.SECOND_OPINION, "console", "g1", "appeal 1", {"case_id": "C1"}, T0)
    assert first is not None
    assert await store.work.add(WorkKind.SECOND_OPINION, "console", "g1", "appeal 1", {"case_id": "C1"}, T0) is None
    second = await store.work.add(WorkKind.PREVIEW, "console", "g1", "draft 7", {"text": "policy"}, T0)
    assert [w.id for w in await store.work.waiting((), 10)] == [first, second]
    assert [w.id for w in await store.work.waiting({first}, 10)] == [second]
    assert await store.work.record_failure(first, "ValueError: bug", T0) == 1
    [again, _] = await store.work.waiting((), 10)
    assert again.attempts == 1 and again.payload == {"case_id": "C1"}
    await store.work.finish(first, "done", "", T0)
    await store.work.finish(first, "failed", "too late", T0)  # finished once
    assert await store.work.counts() == {"done": 1, "pending": 1}
    # Done: the same subject may be queued again (asked for once more).
    assert await store.work.add(WorkKind.SECOND_OPINION, "console", "g1", "appeal 1", {"case_id": "C1"}, T0)


# ---------------------------------------------------------------- upkeep


async def test_clean_reasoning_is_forgotten_after_the_cutoff_and_violations_keep_theirs(
    either_store: ModerationStore,
) -> None:
    store = either_store
    for case_id, status, at in (
        ("OLD-CLEAN", CaseStatus.CLEAN, T0),
        ("OLD-FLAG", CaseStatus.OPEN, T0),
        ("NEW-CLEAN", CaseStatus.CLEAN, T0 + timedelta(days=2)),
    ):
        message = msg(case_id, "text")
        taken = await store.intake(message)
        assert taken.queue_id is not None
        await judge(store, taken.queue_id, message, case_id, status, created_at=at)
    assert await store.forget_clean_reasoning(T0 + timedelta(days=1), limit=100) == 1
    reasoning = {c.id: c.verdicts[0].reasoning async for c in store.cases.every()}
    assert reasoning == {"OLD-CLEAN": "", "OLD-FLAG": "thinking about it", "NEW-CLEAN": "thinking about it"}
    assert await store.forget_clean_reasoning(T0 + timedelta(days=1), limit=100) == 0


async def test_one_runner_per_store(either_store: ModerationStore) -> None:
    await either_store.take_runner_lock("modbot run")
    if isinstance(either_store.describe().get("path"), str):
        return  # SQLite's lock is per process: tests/queue/test_single_process.py runs two
    with pytest.raises(RunnerLockHeld):
        await either_store.take_runner_lock("modbot run")
