"""Issue 7 §4: oversized text is judged whole, and the case records what was done."""

from __future__ import annotations

from typing import Any

import pytest

from bot.classifier import ClassificationRequest
from bot.domain import CaseStatus, Confidence, Verdict, VerdictStatus
from bot.judging import combine_parts
from bot.store.sqlite import SqliteStore
from bot.text import token_upper_bound
from tests.helpers import make_message
from tests.judging.conftest import PipelineFactory, ReadingModel, all_cases, needs_review, settle

ABUSE = "you worthless idiot, I will find you"


def filler(chars: int) -> str:
    words = "the quick brown fox jumps over the lazy dog and then naps in the warm afternoon sun "
    return (words * (chars // len(words) + 1))[:chars]


async def test_abuse_after_4000_characters_of_filler_is_a_violation(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    """Before, the prompt clipped the text at 4,000 characters and the model never saw the abuse."""
    pipeline = await make_pipeline()
    await pipeline.submit(make_message("m1", filler(4_000) + " " + ABUSE))
    await settle(pipeline)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.OPEN
    assert any("idiot" in seen["text"] for seen in model.seen)
    assert case.judging_notes.startswith("judged whole (4,037 characters)")


@pytest.mark.parametrize("where", ["start", "middle", "end"])
async def test_abuse_anywhere_in_a_long_message_is_seen(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, where: str
) -> None:
    half = filler(15_000)
    text = {"start": ABUSE + " " + half + half, "middle": half + " " + ABUSE + " " + half, "end": half + half + ABUSE}
    pipeline = await make_pipeline()
    await pipeline.submit(make_message("m1", text[where]))
    await settle(pipeline)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.OPEN
    parts = list(model.seen)
    assert len(parts) > 1 and all(
        seen["part"].startswith(f"part {i + 1} of {len(parts)}") for i, seen in enumerate(parts)
    )
    assert all(token_upper_bound(seen["text"]) <= 1_000 for seen in parts)  # each within the budget
    assert f"judged whole in {len(parts)} overlapping parts" in case.judging_notes
    assert case.verdicts[0].rationale.startswith("part ")  # which part spoke for the message
    assert "worthless" not in case.judging_notes  # the notes hold no content


async def test_past_the_cap_head_and_tail_are_judged_with_a_marker(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    text = ABUSE + " " + filler(60_000) + " the end"
    pipeline = await make_pipeline()
    await pipeline.submit(make_message("m1", text))
    await settle(pipeline)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.OPEN
    labels = [seen["part"] for seen in model.seen]
    assert sum("characters not shown follow this part" in label for label in labels) == 1
    assert sum("characters not shown precede this part" in label for label in labels) == 1
    assert "over the 40,000-character cap" in case.judging_notes and "in the middle not judged" in case.judging_notes
    assert sum(len(seen["text"]) for seen in model.seen) < 45_000


async def test_a_part_the_model_cannot_judge_makes_the_message_need_review(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    def stuck_on_part_two(request: ClassificationRequest, content: dict[str, object]) -> Verdict | None:
        if str(content.get("part", "")).startswith("part 2 "):
            return needs_review(request, "timed out after 60 s")
        return None

    model.answer = stuck_on_part_two
    pipeline = await make_pipeline()
    await pipeline.submit(make_message("m1", filler(12_000)))
    await settle(pipeline)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.NEEDS_REVIEW
    assert case.verdicts[0].rationale.startswith("part 2 of ") and "timed out after 60 s" in case.verdicts[0].rationale


async def test_a_long_text_is_prepared_off_the_event_loop(
    make_pipeline: PipelineFactory, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 40,000-character hostile text costs tens of milliseconds to view and chunk: a thread does it."""
    import threading

    from bot import judging
    from bot.text import JudgedText, prepare_for_judging

    threads: list[str] = []

    def recording(text: str) -> JudgedText:
        threads.append(threading.current_thread().name)
        return prepare_for_judging(text)

    monkeypatch.setattr(judging, "prepare_for_judging", recording)
    pipeline = await make_pipeline()
    await pipeline.submit(make_message("short", "hello"))
    await pipeline.submit(make_message("long", filler(30_000)))
    await settle(pipeline)
    assert sorted(t == threading.main_thread().name for t in threads) == [False, True]


def _verdict(violation: bool, confidence: Confidence, rules: tuple[str, ...] = (), **extra: Any) -> Verdict:
    return Verdict(
        policy="p",
        policy_version=1,
        violation=violation,
        confidence=confidence,
        rule_ids=rules,
        rationale=f"{'bad' if violation else 'ok'} {confidence.value}",
        latency_ms=10.0,
        prompt_tokens=100,
        completion_tokens=5,
        **extra,
    )


def test_the_most_confident_violating_part_speaks_citing_every_violating_part_s_rules() -> None:
    parts = [
        _verdict(False, Confidence.HIGH),
        _verdict(True, Confidence.MEDIUM, ("HB1.b",)),
        _verdict(True, Confidence.HIGH, ("HB2.a",)),
        Verdict(policy="p", policy_version=1, status=VerdictStatus.NEEDS_REVIEW, rationale="malformed"),
    ]
    combined, notes = combine_parts(parts)
    assert combined.violation and combined.confidence is Confidence.HIGH
    assert combined.rule_ids == ("HB2.a", "HB1.b")
    assert combined.rationale == "part 3 of 4: bad high"
    assert combined.latency_ms == 30.0 and combined.prompt_tokens == 300
    assert notes == ("p: 1 of 4 parts gave no usable verdict",)


def test_a_clean_message_is_as_sure_as_its_least_sure_part() -> None:
    combined, notes = combine_parts([_verdict(False, Confidence.HIGH), _verdict(False, Confidence.LOW)])
    assert not combined.violation and combined.confidence is Confidence.LOW and notes == ()
    assert combined.rationale == "part 2 of 2: ok low"
