"""Issue 7 §9: retention removes every copy of the message text, from every surface and from the disk.

The copies: the model's rationale, reasoning and raw output (first pass and the appeal's
second opinion), the appeal statement, the effects' reasons, and the label export. What was
decided stays: rule ids, statuses, effects, human decisions.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiosqlite

from bot.classifier import ClassificationRequest
from bot.domain import CaseStatus, Confidence, Effect, EffectKind, EffectOutcome, Verdict
from bot.store._migrations import migrate
from bot.store.sqlite import SqliteStore
from bot.workflow import Appeals, Labels, Reviews, WorkflowJobs
from tests.workflow.conftest import AUTHOR_ACTOR, MOD, configure, seed_case
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeSink

# Distinctive enough to be found in the raw bytes of the database file.
WORDS = "zanzibar walrus 9431 is a worthless idiot"


def quoting(*, violation: bool = True) -> Verdict:
    return Verdict(
        policy="harassment",
        policy_version=1,
        violation=violation,
        policy_category="HB1.a" if violation else None,
        rule_ids=("HB1.a",) if violation else (),
        confidence=Confidence.HIGH,
        rationale=f"The author wrote '{WORDS}' (HB1.a).",
        reasoning=f"Message: {WORDS}. This insults a member.",
        raw_output=json.dumps({"violation": int(violation), "rationale": WORDS}),
        model="gpt-oss-safeguard:20b",
    )


class QuotingModel:
    """A second opinion that quotes the message back, as models do."""

    async def classify(self, request: ClassificationRequest) -> Verdict:
        return quoting(violation=False)


def on_disk(path: Path) -> bytes:
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def everything_shown(store: SqliteStore, case_id: str) -> str:
    """What every reader of the case sees: review, appeal, labels (as JSON text)."""
    case, decisions = await Reviews(store, {"console": FakeSink()}).show(case_id, MOD)
    appeal = await Appeals(store, QuotingModel(), {"console": FakeSink()}).view(case_id, MOD)  # type: ignore[arg-type]
    labels = [label async for label in Labels(store).export(MOD)]
    return json.dumps(
        [
            case.model_dump(mode="json"),
            [d.model_dump(mode="json") for d in decisions],
            appeal.model_dump(mode="json"),
            labels,
        ]
    )


async def test_retention_leaves_no_copy_of_the_text_anywhere(wstore: SqliteStore, clock: FakeClock) -> None:
    await configure(wstore, retention_days=30)
    flag = Effect(kind=EffectKind.FLAG, policy="harassment", rule_ids=("HB1.a",), reason=quoting().rationale)
    case = await seed_case(wstore, text=WORDS, verdicts=[quoting()], effects=[(flag, EffectOutcome.DONE)])
    appeals = Appeals(wstore, QuotingModel(), {"console": FakeSink()}, FakeModChannel(), clock)  # type: ignore[arg-type]
    view = await appeals.file(case.id, AUTHOR_ACTOR, f"I wrote '{WORDS}' as a joke between friends")
    await appeals.complete_second_opinion(case.id)  # the queued second opinion, as the bot's worker runs it
    view = await appeals.view(case.id, AUTHOR_ACTOR)
    assert view.second_opinion  # the second opinion quotes the message too
    await appeals.uphold(case.id, MOD, note="upheld: HB1.a applies")
    assert WORDS in await everything_shown(wstore, case.id)

    clock.advance(days=31)
    assert await WorkflowJobs(wstore, FakeModChannel(), clock=clock).retention() == {("console", "g1"): 1}

    shown = await everything_shown(wstore, case.id)
    assert WORDS not in shown and "worthless" not in shown
    assert WORDS.encode() not in on_disk(wstore.path)
    # What was decided is all still there.
    kept, decisions = await Reviews(wstore, {"console": FakeSink()}).show(case.id, MOD)
    assert kept.status is CaseStatus.UPHELD and kept.rule_ids == ("HB1.a",)
    assert [(d.action.value, d.note) for d in decisions] == [("uphold", "upheld: HB1.a applies")]
    (label,) = [label async for label in Labels(wstore).export(MOD)]
    assert (label["text"], label["appeal"]["statement"]) == (None, None)
    assert label["model_verdict"]["rule_ids"] == ["HB1.a"] and label["label"]["action"] == "uphold"
    assert label["text_purged_at"] == clock.now.isoformat()


async def test_cases_purged_before_this_version_lose_their_copies_on_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn, target=7)
    clock = FakeClock()
    store = await SqliteStore.open(path, now=clock)
    try:
        flag = Effect(kind=EffectKind.FLAG, reason=quoting().rationale)
        case = await seed_case(store, text=WORDS, verdicts=[quoting()], effects=[(flag, EffectOutcome.DONE)])
        await store.appeals.add(case.id, "author-1", f"it was only '{WORDS}'", clock.now)
        # As retention purged before version 8: the text column only.
        async with store.raw_transaction() as conn:
            await conn.execute("UPDATE cases SET text = NULL, text_purged_at = ?", (clock.now.isoformat(),))
            await conn.execute("DELETE FROM schema_migrations WHERE version = 8")
    finally:
        await store.close()

    upgraded = await SqliteStore.open(path, now=clock)
    try:
        found = await upgraded.cases.get(case.id)
        appeal = await upgraded.appeals.for_case(case.id)
        assert found is not None and appeal is not None
        assert WORDS not in found.model_dump_json() and appeal.statement == ""
        assert found.rule_ids == ("HB1.a",)
    finally:
        await upgraded.close()
