"""The store's data-subject contract, on SQLite and on the fakes: one member found, exported, erased."""

from __future__ import annotations

from bot.domain import CaseStatus, DecisionAction, Effect, EffectKind, EffectOutcome, Verdict
from bot.store.ports import ERASED_MEMBER, ErasureCounts, ModerationStore
from tests.store_contract.test_contract import T0, clock, decided_case, flagging, message, store
from tests.workflow.fakes import FakeClock

__all__ = ["clock", "store"]


def quoting() -> Verdict:
    return flagging().model_copy(
        update={"rationale": "says 'you idiot'", "reasoning": "you idiot is an insult", "raw_output": "{'you idiot'}"}
    )


async def a_member_with_history(store: ModerationStore) -> None:
    """u1's case A (flagged, notified, appealed, confirmed) in console g1, and what is not u1's or not there."""
    flag = Effect(kind=EffectKind.FLAG, reason="says 'you idiot'")
    told = Effect(kind=EffectKind.NOTIFY_AUTHOR, reason="says 'you idiot'")
    await decided_case(
        store,
        "A",
        author="u1",
        verdicts=(quoting(),),
        effects=((flag, EffectOutcome.PENDING), (told, EffectOutcome.PENDING)),
    )
    await store.effects.set_outcome("A", 1, EffectOutcome.DONE, "posted", reference="mods/1")
    await store.effects.set_outcome("A", 2, EffectOutcome.DONE, "sent to u1", reference="dm-u1/7")
    appeal = await store.appeals.add("A", "u1", "I never said you idiot", T0)
    await store.appeals.add_second_opinion(appeal.id, "A", [quoting()])
    await store.decisions.add("A", DecisionAction.CONFIRM, "mod-1", "u1 keeps doing this", T0)
    await store.cases.set_status("A", CaseStatus.CONFIRMED, "mod-1", T0)
    await decided_case(store, "B", author="u2", verdicts=(quoting(),))
    await store.decisions.add("B", DecisionAction.DISMISS, "u1", "fine", T0)  # u1 moderates too
    await decided_case(store, "C", author="u1", server="g2")
    await decided_case(store, "D", author="u1", platform="discord")
    assert await store.enqueue(message("waiting", author="u1")) is not None


async def test_a_members_servers_and_records_are_found(store: ModerationStore) -> None:
    await a_member_with_history(store)
    assert await store.privacy.member_servers("console", "u1") == ["g1", "g2"]
    assert await store.privacy.member_servers("discord", "u1") == ["g1"]
    assert await store.privacy.member_servers("console", "nobody") == []

    records = await store.privacy.member_records("console", "g1", "u1")
    assert [c.id for c in records.cases] == ["A"]
    assert records.cases[0].message.text == "text of m-A" and len(records.cases[0].effects) == 2
    assert [(a.case_id, a.statement) for a in records.appeals] == [("A", "I never said you idiot")]
    assert [(d.case_id, d.note) for d in records.decisions] == [("A", "u1 keeps doing this")]
    assert [m.message_id for m in records.queued] == ["waiting"]


async def test_erasure_removes_the_members_words_and_id_and_keeps_the_decisions(
    store: ModerationStore, clock: FakeClock
) -> None:
    await a_member_with_history(store)

    counts = await store.privacy.erase_member("console", "g1", "u1", clock.now)
    await store.privacy.scrub_free_space()

    assert counts == ErasureCounts(cases=1, appeals=1, decisions=1, queued=1)
    found = await store.privacy.member_records("console", "g1", "u1")
    assert (found.cases, found.appeals, found.decisions, found.queued) == ((), (), (), ())
    case = await store.cases.get("A")
    assert case is not None
    assert (case.message.author.id, case.message.author.name, case.message.text) == (ERASED_MEMBER, "", "")
    assert case.text_purged_at == clock.now
    assert (case.status, case.rule_ids, case.verdicts[0].rationale, case.verdicts[0].reasoning) == (
        CaseStatus.CONFIRMED,
        ("HB1.a",),
        "",
        "",
    )
    flag, told = case.effects
    assert (flag.effect.reason, flag.reference, flag.outcome) == ("", "mods/1", EffectOutcome.DONE)
    assert (told.detail, told.reference) == (f"sent to {ERASED_MEMBER}", None)
    appeal = await store.appeals.for_case("A")
    assert appeal is not None and (appeal.author_id, appeal.statement) == (ERASED_MEMBER, "")
    assert appeal.second_opinion[0].rationale == ""
    assert [(d.action, d.moderator_id, d.note) for d in await store.decisions.for_case("A")] == [
        (DecisionAction.CONFIRM, "mod-1", "")
    ]
    (queued,) = [item.message for item in await store.open_queue_items() if item.message.message_id == "waiting"]
    assert (queued.author.id, queued.text) == (ERASED_MEMBER, "")
    # Not u1's, or not in this server: untouched. What u1 did as a moderator is kept.
    for other in ("B", "C", "D"):
        kept = await store.cases.get(other)
        assert kept is not None and kept.message.text == f"text of m-{other}"
    assert [(d.moderator_id, d.note) for d in await store.decisions.for_case("B")] == [("u1", "fine")]
