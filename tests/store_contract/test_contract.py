"""One contract for every store: the same tests run against SQLite and against the in-memory fakes.

What the workflow relies on is written here once, so that the fakes its service tests
use cannot drift from the store the bot runs on (nor a future PostgreSQL store from both).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from bot.domain import (
    AppealStatus,
    Author,
    AuthorNotice,
    Case,
    CaseStatus,
    Confidence,
    DecisionAction,
    Effect,
    EffectKind,
    EffectOutcome,
    Message,
    Mode,
    ServerSettings,
    Verdict,
)
from bot.store.ports import (
    AuditEntry,
    CaseQuery,
    DuplicateAppeal,
    DuplicateDecision,
    HealthState,
    ModerationStore,
    PolicyContent,
)
from bot.store.sqlite import SqliteStore
from tests.fakes.store import FakeStore
from tests.workflow.fakes import FakeClock

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest_asyncio.fixture(params=["sqlite", "fake"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[ModerationStore]:
    made: ModerationStore
    made = (
        await SqliteStore.open(tmp_path / "contract.db", now=clock) if request.param == "sqlite" else FakeStore(clock)
    )
    yield made
    await made.close()


def message(message_id: str, *, platform: str = "console", server: str = "g1", author: str = "u1") -> Message:
    return Message(
        platform=platform,
        server_id=server,
        channel_id="c1",
        message_id=message_id,
        author=Author(id=author),
        text=f"text of {message_id}",
        sent_at=T0,
    )


def flagging(policy: str = "harassment", version: int = 1, latency_ms: float = 100.0) -> Verdict:
    return Verdict(
        policy=policy,
        policy_version=version,
        violation=True,
        rule_ids=("HB1.a",),
        confidence=Confidence.HIGH,
        latency_ms=latency_ms,
    )


async def decided_case(
    store: ModerationStore,
    case_id: str,
    *,
    status: CaseStatus = CaseStatus.OPEN,
    verdicts: tuple[Verdict, ...] | None = None,
    effects: tuple[tuple[Effect, EffectOutcome], ...] = (),
    created_at: datetime = T0,
    **where: str,
) -> Case:
    msg = message(f"m-{case_id}", **where)
    queue_id = await store.enqueue(msg)
    assert queue_id is not None
    case = Case(
        id=case_id,
        message=msg,
        status=status,
        verdicts=(flagging(),) if verdicts is None else verdicts,
        created_at=created_at,
    )
    await store.record_decision(queue_id, case, list(effects))
    found = await store.cases.get(case_id)
    assert found is not None
    return found


async def test_a_case_keeps_its_judging_notes_and_the_flag_it_joined(store: ModerationStore) -> None:
    await decided_case(store, "HOLD")
    for n, author in enumerate(["u2", "u3", "u2", "u4"]):
        msg = message(f"r{n}", author=author)
        queue_id = await store.enqueue(msg)
        assert queue_id is not None
        joined = Case(
            id=f"J{n}",
            message=msg,
            status=CaseStatus.OPEN,
            verdicts=(flagging(),),
            judging_notes="judged whole (12 characters); joined the flag of case HOLD",
            joined_case_id="HOLD",
            created_at=T0,
        )
        await store.record_decision(queue_id, joined, [])
    stored = await store.cases.get("J0")
    assert stored is not None and stored.joined_case_id == "HOLD"
    assert stored.judging_notes == "judged whole (12 characters); joined the flag of case HOLD"
    joins = await store.cases.flag_joins("HOLD")
    assert joins.count == 4 and joins.author_ids == ("u2", "u3", "u4")  # distinct, in the order they joined
    assert (await store.cases.flag_joins("HOLD", max_authors=2)).author_ids == ("u2", "u3")
    assert (await store.cases.flag_joins("J0")).count == 0


# ---------------------------------------------------------------- intake


async def test_intake_is_idempotent_per_platform_and_server(store: ModerationStore) -> None:
    ids = await asyncio.gather(*(store.enqueue(message("m1")) for _ in range(3)))
    assert sum(i is not None for i in ids) == 1
    assert await store.enqueue(message("m1", platform="discord")) is not None
    assert await store.enqueue(message("m1", server="g2")) is not None
    assert await store.queue_counts() == {"pending": 3}
    assert [item.message.message_id for item in await store.open_queue_items()] == ["m1", "m1", "m1"]
    assert await store.queue_state("console", "g1", "m1") == "pending"


async def test_the_backlog_counts_items_not_finished_and_dates_the_oldest(
    store: ModerationStore, clock: FakeClock
) -> None:
    empty = await store.queue_backlog()
    assert (empty.depth, empty.oldest_enqueued_at) == (0, None)
    first = await store.enqueue(message("m1"))
    clock.advance(seconds=30)
    await store.enqueue(message("m2"))
    await store.enqueue(message("m3"))
    assert first is not None
    backlog = await store.queue_backlog()
    assert (backlog.depth, backlog.oldest_enqueued_at) == (3, T0)
    # Decided with an effect still to run (acting): it still waits. Finished: it no longer does.
    case = Case(id="C1", message=message("m1"), status=CaseStatus.OPEN, verdicts=(flagging(),))
    await store.record_decision(first, case, [(Effect(kind=EffectKind.FLAG), EffectOutcome.PENDING)])
    assert (await store.queue_backlog()).depth == 3
    await store.finish_queue_item(first)
    backlog = await store.queue_backlog()
    assert (backlog.depth, backlog.oldest_enqueued_at) == (2, T0 + timedelta(seconds=30))


async def test_a_decision_with_pending_effects_keeps_the_item_acting_until_the_last_result(
    store: ModerationStore,
) -> None:
    msg = message("m1")
    queue_id = await store.enqueue(msg)
    assert queue_id is not None
    case = Case(id="C1", message=msg, status=CaseStatus.OPEN, verdicts=(flagging(),))
    await store.record_decision(queue_id, case, [(Effect(kind=EffectKind.FLAG), EffectOutcome.PENDING)])
    assert await store.queue_state("console", "g1", "m1") == "acting"
    assert await store.effects.claim("C1", 1)
    assert not await store.effects.claim("C1", 1)  # never twice
    await store.effects.set_outcome("C1", 1, EffectOutcome.DONE, "ok", finish_queue_id=queue_id, reference="ch/9")
    assert await store.queue_state("console", "g1", "m1") == "done"
    stored = await store.cases.get("C1")
    assert stored is not None
    assert [(r.outcome, r.detail, r.reference) for r in stored.effects] == [(EffectOutcome.DONE, "ok", "ch/9")]
    # A later result without a reference keeps the one stored.
    await store.effects.set_outcome("C1", 1, EffectOutcome.DONE, "again")
    stored = await store.cases.get("C1")
    assert stored is not None and stored.effects[0].reference == "ch/9"


async def test_effects_added_after_the_decision_follow_on_and_unfinished_ones_are_found(
    store: ModerationStore,
) -> None:
    case = await decided_case(store, "C1", effects=((Effect(kind=EffectKind.FLAG), EffectOutcome.DONE),))
    records = await store.effects.add_intents(
        case.id, [Effect(kind=EffectKind.DELETE), Effect(kind=EffectKind.TIMEOUT, timeout_minutes=5, shadow=True)]
    )
    assert [(r.id, r.outcome) for r in records] == [(2, EffectOutcome.PENDING), (3, EffectOutcome.SHADOW)]
    assert await store.cases_with_unfinished_effects() == ["C1"]
    assert await store.effects.claim("C1", 2)
    assert await store.cases_with_unfinished_effects() == ["C1"]  # started counts as unfinished
    await store.effects.set_outcome("C1", 2, EffectOutcome.DONE)
    assert await store.cases_with_unfinished_effects() == []


# ---------------------------------------------------------------- cases


async def test_cases_are_found_by_server_status_and_retention(store: ModerationStore, clock: FakeClock) -> None:
    await decided_case(store, "A", created_at=T0)
    await decided_case(store, "B", status=CaseStatus.CLEAN, created_at=T0 + timedelta(minutes=1))
    await decided_case(store, "C", created_at=T0 + timedelta(minutes=2))
    await decided_case(store, "D", platform="discord", created_at=T0 + timedelta(minutes=3))
    query = CaseQuery(platform="console", server_id="g1", statuses=(CaseStatus.OPEN,))
    assert [c.id for c in await store.cases.find(query)] == ["A", "C"]
    newest = CaseQuery(platform="console", server_id="g1", newest_first=True, limit=2)
    assert [c.id for c in await store.cases.find(newest)] == ["C", "B"]
    assert (await store.cases.for_message("discord", "g1", "m-D")) is not None
    assert await store.cases.for_message("console", "g1", "m-D") is None
    assert await store.cases.servers_with_text() == [("console", "g1"), ("discord", "g1")]
    assert await store.cases.purge_text("console", "g1", T0 + timedelta(minutes=1, seconds=30), clock.now) == 2
    purged = await store.cases.get("A")
    assert purged is not None and purged.message.text == "" and purged.text_purged_at == clock.now
    retained = CaseQuery(platform="console", server_id="g1", text_retained=True)
    assert [c.id for c in await store.cases.find(retained)] == ["C"]
    assert [c.id for c in await store.cases.get_many(["C", "A", "nope"])] == ["A", "C"]
    assert [c.id async for c in store.cases.every()] == ["A", "B", "C", "D"]


async def test_cases_are_found_by_author(store: ModerationStore) -> None:
    await decided_case(store, "A", created_at=T0)
    await decided_case(store, "B", author="u2", created_at=T0 + timedelta(minutes=1))
    await decided_case(store, "C", created_at=T0 + timedelta(minutes=2))
    await decided_case(store, "D", platform="discord", created_at=T0 + timedelta(minutes=3))
    own = CaseQuery(platform="console", server_id="g1", author_id="u1", newest_first=True)
    assert [c.id for c in await store.cases.find(own)] == ["C", "A"]
    assert await store.cases.find(CaseQuery(platform="console", server_id="g1", author_id="nobody")) == []


async def test_status_changes_and_the_authors_record(store: ModerationStore, clock: FakeClock) -> None:
    await decided_case(store, "A", created_at=T0 - timedelta(days=40))
    await decided_case(store, "B", created_at=T0 - timedelta(days=3))
    await decided_case(store, "C", created_at=T0 - timedelta(days=2))
    await decided_case(store, "D", status=CaseStatus.CLEAN, created_at=T0 - timedelta(days=1))
    await decided_case(store, "E", author="someone-else")
    await store.cases.set_status("B", CaseStatus.CONFIRMED, "mod-1", clock.now)
    await store.cases.set_status("C", CaseStatus.APPEALED)
    c = await store.cases.get("C")
    b = await store.cases.get("B")
    assert c is not None and c.status is CaseStatus.APPEALED and c.decided_by is None
    assert b is not None and (b.decided_by, b.decided_at) == ("mod-1", clock.now)
    history = await store.cases.author_history("console", "g1", "u1", T0 - timedelta(days=30), exclude_case_id="C")
    assert (history.cases, history.confirmed) == (1, 1)  # B only: A too old, C excluded, D clean
    assert await store.cases.count_strikes("console", "g1", "u1", T0 - timedelta(days=30)) == 1
    assert await store.cases.count_strikes("discord", "g1", "u1", T0 - timedelta(days=30)) == 0


async def test_a_case_flagged_only_by_a_support_policy_is_never_a_strike(store: ModerationStore) -> None:
    support = PolicyContent(name="self-harm", text="t", author_notice=AuthorNotice.SUPPORT, notice_text="We care.")
    await store.policies.add_version("console", "g1", support, "admin")
    await store.policies.add_version("console", "g1", PolicyContent(name="harassment", text="t"), "admin")
    await decided_case(store, "S", status=CaseStatus.CONFIRMED, verdicts=(flagging("self-harm"),))
    await decided_case(store, "H", status=CaseStatus.CONFIRMED, verdicts=(flagging("harassment"),))
    both = (flagging("self-harm"), flagging("harassment"))
    await decided_case(store, "B", status=CaseStatus.UPHELD, verdicts=both)
    assert await store.cases.count_strikes("console", "g1", "u1", T0 - timedelta(days=1)) == 2


# ---------------------------------------------------------------- appeals and decisions


async def test_an_appeal_is_filed_once_decided_and_given_a_second_opinion(
    store: ModerationStore, clock: FakeClock
) -> None:
    await decided_case(store, "A")
    await decided_case(store, "B", platform="discord")
    appeal = await store.appeals.add("A", "u1", "it was a quote", clock.now)
    with pytest.raises(DuplicateAppeal):
        await store.appeals.add("A", "u1", "again", clock.now)
    await store.appeals.add("B", "u1", "elsewhere", clock.now)
    assert [a.case_id for a in await store.appeals.pending("console", "g1")] == ["A"]
    await store.appeals.add_second_opinion(appeal.id, "A", [flagging(latency_ms=5.0)])
    await store.appeals.decide(appeal.id, AppealStatus.OVERTURNED, "mod-1", "quote", clock.now)
    found = await store.appeals.for_case("A")
    assert found is not None
    assert (found.status, found.decided_by, found.note, found.decided_at) == (
        AppealStatus.OVERTURNED,
        "mod-1",
        "quote",
        clock.now,
    )
    assert [v.latency_ms for v in found.second_opinion] == [5.0]
    assert await store.appeals.pending("console", "g1") == []
    # The second opinion is not one of the case's own verdicts.
    case = await store.cases.get("A")
    assert case is not None and len(case.verdicts) == 1


async def test_a_decision_is_made_once_per_stage(store: ModerationStore, clock: FakeClock) -> None:
    await decided_case(store, "A", platform="discord")
    first = await store.decisions.add("A", DecisionAction.CONFIRM, "mod-1", "insult", clock.now)
    assert (first.platform, first.server_id, first.violation, first.self_review) == ("discord", "g1", True, False)
    with pytest.raises(DuplicateDecision):
        await store.decisions.add("A", DecisionAction.DISMISS, "mod-2", "", clock.now)
    own = await store.decisions.add("A", DecisionAction.OVERTURN, "admin-1", "", clock.now, self_review=True)
    assert own.self_review and not own.violation
    assert (await store.decisions.first("A", "review")) == first
    assert (await store.decisions.first("A", "appeal")) == own
    assert [d.id for d in await store.decisions.for_case("A")] == [first.id, own.id]
    assert len(await store.decisions.for_server("discord", "g1")) == 2
    assert await store.decisions.for_server("console", "g1") == []
    assert len(await store.decisions.every()) == 2


# ---------------------------------------------------------------- policies, settings, audit


async def test_policies_are_versioned_switched_and_drafted_per_platform_and_server(
    store: ModerationStore, clock: FakeClock
) -> None:
    content = PolicyContent(name="harassment", text="v1", sensitive=True, notice_text="why")
    v1 = await store.policies.add_version("console", "g1", content, "alice")
    v2 = await store.policies.add_version("console", "g1", content.model_copy(update={"text": "v2"}), "bob")
    await store.policies.add_version("discord", "g1", content.model_copy(update={"text": "other"}), "carol")
    assert (v1.version, v2.version, v2.platform, v2.sensitive, v2.notice_text) == (1, 2, "console", True, "why")
    (live,) = await store.policies.live("console", "g1")
    assert (live.policy.text, live.enabled, live.mode) == ("v2", True, None)
    await store.policies.set_switches("console", "g1", "harassment", False, Mode.SHADOW)
    (live,) = await store.policies.live("console", "g1")
    assert (live.enabled, live.mode, live.policy.enabled) == (False, Mode.SHADOW, False)
    (elsewhere,) = await store.policies.live("discord", "g1")
    assert (elsewhere.policy.text, elsewhere.enabled) == ("other", True)
    draft = await store.policies.add_draft("console", "g1", content, 2, "dave", {"examined": 3}, clock.now)
    assert await store.policies.get_draft("discord", "g1", draft.id) is None
    await store.policies.mark_draft_applied(draft.id, "dave", 3, clock.now)
    found = await store.policies.get_draft("console", "g1", draft.id)
    assert found is not None
    assert (found.content, found.summary, found.applied_by, found.applied_version) == (
        content,
        {"examined": 3},
        "dave",
        3,
    )


async def test_settings_and_audit_are_kept_per_platform_and_server(store: ModerationStore, clock: FakeClock) -> None:
    await store.settings.put(ServerSettings(platform="console", server_id="g1", retention_days=7), clock.now)
    await store.settings.put(ServerSettings(platform="discord", server_id="g1", retention_days=9), clock.now)
    await store.settings.put(ServerSettings(platform="console", server_id="g1", retention_days=8), clock.now)
    assert (await store.settings.get("console", "g1")).retention_days == 8  # type: ignore[union-attr]
    assert (await store.settings.get("discord", "g1")).retention_days == 9  # type: ignore[union-attr]
    assert await store.settings.get("slack", "g1") is None
    assert [(s.platform, s.retention_days) for s in await store.settings.every()] == [("console", 8), ("discord", 9)]
    entry = AuditEntry(platform="discord", server_id="g1", actor="a", action="settings.set", subject="s", at=clock.now)
    await store.audit.add(entry)
    assert await store.audit.for_server("discord", "g1") == [entry]
    assert await store.audit.for_server("console", "g1") == []


# ---------------------------------------------------------------- jobs memory and statistics


async def test_jobs_remember_reminders_digests_and_alerts(store: ModerationStore, clock: FakeClock) -> None:
    await decided_case(store, "A")
    appeal = await store.appeals.add("A", "u1", "please", T0 - timedelta(hours=30))
    due = await store.jobs.appeals_to_remind("console", "g1", T0 - timedelta(hours=24), T0 - timedelta(hours=24))
    assert [a.id for a in due] == [appeal.id]
    await store.jobs.mark_reminded([appeal.id], T0)
    assert await store.jobs.appeals_to_remind("console", "g1", T0, T0 - timedelta(hours=24)) == []
    assert await store.jobs.appeals_to_remind("discord", "g1", T0, T0) == []
    assert await store.jobs.claim_digest("console", "g1", "2025-03-03", T0)
    assert not await store.jobs.claim_digest("console", "g1", "2025-03-03", T0)
    assert await store.jobs.claim_digest("discord", "g1", "2025-03-03", T0)
    await store.jobs.set_digest_outcome("console", "g1", "2025-03-03", "done")
    assert await store.jobs.health() == HealthState()
    state = HealthState(failing_since=T0, last_problem="down")
    await store.jobs.save_health(state, T0)
    assert await store.jobs.health() == state
    await store.jobs.mark_alerted("discord", "g1", T0)
    await store.jobs.mark_alerted("discord", "g1", T0)
    assert await store.jobs.alerted_servers() == {("discord", "g1")}
    await store.jobs.clear_alert("discord", "g1")
    assert await store.jobs.alerted_servers() == set()


async def test_digest_counts_one_servers_period(store: ModerationStore, clock: FakeClock) -> None:
    await decided_case(store, "A", verdicts=(flagging(latency_ms=800.0),))
    await decided_case(store, "B", status=CaseStatus.CLEAN, verdicts=())
    await decided_case(store, "X", platform="discord")
    await store.decisions.add("A", DecisionAction.CONFIRM, "mod-1", "", T0)
    await store.appeals.add("A", "u1", "no", T0)
    counts = await store.statistics.digest_counts("console", "g1", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert (counts.messages, counts.flagged, counts.appeals_filed) == (2, 1, 1)
    assert counts.violations == (("harassment", ("HB1.a",)),)
    assert dict(counts.decisions) == {"confirm": 1}
    assert counts.latencies_ms == (800.0,)


# ---------------------------------------------------------------- units of work


async def test_a_unit_of_work_commits_together_or_not_at_all(store: ModerationStore, clock: FakeClock) -> None:
    await decided_case(store, "A")
    with pytest.raises(RuntimeError, match="half way"):
        async with store.transaction() as tx:
            await tx.decisions.add("A", DecisionAction.CONFIRM, "mod-1", "", clock.now)
            await tx.cases.set_status("A", CaseStatus.CONFIRMED, "mod-1", clock.now)
            await tx.effects.add_intents("A", [Effect(kind=EffectKind.DELETE)])
            raise RuntimeError("half way")
    case = await store.cases.get("A")
    assert case is not None and case.status is CaseStatus.OPEN and case.effects == ()
    assert await store.decisions.for_case("A") == []
    async with store.transaction() as tx:
        await tx.decisions.add("A", DecisionAction.CONFIRM, "mod-1", "", clock.now)
        await tx.cases.set_status("A", CaseStatus.CONFIRMED, "mod-1", clock.now)
        # Reads inside the unit of work see its own writes.
        inside = await tx.cases.get("A")
        assert inside is not None and inside.status is CaseStatus.CONFIRMED
    assert len(await store.decisions.for_case("A")) == 1
