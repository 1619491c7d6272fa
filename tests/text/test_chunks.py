"""Long text: chunks that cover it within a budget, overlapping, up to the cap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text import MAX_JUDGED_CHARS, ChunkPlan, plan_chunks, prepare_for_judging, token_upper_bound

ABUSE = "you worthless idiot, I will find you"
FILLER = "lorem ipsum dolor sit amet "


def filler(chars: int, unit: str = FILLER) -> str:
    return (unit * (chars // len(unit) + 1))[:chars]


def covered(plan: ChunkPlan, phrase: str) -> bool:
    return any(phrase in chunk.text for chunk in plan.chunks)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.parametrize("length", [4_000, 12_000, 39_000])
def test_abuse_anywhere_in_a_long_message_is_whole_in_one_chunk(where: str, length: int) -> None:
    text = {
        "start": ABUSE + " " + filler(length),
        "middle": filler(length // 2) + " " + ABUSE + " " + filler(length // 2),
        "end": filler(length) + " " + ABUSE,
    }[where]
    plan = plan_chunks(text)
    assert covered(plan, ABUSE)
    assert plan.omitted is None


def test_four_thousand_characters_of_filler_no_longer_hide_what_follows() -> None:
    judged = prepare_for_judging(filler(4_000) + ABUSE)
    assert any(ABUSE in part.text for part in judged.parts)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.integers(0, 9_000),
    budget=st.integers(40, 400),
    overlap=st.integers(8, 19),
)
def test_a_phrase_cut_by_any_boundary_is_whole_in_a_neighbour(prefix: int, budget: int, overlap: int) -> None:
    text = filler(prefix) + " " + ABUSE + " " + filler(3_000)
    plan = plan_chunks(text, chunk_tokens=budget, overlap_tokens=overlap)
    assert covered(plan, ABUSE)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(st.characters(codec="utf-8"), max_size=3_000) | st.text(alphabet="ab ,.\n字🔪", max_size=6_000),
    budget=st.integers(8, 300),
)
def test_chunks_cover_the_text_in_order_within_budget(text: str, budget: int) -> None:
    plan = plan_chunks(text, chunk_tokens=budget, overlap_tokens=budget // 4)
    if not text:
        assert plan.chunks == ()
        return
    assert plan.chunks[0].start == 0 and plan.chunks[-1].end == len(text)
    for before, after in zip(plan.chunks, plan.chunks[1:], strict=False):
        assert before.start < after.start <= before.end  # no gap, always forward
    for chunk in plan.chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.tokens == token_upper_bound(chunk.text) <= budget


def test_past_the_cap_head_and_tail_are_judged_and_the_middle_is_named() -> None:
    text = ABUSE + " " + filler(60_000) + " " + ABUSE.upper()
    plan = plan_chunks(text)
    assert plan.omitted is not None
    start, end = plan.omitted
    assert len(text) - (end - start) <= MAX_JUDGED_CHARS
    assert covered(plan, ABUSE) and covered(plan, ABUSE.upper())
    assert f"{end - start:,} characters in the middle not judged" in plan.summary
    labels = [plan.label(i) for i in range(len(plan.chunks))]
    assert sum("not shown follow" in (label or "") for label in labels) == 1
    assert sum("not shown precede" in (label or "") for label in labels) == 1


def test_a_run_without_spaces_is_cut_where_it_must_be() -> None:
    plan = plan_chunks("x" * 45_000 + " " + ABUSE)
    assert covered(plan, ABUSE)
    assert all(chunk.tokens <= plan.chunk_tokens for chunk in plan.chunks)


def test_short_text_is_judged_whole_and_says_so() -> None:
    plan = plan_chunks("hello there")
    assert plan.whole and plan.summary == "judged whole (11 characters)" and plan.label(0) is None


def test_invisible_padding_cannot_push_abuse_past_the_cap() -> None:
    judged = prepare_for_judging("\u200b" * 50_000 + ABUSE + "\u200b" * 50_000)
    assert judged.plan.whole
    assert judged.parts[0].text == ABUSE


def test_token_bound_is_not_fooled_by_missing_spaces_or_other_scripts() -> None:
    assert token_upper_bound("x" * 40_000) >= 20_000  # the word count calls this 1 token
    assert token_upper_bound("字" * 1_000) == 1_000
    assert token_upper_bound("🔪" * 10) == 20
    english = "The quick brown fox jumps over the lazy dog. " * 10
    assert 90 <= token_upper_bound(english) <= 150  # about 100 in o200k


def test_refuses_a_budget_that_cannot_overlap() -> None:
    with pytest.raises(ValueError, match="overlap_tokens"):
        plan_chunks("x", chunk_tokens=10, overlap_tokens=5)
