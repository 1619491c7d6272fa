"""The pipeline with its ports faked in memory and a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.classifier import ClassificationRequest, ModelUnavailable
from bot.domain import (
    Attachment,
    Case,
    CaseStatus,
    Effect,
    EffectKind,
    EffectOutcome,
    EffectRule,
    Mode,
    ServerSettings,
    Verdict,
    VerdictStatus,
)
from bot.pipeline import ModerationPipeline, new_case_id
from bot.store.sqlite import SqliteStore
from tests.helpers import RecordingSink, ScriptedClassifier, add_policy, make_message


@pytest_asyncio.fixture
async def classifier() -> ScriptedClassifier:
    return ScriptedClassifier()


@pytest_asyncio.fixture
async def sink() -> RecordingSink:
    return RecordingSink()


@pytest_asyncio.fixture
async def pipeline(
    store: SqliteStore, classifier: ScriptedClassifier, sink: RecordingSink
) -> AsyncIterator[ModerationPipeline]:
    await add_policy(store, "s1", "harassment", "policy text")
    p = ModerationPipeline(store, classifier, {"console": sink}, workers=4, unavailable_backoff=(0.01, 0.02))
    await p.start()
    yield p
    await p.stop()


async def cases(store: SqliteStore) -> list[Case]:
    return [c async for c in store.cases.every()]


async def test_a_violation_is_decided_flagged_and_recorded(
    pipeline: ModerationPipeline, store: SqliteStore, sink: RecordingSink
) -> None:
    assert await pipeline.submit(make_message("m1", "you idiot"))
    await pipeline.drain()
    [case] = await cases(store)
    assert case.status is CaseStatus.OPEN and case.rule_ids == ("HB1.a",)
    assert [(r.effect.kind, r.outcome) for r in case.effects] == [(EffectKind.FLAG, EffectOutcome.DONE)]
    assert [e.kind for _, e in sink.executed] == [EffectKind.FLAG]
    assert await store.queue_counts() == {"done": 1}


async def test_same_message_twice_is_decided_once(
    pipeline: ModerationPipeline, store: SqliteStore, classifier: ScriptedClassifier, sink: RecordingSink
) -> None:
    msg = make_message("m1", "you idiot")
    accepted = await asyncio.gather(*(pipeline.submit(msg) for _ in range(3)))
    await pipeline.drain()
    assert await pipeline.submit(msg) is False  # a gateway replay after the decision
    await pipeline.drain()
    assert sorted(accepted) == [False, False, True]
    assert len(await cases(store)) == 1 and len(classifier.calls) == 1 and len(sink.executed) == 1


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (make_message("b", "you idiot", is_bot=True), "author is a bot"),
        (make_message("x", "you idiot", roles=("trusted",)), "author has an exempt role"),
        (make_message("y", "you idiot", channel="staff"), "channel is exempt"),
        (make_message("e", "   "), "empty message"),
        (
            make_message("a", "", attachments=(Attachment(name="cat.png", content_type="image/png"),)),
            "attachments only: not classified",
        ),
    ],
)
async def test_no_model_call_for_messages_that_need_none(
    pipeline: ModerationPipeline, store: SqliteStore, classifier: ScriptedClassifier, message: object, reason: str
) -> None:
    await store.settings.put(
        ServerSettings(platform="console", server_id="s1", exempt_role_ids=("trusted",), exempt_channel_ids=("staff",)),
        store.now(),
    )
    pipeline.invalidate("console", "s1")
    await pipeline.submit(message)  # type: ignore[arg-type]
    await pipeline.drain()
    [case] = await cases(store)
    assert case.status is CaseStatus.SKIPPED and case.skipped_reason == reason and case.verdicts == ()
    assert classifier.calls == []


async def test_repeats_reuse_the_earlier_verdict(
    pipeline: ModerationPipeline, store: SqliteStore, classifier: ScriptedClassifier
) -> None:
    await pipeline.submit(make_message("m1", "FREE nitro, you idiot"))
    await pipeline.drain()
    await pipeline.submit(make_message("m2", "free  NITRO, you idiot", author="u2"))
    await pipeline.drain()
    first, second = await cases(store)
    assert len(classifier.calls) == 1
    assert second.violation and second.verdicts[0].reused and not first.verdicts[0].reused
    # A repeat of a flagged text joins the first flag instead of posting its own (tests/judging/test_raids.py).
    assert second.status is CaseStatus.OPEN and second.effects == () and second.joined_case_id == first.id


async def test_a_spam_raid_makes_one_model_call(
    pipeline: ModerationPipeline, store: SqliteStore, classifier: ScriptedClassifier
) -> None:
    classifier.gate = asyncio.Event()
    for i in range(30):
        await pipeline.submit(make_message(f"r{i}", "join my scam server, idiot", author=f"bot{i}"))
    await asyncio.sleep(0.05)
    classifier.gate.set()
    await pipeline.drain()
    assert len(classifier.calls) == 1
    assert len([c for c in await cases(store) if c.violation]) == 30


async def test_a_different_server_does_not_share_verdicts(
    pipeline: ModerationPipeline, store: SqliteStore, classifier: ScriptedClassifier
) -> None:
    await add_policy(store, "s2", "harassment", "policy text")
    await pipeline.submit(make_message("m1", "hello"))
    await pipeline.submit(make_message("m1", "hello", server="s2"))
    await pipeline.drain()
    assert len(classifier.calls) == 2


async def test_context_is_the_channels_earlier_messages(
    pipeline: ModerationPipeline, classifier: ScriptedClassifier
) -> None:
    for i, text in enumerate(["one", "two", "three", "four"]):
        await pipeline.submit(make_message(f"m{i}", text, offset_s=i))
    await pipeline.submit(make_message("other", "elsewhere", channel="c2", offset_s=5))
    await pipeline.drain()
    last = next(r for r in classifier.calls if r.message.message_id == "m3")
    assert [m.text for m in last.context] == ["one", "two", "three"]


async def test_shadow_mode_records_effects_and_executes_none(
    pipeline: ModerationPipeline, store: SqliteStore, sink: RecordingSink
) -> None:
    await store.settings.put(
        ServerSettings(
            platform="console",
            server_id="s1",
            mode=Mode.SHADOW,
            effect_rules=(EffectRule(effects=(EffectKind.FLAG, EffectKind.DELETE)),),
        ),
        store.now(),
    )
    pipeline.invalidate("console", "s1")
    await pipeline.submit(make_message("m1", "you idiot"))
    await pipeline.drain()
    [case] = await cases(store)
    assert [(r.effect.kind, r.outcome) for r in case.effects] == [
        (EffectKind.FLAG, EffectOutcome.SHADOW),
        (EffectKind.DELETE, EffectOutcome.SHADOW),
    ]
    assert sink.executed == [] and case.mode is Mode.SHADOW
    assert await store.queue_counts() == {"done": 1}


async def test_a_failed_effect_is_recorded_not_retried(
    pipeline: ModerationPipeline, store: SqliteStore, sink: RecordingSink
) -> None:
    def explode(effect: Effect, case: Case) -> None:
        raise PermissionError("Missing Permissions")

    sink.before = explode
    await pipeline.submit(make_message("m1", "you idiot"))
    await pipeline.drain()
    [case] = await cases(store)
    assert case.effects[0].outcome is EffectOutcome.FAILED and "Missing Permissions" in case.effects[0].detail
    assert await store.queue_counts() == {"done": 1}


async def test_unsupported_platform_is_reported_not_pretended(
    store: SqliteStore, classifier: ScriptedClassifier
) -> None:
    await add_policy(store, "s1", "harassment", "policy text", platform="matrix")
    p = ModerationPipeline(store, classifier, {}, workers=1)
    await p.start()
    await p.submit(make_message("m1", "you idiot", platform="matrix"))
    await p.drain()
    await p.stop()
    [case] = await cases(store)
    assert case.effects[0].outcome is EffectOutcome.UNSUPPORTED


async def test_model_outage_keeps_the_message_queued_then_decides_it_once(
    store: SqliteStore, sink: RecordingSink
) -> None:
    class FlakyModel(ScriptedClassifier):
        failures = 3

        async def classify(self, request: ClassificationRequest) -> Verdict:
            if self.failures:
                self.failures -= 1
                raise ModelUnavailable("model server unreachable at http://x: start Ollama")
            return await super().classify(request)

    model = FlakyModel()
    await add_policy(store, "s1", "harassment", "policy text")
    p = ModerationPipeline(store, model, {"console": sink}, workers=1, unavailable_backoff=(0.01, 0.02))
    await p.start()
    await p.submit(make_message("m1", "you idiot"))
    await p.drain()
    await p.stop()
    assert model.failures == 0
    assert len(await cases(store)) == 1 and len(sink.executed) == 1


async def test_a_message_that_keeps_crashing_goes_to_human_review(store: SqliteStore) -> None:
    class Broken(ScriptedClassifier):
        async def classify(self, request: ClassificationRequest) -> Verdict:
            raise ValueError("bug")

    await add_policy(store, "s1", "harassment", "policy text")
    p = ModerationPipeline(store, Broken(), {}, workers=1)
    await p.start()
    await p.submit(make_message("m1", "anything"))
    await p.drain()
    await p.stop()
    [case] = await cases(store)
    assert case.status is CaseStatus.NEEDS_REVIEW and "ValueError: bug" in (case.skipped_reason or "")


async def test_needs_review_verdict_makes_a_needs_review_case(store: SqliteStore, sink: RecordingSink) -> None:
    class Garbled(ScriptedClassifier):
        async def classify(self, request: ClassificationRequest) -> Verdict:
            return Verdict(
                policy=request.policy.name, policy_version=1, status=VerdictStatus.NEEDS_REVIEW, raw_output="garbage"
            )

    await add_policy(store, "s1", "harassment", "policy text")
    p = ModerationPipeline(store, Garbled(), {"console": sink}, workers=1)
    await p.start()
    await p.submit(make_message("m1", "anything"))
    await p.drain()
    await p.stop()
    [case] = await cases(store)
    assert case.status is CaseStatus.NEEDS_REVIEW and case.verdicts[0].raw_output == "garbage"
    assert [e.kind for _, e in sink.executed] == [EffectKind.FLAG]


async def test_restart_never_repeats_a_started_effect_and_finishes_pending_ones(
    store: SqliteStore, classifier: ScriptedClassifier, sink: RecordingSink
) -> None:
    # The state a crash leaves: the case and two effect intents committed, the first
    # effect started (maybe done on the platform), the second not begun.
    qid = await store.enqueue(make_message("m1", "you idiot"))
    assert qid is not None
    case = Case(id=new_case_id(), message=make_message("m1", "you idiot"), status=CaseStatus.OPEN)
    flag, delete = Effect(kind=EffectKind.FLAG), Effect(kind=EffectKind.DELETE)
    await store.record_decision(qid, case, [(flag, EffectOutcome.PENDING), (delete, EffectOutcome.PENDING)])
    await store.effects.set_outcome(case.id, 1, EffectOutcome.STARTED)

    p = ModerationPipeline(store, classifier, {"console": sink}, workers=2)
    assert await p.start() == 1
    await p.drain()
    await p.stop()
    assert [e.kind for _, e in sink.executed] == [EffectKind.DELETE]
    stored = await store.cases.get(case.id)
    assert stored is not None
    assert [r.outcome for r in stored.effects] == [EffectOutcome.INTERRUPTED, EffectOutcome.DONE]
    assert classifier.calls == []  # decided before the crash: not decided again
    assert await store.queue_counts() == {"done": 1}


async def test_pending_messages_of_an_earlier_run_are_done_first(
    store: SqliteStore, classifier: ScriptedClassifier, sink: RecordingSink
) -> None:
    await add_policy(store, "s1", "harassment", "policy text")
    for i in range(3):
        await store.enqueue(make_message(f"old{i}", "you idiot" if i == 0 else f"hi {i}"))
    p = ModerationPipeline(store, classifier, {"console": sink}, workers=1)
    assert await p.start() == 3
    await p.submit(make_message("new", "hello"))
    await p.drain()
    await p.stop()
    order = [r.message.message_id for r in classifier.calls]
    assert order == ["old0", "old1", "old2", "new"]


async def test_message_text_never_reaches_the_logs(
    store: SqliteStore, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    class FlakyOnce(ScriptedClassifier):
        failed = False

        async def classify(self, request: ClassificationRequest) -> Verdict:
            if not self.failed:
                self.failed = True
                raise ModelUnavailable("model server unreachable at http://x")
            return await super().classify(request)

    caplog.set_level("INFO")  # the product never runs aiosqlite below WARNING (configure_logging)
    await add_policy(store, "s1", "harassment", "policy text")
    p = ModerationPipeline(store, FlakyOnce(), {"console": sink}, workers=2, unavailable_backoff=(0.01, 0.02))
    await p.start()
    await p.submit(make_message("m1", "idiot SECRET-CANARY-1234"))
    await p.drain()
    await p.stop()
    await p.start()  # a restart logs what it resumes
    await p.stop()
    assert caplog.records, "the run should have logged something"
    assert "SECRET-CANARY" not in caplog.text


async def test_restart_finishes_effects_a_moderator_asked_for_after_the_decision(
    store: SqliteStore, classifier: ScriptedClassifier, sink: RecordingSink
) -> None:
    # A decided case (queue done) to which a moderator's confirm added a delete and a
    # timeout; the process died after the delete started and before the timeout began.
    qid = await store.enqueue(make_message("m1", "you idiot"))
    assert qid is not None
    case = Case(id=new_case_id(), message=make_message("m1", "you idiot"), status=CaseStatus.CONFIRMED)
    await store.record_decision(qid, case, [])
    async with store.raw_transaction() as conn:
        await conn.executemany(
            "INSERT INTO effects (case_id, seq, kind, effect, outcome, updated_at)"
            " VALUES (?, ?, ?, ?, ?, '2026-11-01T12:00:00+00:00')",
            [
                (case.id, seq, e.kind.value, e.model_dump_json(), outcome)
                for seq, e, outcome in [
                    (1, Effect(kind=EffectKind.DELETE), "started"),
                    (2, Effect(kind=EffectKind.TIMEOUT, timeout_minutes=60), "pending"),
                ]
            ],
        )
    p = ModerationPipeline(store, classifier, {"console": sink}, workers=1)
    await p.start()
    await p.drain()
    await p.stop()
    assert [e.kind for _, e in sink.executed] == [EffectKind.TIMEOUT]
    stored = await store.cases.get(case.id)
    assert stored is not None
    assert [r.outcome for r in stored.effects] == [EffectOutcome.INTERRUPTED, EffectOutcome.DONE]
    assert await store.cases_with_unfinished_effects() == []


async def test_messages_submitted_before_start_are_decided_once(
    store: SqliteStore, classifier: ScriptedClassifier, sink: RecordingSink
) -> None:
    await add_policy(store, "s1", "harassment", "policy text")
    # No reuse: the 40 near-repeats must each be decided on their own, and each be flagged.
    await store.settings.put(ServerSettings(platform="console", server_id="s1", repeat_window_minutes=0), store.now())
    p = ModerationPipeline(store, classifier, {"console": sink}, workers=2)
    for i in range(40):  # more than the workers, as a gateway's backlog at start-up would be
        await p.submit(make_message(f"m{i}", f"text {i} idiot"))
    await p.start()  # finds the same 40 in the database
    await asyncio.wait_for(p.drain(), 10)
    await p.stop()
    assert len(classifier.calls) == 40 and len(sink.executed) == 40
    assert await store.queue_counts() == {"done": 40}
