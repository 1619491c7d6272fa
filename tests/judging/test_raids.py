"""Issue 7 §3: a raid produces bounded output; deletes and time-outs still apply to each message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot import effect_runner
from bot.domain import (
    Author,
    Case,
    CaseStatus,
    Confidence,
    Effect,
    EffectKind,
    EffectOutcome,
    EffectRule,
    Message,
    Verdict,
)
from bot.raids import FlagKey, FlagUpdates, RaidControl
from bot.store.sqlite import SqliteStore
from tests.helpers import make_message
from tests.judging.conftest import (
    PipelineFactory,
    PostingSink,
    ReadingModel,
    all_cases,
    needs_review,
    settings,
    settle,
)

DELETE_AND_FLAG = (EffectRule(min_confidence=Confidence.HIGH, effects=(EffectKind.FLAG, EffectKind.DELETE)),)
RAID = [
    "join my server you idiot",
    "JOIN my server you idiot!!",
    "join my s\u200berver you idiot 77",
    "jоin my sеrver you idiot",  # Cyrillic о and е
    "join, my server. you IDIOT",
]


def raid(count: int, *, start: int = 0) -> list[Message]:
    return [
        make_message(f"r{start + i}", RAID[i % len(RAID)], author=f"raider{start + i}", offset_s=i)
        for i in range(count)
    ]


async def test_a_raid_posts_one_flag_that_counts_its_repeats(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink
) -> None:
    model.bad = ("idiot", "IDIOT")
    pipeline = await make_pipeline(settings(effect_rules=DELETE_AND_FLAG))
    for message in raid(30):
        await pipeline.submit(message)
    await settle(pipeline)

    cases = await all_cases(store)
    [(_, flag_context)] = sink.of_kind(EffectKind.FLAG)
    first = flag_context.case
    joined = [c for c in cases if c.id != first.id]
    assert len(cases) == 30 and all(c.status is CaseStatus.OPEN for c in cases)
    assert all(c.joined_case_id == first.id for c in joined)
    assert all(f"joined the flag of case {first.id}" in c.judging_notes for c in joined)
    # Every message is still deleted.
    assert sorted(c.case.message.message_id for _, c in sink.of_kind(EffectKind.DELETE)) == sorted(
        m.message_id for m in raid(30)
    )
    # The first post was edited through its stored reference, last with all 29 repeats and their authors.
    updates = sink.of_kind(EffectKind.UPDATE_FLAG)
    assert updates and all(c.flag_reference == f"mod/{first.id}" for _, c in updates)
    last = updates[-1][1].joins
    assert last.count == 29 and set(last.author_ids) == {c.message.author.id for c in joined}
    assert len(model.calls) <= 3  # 5 spellings, one violation key: a call, and waits on it


async def test_a_moderator_s_decision_on_the_flag_still_shows_its_repeats(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink
) -> None:
    pipeline = await make_pipeline()
    for message in raid(4):
        await pipeline.submit(message)
    await settle(pipeline)
    [(_, flag_context)] = sink.of_kind(EffectKind.FLAG)
    holder = await store.cases.get(flag_context.case.id)
    assert holder is not None
    context = await effect_runner.build_context(store, holder)  # what any later UPDATE_FLAG is given
    assert context.joins.count == 3 and context.flag_reference == f"mod/{holder.id}"


async def test_each_text_of_a_raid_gets_its_own_flag(
    make_pipeline: PipelineFactory, store: SqliteStore, sink: PostingSink
) -> None:
    pipeline = await make_pipeline()
    texts = ["free nitro idiot", "hot singles idiot", "crypto pump idiot"]
    for n in range(12):
        await pipeline.submit(make_message(f"m{n}", texts[n % 3] + "!" * n, author=f"u{n}"))
    await settle(pipeline)
    assert len(sink.of_kind(EffectKind.FLAG)) == 3
    assert sum(c.joined_case_id is not None for c in await all_cases(store)) == 9


async def test_repeats_need_review_once_when_the_model_cannot_answer(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink
) -> None:
    """A stuck model during a raid: one review flag for the text, which its repeats join."""
    model.gate = asyncio.Event()
    model.answer = lambda request, _: needs_review(request, "timed out after 60 s (3 tries)")
    pipeline = await make_pipeline()
    for n in range(20):
        await pipeline.submit(make_message(f"m{n}", "buy followers now", author=f"u{n}"))
    await asyncio.sleep(0.05)
    model.gate.set()
    await settle(pipeline)
    cases = await all_cases(store)
    # Those waiting for the stuck call take its answer; a review is never remembered for later
    # messages (the next may be answered), but every one of them joins the one review flag.
    assert 1 <= len(model.calls) < 20
    assert all(c.status is CaseStatus.NEEDS_REVIEW for c in cases)
    [(flag, _)] = sink.of_kind(EffectKind.FLAG)
    assert flag.reason == "timed out after 60 s (3 tries)"
    assert sum(c.joined_case_id is not None for c in cases) == 19


async def test_no_joins_across_servers_or_with_the_window_off(
    make_pipeline: PipelineFactory, store: SqliteStore, sink: PostingSink
) -> None:
    from tests.helpers import add_policy
    from tests.judging.conftest import POLICY

    await add_policy(store, "s2", "harassment", POLICY)
    await store.settings.put(settings(repeat_window_minutes=0).model_copy(update={"server_id": "s2"}), store.now())
    pipeline = await make_pipeline()
    for n in range(3):
        await pipeline.submit(make_message(f"a{n}", "you idiot", author=f"u{n}"))
        await pipeline.submit(make_message(f"b{n}", "you idiot", author=f"u{n}", server="s2"))
    await settle(pipeline)
    flagged = [c.case.message.server_id for _, c in sink.of_kind(EffectKind.FLAG)]
    assert sorted(flagged) == ["s1", "s2", "s2", "s2"]  # s2 reuses nothing and joins nothing


async def test_dms_to_moderators_pause_then_say_what_was_held_back(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink
) -> None:
    clock = [datetime(2026, 11, 1, 12, 0, tzinfo=UTC)]
    rules = (EffectRule(effects=(EffectKind.FLAG, EffectKind.DM_MODERATORS)),)
    pipeline = await make_pipeline(settings(effect_rules=rules), workers=1)
    pipeline.judge.raids = RaidControl(lambda: clock[0])
    words = ["apple", "bread", "chair", "dough", "eagle", "flute", "grape", "house", "juice", "knife", "lemon", "mango"]
    for n, word in enumerate(words):  # twelve different insults: no joins, each would DM
        await pipeline.submit(make_message(f"m{n}", f"{word} idiot", author=f"u{n}"))
        await settle(pipeline)
        clock[0] += timedelta(seconds=20)

    dms = sink.of_kind(EffectKind.DM_MODERATORS)
    assert len(dms) == 6  # five, then the one that says DMs are paused
    assert [c.dm_summary for _, c in dms[:5]] == [None] * 5
    pause = dms[5][1].dm_summary
    assert pause is not None and pause.paused_until is not None and pause.held_back == 0
    assert "paused until" in pause.words() and "mod channel" in pause.words()
    assert len(sink.of_kind(EffectKind.FLAG)) == 12  # the mod channel still gets every flag
    held = (await all_cases(store))[6:]
    assert all("moderator DM held back" in c.judging_notes for c in held)
    assert all(EffectKind.DM_MODERATORS not in [r.effect.kind for r in c.effects] for c in held)

    clock[0] = pause.paused_until + timedelta(seconds=1)
    await pipeline.submit(make_message("late", "pepper idiot", author="u99"))
    await settle(pipeline)
    after = sink.of_kind(EffectKind.DM_MODERATORS)[-1][1].dm_summary
    assert after is not None and after.held_back == 6 and after.paused_until is None
    assert "6 other flagged message(s)" in after.words()


# ---------------------------------------------------------------- the raid state alone

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
FLAG = Effect(kind=EffectKind.FLAG, policy="harassment")
DELETE = Effect(kind=EffectKind.DELETE, policy="harassment")
DM = Effect(kind=EffectKind.DM_MODERATORS, policy="harassment")


def key(*policies: str, text: str = "k") -> FlagKey:
    return FlagKey("violation", text, frozenset(policies or ("harassment",)))


def test_a_repeat_joins_only_a_flag_that_names_all_its_policies() -> None:
    raids = RaidControl(lambda: T0)
    first = raids.bound("A", make_message("m1"), key("harassment"), (FLAG, DM), 600)
    assert first.joined_case_id is None and first.effects == (FLAG, DM)
    wider = raids.bound("B", make_message("m2"), key("harassment", "spam"), (FLAG, DELETE), 600)
    assert wider.joined_case_id is None  # it flags for spam too: the first flag does not say so
    same = raids.bound("C", make_message("m3"), key("harassment"), (FLAG, DELETE, DM), 600)
    assert same.joined_case_id == "A" and same.effects == (DELETE,)


def test_a_flag_is_joinable_for_the_window_only_and_never_by_its_own_message() -> None:
    now = [T0]
    raids = RaidControl(lambda: now[0])
    raids.bound("A", make_message("m1"), key(), (FLAG,), 600)
    again = raids.bound("A2", make_message("m1"), key(), (FLAG,), 600)  # judged again after a failure
    assert again.joined_case_id is None
    assert raids.bound("B", make_message("m2"), key(), (FLAG,), 600).joined_case_id == "A2"
    now[0] += timedelta(seconds=601)
    assert raids.bound("C", make_message("m3"), key(), (FLAG,), 600).joined_case_id is None
    assert raids.bound("D", make_message("m4"), key(), (FLAG,), 600).joined_case_id == "C"


def test_shadow_flags_and_forgotten_messages_are_not_joined() -> None:
    raids = RaidControl(lambda: T0)
    shadow = FLAG.model_copy(update={"shadow": True})
    raids.bound("A", make_message("m1"), key(), (shadow,), 600)
    assert raids.bound("B", make_message("m2"), key(), (shadow,), 600).joined_case_id is None
    raids.bound("C", make_message("m3"), key(text="other"), (FLAG,), 600)
    raids.forget_message(make_message("m3").key)  # its case ended in an internal error
    assert raids.bound("D", make_message("m4"), key(text="other"), (FLAG,), 600).joined_case_id is None


# ---------------------------------------------------------------- the post's edits


async def _holder(store: SqliteStore, posted: EffectOutcome | None = EffectOutcome.DONE) -> Case:
    """Case HOLD with a FLAG: posted (a reference to edit), failed, or still pending (None)."""
    message = make_message("holder", "you idiot")
    queue_id = await store.enqueue(message)
    assert queue_id is not None
    verdict = Verdict(policy="harassment", policy_version=1, violation=True, rule_ids=("HB1.a",))
    case = Case(id="HOLD", message=message, status=CaseStatus.OPEN, verdicts=(verdict,), created_at=T0)
    await store.record_decision(queue_id, case, [(FLAG, EffectOutcome.PENDING)])
    if posted is not None:
        await _post_flag(store, posted)
    return case


async def _post_flag(store: SqliteStore, outcome: EffectOutcome = EffectOutcome.DONE) -> None:
    assert await store.effects.claim("HOLD", 1)
    reference = "mod/HOLD" if outcome is EffectOutcome.DONE else None
    await store.effects.set_outcome("HOLD", 1, outcome, "posted", reference=reference)


async def _join(store: SqliteStore, n: int) -> None:
    message = Message(
        platform="console", server_id="s1", channel_id="c1", message_id=f"j{n}", author=Author(id=f"u{n}"), text="x"
    )
    queue_id = await store.enqueue(message)
    assert queue_id is not None
    case = Case(id=f"J{n}", message=message, status=CaseStatus.OPEN, joined_case_id="HOLD", created_at=T0)
    await store.record_decision(queue_id, case, [])


async def test_a_flag_is_edited_at_once_then_at_most_once_per_interval(store: SqliteStore) -> None:
    clock = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # until the test's clock has moved on that far
        slept.append(seconds)
        until = clock[0] + seconds
        while clock[0] < until:
            await asyncio.sleep(0)

    sink = PostingSink()
    updates = FlagUpdates(store, {"console": sink}, interval_seconds=10.0, clock=lambda: clock[0], sleep=sleep)
    await _holder(store)
    for n in range(100):  # a hundred joins within one interval
        await _join(store, n)
        updates.joined("HOLD")
        clock[0] += 0.01
        await asyncio.sleep(0)
    clock[0] += 10.0  # the interval passes: the trailing edit is due
    await updates.idle()
    edits = sink.of_kind(EffectKind.UPDATE_FLAG)
    assert len(edits) == 2  # the first join at once, the other 99 in one trailing edit
    assert edits[-1][1].joins.count == 100  # the last edit shows every repeat
    assert all(s <= 10.0 for s in slept)
    stored = await store.cases.get("HOLD")
    assert stored is not None and [r.effect.kind for r in stored.effects].count(EffectKind.UPDATE_FLAG) == len(edits)


async def test_joins_before_the_flag_is_posted_are_shown_once_it_is(store: SqliteStore) -> None:
    sink = PostingSink()
    updates = FlagUpdates(store, {"console": sink}, interval_seconds=0.0)
    await _holder(store, posted=None)
    await _join(store, 1)
    updates.joined("HOLD")
    await updates.idle()
    assert sink.of_kind(EffectKind.UPDATE_FLAG) == []  # nothing posted yet to edit
    await _post_flag(store)
    updates.flag_posted("HOLD")
    await updates.idle()
    [(_, context)] = sink.of_kind(EffectKind.UPDATE_FLAG)
    assert context.joins.count == 1


async def test_a_flag_that_could_not_be_posted_is_not_edited(store: SqliteStore) -> None:
    sink = PostingSink()
    updates = FlagUpdates(store, {"console": sink}, interval_seconds=0.0)
    await _holder(store, posted=EffectOutcome.FAILED)
    await _join(store, 1)
    updates.joined("HOLD")
    await updates.idle()
    assert sink.executed == []
