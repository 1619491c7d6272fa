"""The store's retention contract, on SQLite and on the fakes: every copy of the text goes, decisions stay."""

from __future__ import annotations

from datetime import timedelta

from bot.domain import CaseStatus, DecisionAction, Effect, EffectKind, EffectOutcome, Verdict
from bot.store.ports import ModerationStore
from tests.store_contract.test_contract import T0, clock, decided_case, flagging, store
from tests.workflow.fakes import FakeClock

__all__ = ["clock", "store"]

QUOTE = "says 'you worthless idiot' to a member"


def quoting(**changes: object) -> Verdict:
    """A verdict whose words quote the message, as the model's often do."""
    return flagging().model_copy(
        update={"rationale": QUOTE, "reasoning": f"The text {QUOTE}.", "raw_output": f'{{"rationale": "{QUOTE}"}}'}
        | changes
    )


async def test_retention_removes_every_copy_of_the_text_and_keeps_what_was_decided(
    store: ModerationStore, clock: FakeClock
) -> None:
    flag = Effect(kind=EffectKind.FLAG, policy="harassment", rule_ids=("HB1.a",), reason=QUOTE)
    old = await decided_case(store, "A", verdicts=(quoting(),), effects=((flag, EffectOutcome.DONE),))
    appeal = await store.appeals.add("A", "u1", "I only said you worthless idiot as a joke", T0)
    await store.appeals.add_second_opinion(appeal.id, "A", [quoting(violation=False, rule_ids=())])
    await store.decisions.add("A", DecisionAction.CONFIRM, "mod-1", "clear insult", T0)
    await store.cases.set_status("A", CaseStatus.CONFIRMED, "mod-1", T0)
    fresh = await decided_case(store, "B", verdicts=(quoting(),), created_at=T0 + timedelta(days=20))

    assert await store.cases.purge_text("console", "g1", T0 + timedelta(days=1), clock.now) == 1

    purged = await store.cases.get(old.id)
    assert purged is not None and purged.message.text == "" and purged.text_purged_at == clock.now
    (v,) = purged.verdicts
    assert (v.rationale, v.reasoning, v.raw_output) == ("", "", None)
    assert (v.policy, v.policy_version, v.violation, v.rule_ids, v.confidence) == (
        "harassment",
        1,
        True,
        ("HB1.a",),
        old.verdicts[0].confidence,
    )
    (effect,) = purged.effects
    assert effect.effect.reason == ""
    assert (effect.effect.kind, effect.effect.rule_ids, effect.outcome) == (
        EffectKind.FLAG,
        ("HB1.a",),
        EffectOutcome.DONE,
    )
    kept_appeal = await store.appeals.for_case(old.id)
    assert kept_appeal is not None and kept_appeal.statement == ""
    assert [(o.rationale, o.reasoning, o.raw_output, o.violation) for o in kept_appeal.second_opinion] == [
        ("", "", None, False)
    ]
    assert purged.status is CaseStatus.CONFIRMED
    assert [(d.action, d.moderator_id, d.note) for d in await store.decisions.for_case(old.id)] == [
        (DecisionAction.CONFIRM, "mod-1", "clear insult")
    ]
    untouched = await store.cases.get(fresh.id)
    assert untouched is not None and untouched.verdicts[0].rationale == QUOTE and untouched.message.text


async def test_an_appeal_filed_after_the_purge_is_kept_no_longer_than_text(
    store: ModerationStore, clock: FakeClock
) -> None:
    await decided_case(store, "A", verdicts=(quoting(),))
    assert await store.cases.purge_text("console", "g1", T0 + timedelta(days=1), clock.now) == 1
    assert await store.cases.servers_with_text() == []
    filed = T0 + timedelta(days=10)
    await store.appeals.add("A", "u1", "please, it was a joke", filed)
    assert await store.cases.servers_with_text() == [("console", "g1")]

    assert await store.cases.purge_text("console", "g1", filed - timedelta(days=1), clock.now) == 0
    still = await store.appeals.for_case("A")
    assert still is not None and still.statement == "please, it was a joke"
    assert await store.cases.purge_text("console", "g1", filed + timedelta(days=1), clock.now) == 0
    gone = await store.appeals.for_case("A")
    assert gone is not None and gone.statement == ""
    assert await store.cases.servers_with_text() == []
