"""The flow of work through the real pipeline and SQLite: pages, priorities, deletions, removals, stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot import pipeline as pipeline_module
from bot.classifier import ClassificationRequest, ModelUnavailable
from bot.domain import CaseNoteKind, CaseStatus, EffectKind, EffectOutcome, Verdict
from bot.pipeline import ModerationPipeline
from bot.store.ports import QueueItem, WorkItem, WorkKind
from bot.store.sqlite import SqliteStore
from tests.helpers import ScriptedClassifier, add_policy
from tests.queue.conftest import T0
from tests.queue.helpers import GatedModel, MutableClock, PostingSink, chat, word


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(T0)


@pytest_asyncio.fixture
async def store(tmp_path: Path, clock: MutableClock) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "flow.db", now=clock)
    await add_policy(s, "s1")
    await add_policy(s, "s2")
    yield s
    await s.close()


class RecordingHandler:
    """Interactive work that records when it ran; it can fail as the test says."""

    def __init__(self, *, outages: int = 0, bugs: int = 0) -> None:
        self.ran: list[WorkItem] = []
        self.given_up: list[tuple[WorkItem, str]] = []
        self.outages, self.bugs = outages, bugs
        self.done = asyncio.Event()

    async def run(self, item: WorkItem) -> None:
        if self.outages:
            self.outages -= 1
            raise ModelUnavailable("model server unreachable")
        if self.bugs:
            self.bugs -= 1
            raise ValueError("bug in the handler")
        self.ran.append(item)
        self.done.set()

    async def give_up(self, item: WorkItem, problem: str) -> None:
        self.given_up.append((item, problem))
        self.done.set()


# ---------------------------------------------------------------- memory and pages


async def test_memory_holds_a_page_however_long_the_backlog(store: SqliteStore, clock: MutableClock) -> None:
    model = GatedModel(gate=asyncio.Event())
    pipeline = ModerationPipeline(store, model, {"console": PostingSink()}, workers=4, now=clock)
    await asyncio.gather(*(pipeline.submit(chat(f"m{i}", f"text {i}")) for i in range(600)))
    await pipeline.start()
    try:
        await asyncio.sleep(0.2)  # every worker is busy with a message the model holds
        assert pipeline.held_in_memory <= pipeline_module.PAGE_SIZE + 4
        assert pipeline.backlog == 600 and pipeline.oldest_age_seconds() == 0.0
        assert model.gate is not None
        model.gate.set()
        await pipeline.drain()
    finally:
        await pipeline.stop()
    assert len(model.calls) == 600 and await store.queue_counts() == {"done": 600}
    assert pipeline.backlog == 0 and pipeline.held_in_memory == 0


async def test_channel_context_is_bounded_and_forgotten(
    store: SqliteStore, clock: MutableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_module, "CONTEXT_CHANNELS", 3)
    elapsed = [0.0]
    model = ScriptedClassifier()
    pipeline = ModerationPipeline(store, model, {}, workers=1, now=clock, timer=lambda: elapsed[0])
    await pipeline.start()
    try:
        for channel in range(5):
            await pipeline.submit(chat(f"a{channel}", f"earlier in {channel}", channel=f"c{channel}"))
            await pipeline.submit(chat(f"b{channel}", f"later in {channel}", channel=f"c{channel}", sent_after_s=1))
        await pipeline.drain()
        assert len(pipeline._recent) == 3  # the least recently used channels went first
        elapsed[0] = pipeline_module.CONTEXT_TTL_SECONDS + 1
        await pipeline.submit(chat("late", "after an hour of quiet", channel="c4", sent_after_s=2))
        await pipeline.drain()
    finally:
        await pipeline.stop()
    by_id = {r.message.message_id: r for r in model.calls}
    assert [m.text for m in by_id["b4"].context] == ["earlier in 4"]
    assert list(by_id["late"].context) == []  # the channel's context expired


# ---------------------------------------------------------------- interactive work


async def test_interactive_work_goes_ahead_of_a_backlog_the_model_is_busy_with(
    store: SqliteStore, clock: MutableClock
) -> None:
    model = GatedModel(gate=asyncio.Event())
    handler = RecordingHandler()
    pipeline = ModerationPipeline(store, model, {"console": PostingSink()}, workers=4, now=clock, model_slots=2)
    pipeline.register_work(WorkKind.SECOND_OPINION, handler)
    await asyncio.gather(*(pipeline.submit(chat(f"m{i}", f"text {word(i)}")) for i in range(200)))
    await pipeline.start()
    try:
        await asyncio.sleep(0.1)
        # The bulk never holds more model calls than the slots, nor every worker.
        assert model.started == 2
        await store.work.add(WorkKind.SECOND_OPINION, "console", "s1", "appeal 1", {"case_id": "C1"}, T0)
        pipeline.wake()
        await asyncio.wait_for(handler.done.wait(), 10)  # while 200 messages still wait
        assert len(model.calls) == 2 and (await store.queue_backlog()).depth == 200
        assert model.gate is not None
        model.gate.set()
        await pipeline.drain()
    finally:
        await pipeline.stop()
    assert [w.subject for w in handler.ran] == ["appeal 1"] and await store.work.counts() == {"done": 1}


async def test_work_queued_by_another_process_is_found(store: SqliteStore, clock: MutableClock) -> None:
    handler = RecordingHandler()
    pipeline = ModerationPipeline(store, ScriptedClassifier(), {}, workers=2, now=clock)
    pipeline.register_work(WorkKind.PREVIEW, handler)
    await pipeline.start()
    try:
        # The CLI files through its own store: nothing wakes this process, its workers poll.
        await store.work.add(WorkKind.PREVIEW, "console", "s1", "draft 1", {"text": "x"}, T0)
        await asyncio.wait_for(handler.done.wait(), 10)
    finally:
        await pipeline.stop()
    assert [w.subject for w in handler.ran] == ["draft 1"]


async def test_interactive_work_waits_out_a_model_outage_and_gives_up_on_a_bug(
    store: SqliteStore, clock: MutableClock
) -> None:
    waits, breaks = RecordingHandler(outages=5), RecordingHandler(bugs=10)
    pipeline = ModerationPipeline(
        store, ScriptedClassifier(), {}, workers=3, now=clock, unavailable_backoff=(0.01, 0.02)
    )
    pipeline.register_work(WorkKind.SECOND_OPINION, waits)
    pipeline.register_work(WorkKind.PREVIEW, breaks)
    await store.work.add(WorkKind.SECOND_OPINION, "console", "s1", "appeal 1", {}, T0)
    await store.work.add(WorkKind.PREVIEW, "console", "s1", "draft 1", {}, T0)
    await pipeline.start()
    try:
        await pipeline.drain()
    finally:
        await pipeline.stop()
    assert [w.subject for w in waits.ran] == ["appeal 1"] and waits.given_up == []
    assert breaks.ran == [] and [(w.subject, p) for w, p in breaks.given_up] == [
        ("draft 1", "ValueError: bug in the handler")
    ]
    assert await store.work.counts() == {"done": 1, "failed": 1}


# ---------------------------------------------------------------- deletion and removal


async def test_a_deleted_message_is_never_judged_and_an_open_case_notes_the_deletion(
    store: SqliteStore, clock: MutableClock
) -> None:
    model, sink = ScriptedClassifier(), PostingSink()
    pipeline = ModerationPipeline(store, model, {"console": sink}, workers=2, now=clock)
    await pipeline.start()
    try:
        await pipeline.submit(chat("flagged", "you idiot"))
        await pipeline.submit(chat("clean", "my phone number is 555 0100"))
        await pipeline.drain()
        await pipeline.stop()
        await pipeline.submit(chat("queued", "you idiot too"))  # accepted while the workers are down
        gone = await pipeline.message_deleted("console", "s1", "queued")
        assert gone.cancelled == 1
        await pipeline.start()
        kept = await pipeline.message_deleted("console", "s1", "flagged")
        purged = await pipeline.message_deleted("console", "s1", "clean")
        assert await pipeline.submit(chat("queued", "you idiot too")) is False  # a replay after the delete
        await pipeline.drain()
    finally:
        await pipeline.stop()
    assert [r.message.message_id for r in model.calls] == ["flagged", "clean"]
    assert (kept.purged, purged.purged) == (0, 1)
    flagged = await store.cases.for_message("console", "s1", "flagged")
    clean = await store.cases.for_message("console", "s1", "clean")
    assert flagged is not None and clean is not None
    assert flagged.message.text == "you idiot" and [n.kind for n in flagged.notes] == [CaseNoteKind.DELETED]
    assert sink.kinds(flagged.id) == [EffectKind.FLAG, EffectKind.UPDATE_FLAG]
    assert clean.message.text == "" and clean.text_purged_at is not None
    assert await store.cases.for_message("console", "s1", "queued") is None


async def test_a_message_deleted_while_it_is_judged_leaves_no_case(store: SqliteStore, clock: MutableClock) -> None:
    model, sink = GatedModel(gate=asyncio.Event()), PostingSink()
    pipeline = ModerationPipeline(store, model, {"console": sink}, workers=2, now=clock)
    await pipeline.start()
    try:
        await pipeline.submit(chat("m1", "you idiot"))
        while not model.calls:
            await asyncio.sleep(0.01)
        await pipeline.message_deleted("console", "s1", "m1")
        assert model.gate is not None
        model.gate.set()
        await pipeline.drain()
    finally:
        await pipeline.stop()
    assert await store.cases.for_message("console", "s1", "m1") is None and sink.executed == []


async def test_a_removed_server_loses_its_queued_work_and_the_others_keep_theirs(
    store: SqliteStore, clock: MutableClock
) -> None:
    model = ScriptedClassifier()
    pipeline = ModerationPipeline(store, model, {}, workers=2, now=clock)
    for i in range(20):
        await pipeline.submit(chat(f"gone{i}", f"hello {i}", server="s2"))
        await pipeline.submit(chat(f"kept{i}", f"hello {i}", server="s1"))
    assert await pipeline.server_removed("console", "s2") == 20
    await pipeline.start()
    try:
        await pipeline.drain()
    finally:
        await pipeline.stop()
    assert {r.message.server_id for r in model.calls} == {"s1"} and len(model.calls) == 20
    assert await store.queue_counts() == {"done": 20, "cancelled": 20}


# ---------------------------------------------------------------- stopping


async def test_a_stop_with_the_model_down_returns_and_leaves_the_backlog_queued(
    store: SqliteStore, clock: MutableClock
) -> None:
    class Down(ScriptedClassifier):
        async def classify(self, request: ClassificationRequest) -> Verdict:
            raise ModelUnavailable("model server unreachable")

    pipeline = ModerationPipeline(store, Down(), {}, workers=8, now=clock, unavailable_backoff=(5.0, 60.0))
    await asyncio.gather(*(pipeline.submit(chat(f"m{i}", f"hello {i}")) for i in range(300)))
    await pipeline.start()
    await asyncio.sleep(0.2)  # every worker waits out the outage
    await pipeline.stop()
    assert await store.queue_counts() == {"pending": 300}
    assert [c async for c in store.cases.every()] == []
    # The next start finds all of it.
    again = ModerationPipeline(store, ScriptedClassifier(), {}, workers=4, now=clock)
    assert await again.start() == 300
    await again.drain()
    await again.stop()
    assert await store.queue_counts() == {"done": 300}


async def test_a_stop_lets_an_effect_under_way_finish(store: SqliteStore, clock: MutableClock) -> None:
    sink = PostingSink(gate=asyncio.Event())
    pipeline = ModerationPipeline(store, ScriptedClassifier(), {"console": sink}, workers=2, now=clock)
    await pipeline.start()
    await pipeline.submit(chat("m1", "you idiot"))
    while not sink.ids_seen:
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(pipeline.stop(grace_seconds=10))
    await asyncio.sleep(0.05)
    assert not stopping.done()
    assert sink.gate is not None
    sink.gate.set()
    await asyncio.wait_for(stopping, 10)
    case = await store.cases.for_message("console", "s1", "m1")
    assert case is not None and [r.outcome for r in case.effects] == [EffectOutcome.DONE]
    assert await store.queue_counts() == {"done": 1}


# ---------------------------------------------------------------- log ids


async def test_every_line_of_a_work_item_carries_its_ids(store: SqliteStore, clock: MutableClock) -> None:
    model, sink = GatedModel(), PostingSink()
    pipeline = ModerationPipeline(store, model, {"console": sink}, workers=2, now=clock)
    await pipeline.start()
    try:
        await pipeline.submit(chat("m1", "you idiot"))
        await pipeline.drain()
    finally:
        await pipeline.stop()
    case = await store.cases.for_message("console", "s1", "m1")
    assert case is not None and case.status is CaseStatus.OPEN
    [during_model] = model.ids_seen
    assert {k: during_model.get(k) for k in ("platform", "server_id", "channel_id", "message_id")} == {
        "platform": "console",
        "server_id": "s1",
        "channel_id": "c1",
        "message_id": "m1",
    }
    assert isinstance(during_model.get("queue_id"), int) and "case_id" not in during_model
    [during_effect] = sink.ids_seen
    assert during_effect.get("case_id") == case.id and during_effect.get("message_id") == "m1"


async def test_the_running_bot_forgets_the_reasoning_of_clean_verdicts_after_a_day(
    store: SqliteStore, clock: MutableClock
) -> None:
    class Thinking(ScriptedClassifier):
        async def classify(self, request: ClassificationRequest) -> Verdict:
            verdict = await super().classify(request)
            return verdict.model_copy(update={"reasoning": "the model thought about it"})

    pipeline = ModerationPipeline(store, Thinking(), {}, workers=1, now=clock)
    await pipeline.start()
    await pipeline.submit(chat("clean", "nice weather"))
    await pipeline.submit(chat("flagged", "you idiot"))
    await pipeline.drain()
    await pipeline.stop()
    kept = {c.message.message_id: c.verdicts[0].reasoning async for c in store.cases.every()}
    assert kept == {"clean": "the model thought about it", "flagged": "the model thought about it"}
    clock.advance(pipeline_module.CLEAN_REASONING_KEPT.total_seconds() + 60)
    await pipeline.start()  # the upkeep runs at start, then every UPKEEP_SECONDS
    try:
        for _ in range(100):
            kept = {c.message.message_id: c.verdicts[0].reasoning async for c in store.cases.every()}
            if not kept["clean"]:
                break
            await asyncio.sleep(0.02)
    finally:
        await pipeline.stop()
    assert kept == {"clean": "", "flagged": "the model thought about it"}


async def test_a_burst_while_running_judges_each_message_once(store: SqliteStore, clock: MutableClock) -> None:
    # Messages go straight to memory while it is caught up, to pages when it is not; a page read
    # while others are handed over or decided must never bring one back to be judged again.
    model = ScriptedClassifier()
    pipeline = ModerationPipeline(store, model, {"console": PostingSink()}, workers=8, now=clock)
    await pipeline.start()
    try:
        for wave in range(4):
            await asyncio.gather(
                *(pipeline.submit(chat(f"m{wave}-{i}", f"text {word(wave * 1000 + i)}")) for i in range(300))
            )
            await asyncio.sleep(0.01 * wave)
        await pipeline.drain()
    finally:
        await pipeline.stop()
    judged = [r.message.message_id for r in model.calls]
    assert len(judged) == len(set(judged)) == 1200
    assert await store.queue_counts() == {"done": 1200}


async def test_a_page_read_while_its_item_is_decided_never_brings_it_back(
    store: SqliteStore, clock: MutableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race, made deterministic: a page's read sees a message still waiting, and before the
    # read returns a worker (handed the message directly) decides it. Taken again, it would be
    # judged twice (the second decision is refused, but the model call is wasted).
    pipeline = ModerationPipeline(store, ScriptedClassifier(), {}, workers=2, now=clock)
    await pipeline.submit(chat("m1", "hello"))
    [waiting] = await store.waiting_page(T0, (), 10)
    read = store.waiting_page

    async def read_while_decided(*args: object) -> list[QueueItem]:
        page = await read(*args)  # type: ignore[arg-type]
        pipeline._held_messages.add(waiting.id)  # a worker was handed it and decided it meanwhile
        pipeline._bulk_running += 1
        pipeline._finished(waiting)
        return page

    monkeypatch.setattr(store, "waiting_page", read_while_decided)
    await pipeline._refill()
    assert list(pipeline._bulk) == [] and pipeline.held_in_memory == 0
