"""Edits as revisions through the real pipeline and SQLite: judged again, once, the latest winning."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from adapters.console.render import case_text
from bot.domain import Case, CaseNoteKind, CaseStatus, EffectKind, EffectOutcome
from bot.pipeline import EditLimits, ModerationPipeline
from bot.store.sqlite import SqliteStore
from tests.helpers import ScriptedClassifier, add_policy
from tests.queue.conftest import T0
from tests.queue.helpers import MutableClock, PostingSink, chat, word


@pytest_asyncio.fixture
async def store(tmp_path: Path, clock: MutableClock) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "revisions.db", now=clock)
    await add_policy(s, "s1")
    yield s
    await s.close()


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(T0)


@pytest_asyncio.fixture
async def world(
    store: SqliteStore, clock: MutableClock
) -> AsyncIterator[tuple[ModerationPipeline, ScriptedClassifier, PostingSink]]:
    model, sink = ScriptedClassifier(), PostingSink()
    pipeline = ModerationPipeline(store, model, {"console": sink}, workers=3, now=clock)
    await pipeline.start()
    yield pipeline, model, sink
    await pipeline.stop()


async def cases_of(store: SqliteStore, message_id: str) -> list[Case]:
    return sorted(
        [c async for c in store.cases.every() if c.message.message_id == message_id], key=lambda c: c.revision
    )


async def test_an_edit_to_abuse_is_judged_again_and_makes_a_case(
    world: tuple[ModerationPipeline, ScriptedClassifier, PostingSink], store: SqliteStore
) -> None:
    pipeline, model, sink = world
    assert await pipeline.submit(chat("m1", "see you tomorrow"))
    await pipeline.drain()
    assert await pipeline.submit(chat("m1", "see you tomorrow, idiot", edited_after_s=30))
    await pipeline.drain()
    first, second = await cases_of(store, "m1")
    assert (first.revision, first.status) == (1, CaseStatus.CLEAN)
    assert (second.revision, second.status, second.message.edited) == (2, CaseStatus.OPEN, True)
    assert sink.kinds(second.id) == [EffectKind.FLAG]
    assert [r.message.text for r in model.calls] == ["see you tomorrow", "see you tomorrow, idiot"]


async def test_a_replayed_edit_is_decided_once(
    world: tuple[ModerationPipeline, ScriptedClassifier, PostingSink], store: SqliteStore
) -> None:
    pipeline, model, _ = world
    await pipeline.submit(chat("m1", "hello"))
    await pipeline.drain()
    edit = chat("m1", "hello, idiot", edited_after_s=10)
    # A gateway resumes and replays the edit, at once and later.
    taken = await asyncio.gather(*(pipeline.submit(edit) for _ in range(3)))
    await pipeline.drain()
    assert sorted(taken) == [False, False, True]
    assert await pipeline.submit(edit) is False
    await pipeline.drain()
    assert [c.revision for c in await cases_of(store, "m1")] == [1, 2]
    assert len(model.calls) == 2


async def test_an_update_that_leaves_the_text_alone_is_no_revision(
    world: tuple[ModerationPipeline, ScriptedClassifier, PostingSink], store: SqliteStore
) -> None:
    pipeline, model, _ = world
    await pipeline.submit(chat("m1", "look at https://example.org"))
    await pipeline.drain()
    # Discord sends MESSAGE_UPDATE when a link preview is added; the text is the same.
    assert await pipeline.submit(chat("m1", "look at https://example.org", edited_after_s=2)) is False
    await pipeline.drain()
    assert len(await cases_of(store, "m1")) == 1 and len(model.calls) == 1


async def test_a_revision_arriving_after_a_newer_one_is_recorded_not_judged(
    world: tuple[ModerationPipeline, ScriptedClassifier, PostingSink], store: SqliteStore
) -> None:
    pipeline, model, _ = world
    await pipeline.submit(chat("m1", "one"))
    await pipeline.drain()
    await pipeline.submit(chat("m1", "three", edited_after_s=30))
    await pipeline.drain()
    # The second edit's event arrives last (a replay, out of order): the latest revision wins.
    assert await pipeline.submit(chat("m1", "two, idiot", edited_after_s=20)) is True
    await pipeline.drain()
    assert [m.message.text for m in model.calls] == ["one", "three"]
    assert [c.message.text for c in await cases_of(store, "m1")] == ["one", "three"]
    assert await store.queue_counts() == {"done": 2, "superseded": 1}


async def test_a_later_revision_supersedes_one_still_waiting(store: SqliteStore, clock: MutableClock) -> None:
    model, sink = ScriptedClassifier(), PostingSink()
    pipeline = ModerationPipeline(store, model, {"console": sink}, workers=2, now=clock)
    # Both arrive while the bot is busy elsewhere (or down): only the newest text is judged.
    await pipeline.submit(chat("m1", "you idiot"))
    await pipeline.submit(chat("m1", "you nice person", edited_after_s=5))
    await pipeline.start()
    await pipeline.drain()
    await pipeline.stop()
    assert [m.message.text for m in model.calls] == ["you nice person"]
    assert await store.queue_counts() == {"done": 1, "superseded": 1}


async def test_an_edit_of_a_message_under_an_open_case_notes_it_and_updates_the_flag(
    world: tuple[ModerationPipeline, ScriptedClassifier, PostingSink], store: SqliteStore
) -> None:
    pipeline, _, sink = world
    await pipeline.submit(chat("m1", "you idiot"))
    await pipeline.drain()
    [flagged] = await cases_of(store, "m1")
    await pipeline.submit(chat("m1", "you are lovely", edited_after_s=60))
    await pipeline.drain()
    first, second = await cases_of(store, "m1")
    assert first.id == flagged.id and first.status is CaseStatus.OPEN
    assert first.message.text == "you idiot"  # what was flagged stays with the case
    assert [(n.kind, n.revision) for n in first.notes] == [(CaseNoteKind.EDITED, 2)]
    assert sink.kinds(first.id) == [EffectKind.FLAG, EffectKind.UPDATE_FLAG]
    assert [r.outcome for r in first.effects] == [EffectOutcome.DONE, EffectOutcome.DONE]
    assert second.status is CaseStatus.CLEAN and second.notes == ()
    # What a moderator at the console sees of both.
    assert "note: edited by the author at" in case_text(first) and "(revision 2, judged as its own case)" in case_text(
        first
    )
    assert "(revision 2)" in case_text(second).splitlines()[0]


async def test_a_hundred_fast_edits_are_not_a_hundred_model_calls_and_the_final_text_is_judged(
    store: SqliteStore, clock: MutableClock
) -> None:
    model, sink = ScriptedClassifier(), PostingSink()
    limits = EditLimits(per_author_per_minute=6, settle_seconds=30, max_hold_seconds=300)
    pipeline = ModerationPipeline(store, model, {"console": sink}, workers=3, now=clock, edit_limits=limits)
    await pipeline.start()
    try:
        await pipeline.submit(chat("m1", "draft 0"))
        await pipeline.drain()
        for i in range(1, 101):
            clock.advance(0.2)
            text = f"draft {word(i)}" + (" idiot" if i == 100 else "")
            await pipeline.submit(chat("m1", text, edited_after_s=i * 0.2))
        await asyncio.sleep(0.3)  # the workers see what is due: never the held revisions
        held_back = len(model.calls)
        clock.advance(31)  # the edits stopped; the latest revision's settle time passes
        await pipeline.drain()
    finally:
        await pipeline.stop()
    judged = [r.message.text for r in model.calls]
    assert held_back <= 1 + limits.per_author_per_minute  # the original and the edits within the limit
    assert len(judged) <= 2 + limits.per_author_per_minute
    assert judged[-1] == f"draft {word(100)} idiot"  # the final text is always judged
    latest = await store.cases.for_message("console", "s1", "m1")
    assert latest is not None and latest.revision == 101 and latest.status is CaseStatus.OPEN


async def test_editing_forever_does_not_keep_a_message_unjudged(store: SqliteStore, clock: MutableClock) -> None:
    model, sink = ScriptedClassifier(), PostingSink()
    limits = EditLimits(per_author_per_minute=1, settle_seconds=30, max_hold_seconds=120)
    pipeline = ModerationPipeline(store, model, {"console": sink}, workers=2, now=clock, edit_limits=limits)
    await pipeline.start()
    try:
        await pipeline.submit(chat("m1", "hello"))
        await pipeline.drain()
        judged_before = len(model.calls)
        # An edit every 20 s for five minutes: each would settle after 30 s, were it not the
        # cap of two minutes since the first held revision.
        for i in range(1, 16):
            clock.advance(20)
            await pipeline.submit(chat("m1", f"abuse {word(i)} idiot", edited_after_s=20 * i))
            pipeline.wake()
            await asyncio.sleep(0.05)
        during = len(model.calls) - judged_before
        clock.advance(limits.settle_seconds)
        await pipeline.drain()
    finally:
        await pipeline.stop()
    assert 1 < during < 15  # judged while the edits went on, but not each of them
    assert model.calls[-1].message.text == f"abuse {word(15)} idiot"
