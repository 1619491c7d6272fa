"""Issue 7 §5 (pipeline part) and §10: every case that needs a human reaches the mod channel;
rule ids the policy does not define stay visible, marked unknown, and never act on their own."""

from __future__ import annotations

import asyncio

import pytest

from bot import effect_runner
from bot.classifier import ClassificationRequest
from bot.domain import CaseStatus, Confidence, EffectKind, EffectRule, Mode, Verdict
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

ACT = (
    EffectRule(
        min_confidence=Confidence.HIGH,
        effects=(EffectKind.FLAG, EffectKind.DELETE, EffectKind.TIMEOUT, EffectKind.NOTIFY_AUTHOR),
    ),
)


@pytest.mark.parametrize(
    "why",
    [
        "malformed answer after a retry: not JSON: Expecting value at character 0",
        "timed out after 60 s, 3 times",
    ],
)
async def test_a_verdict_the_model_could_not_give_is_flagged(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink, why: str
) -> None:
    model.answer = lambda request, _: needs_review(request, why, raw="{oops")
    pipeline = await make_pipeline(settings(effect_rules=ACT))
    await pipeline.submit(make_message("m1", "you idiot"))
    await settle(pipeline)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.NEEDS_REVIEW
    [(flag, _)] = sink.of_kind(EffectKind.FLAG)
    assert flag.reason == why
    assert [e.kind for e, _ in sink.executed] == [EffectKind.FLAG]  # nothing automatic


async def test_a_message_that_keeps_breaking_the_pipeline_is_flagged_for_a_human(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink
) -> None:
    """Before, a case that ended in review after internal errors was recorded and never flagged."""

    def broken(request: ClassificationRequest, content: dict[str, object]) -> Verdict | None:
        raise RuntimeError("the classifier fell over")

    model.answer = broken
    pipeline = await make_pipeline()
    await pipeline.submit(make_message("m1", "you idiot"))
    await asyncio.wait_for(settle(pipeline), 10)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.NEEDS_REVIEW
    assert case.skipped_reason == "internal error: RuntimeError: the classifier fell over"
    [(flag, context)] = sink.of_kind(EffectKind.FLAG)
    assert flag.reason == case.skipped_reason and context.case.id == case.id
    assert [(r.effect.kind, r.outcome.value) for r in case.effects] == [(EffectKind.FLAG, "done")]
    assert await store.queue_counts() == {"done": 1}


async def test_shadow_mode_still_posts_nothing_for_a_review(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink
) -> None:
    model.answer = lambda request, _: needs_review(request, "timed out after 60 s")
    pipeline = await make_pipeline(settings(mode=Mode.SHADOW))
    await pipeline.submit(make_message("m1", "you idiot"))
    await settle(pipeline)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.NEEDS_REVIEW and [r.outcome.value for r in case.effects] == ["shadow"]
    assert sink.executed == []


def cites(*rule_ids: str) -> ReadingModel:
    return ReadingModel(rule_ids=rule_ids)


@pytest.mark.parametrize("cited", [("HB9.z",), ("HB0.a",), ()])
async def test_a_violation_citing_no_rule_of_the_policy_goes_to_a_human(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink, cited: tuple[str, ...]
) -> None:
    """An unknown id, a SAFE rule only, or nothing at all: no ground for deleting or timing out."""
    model.rule_ids = cited
    pipeline = await make_pipeline(settings(effect_rules=ACT))
    await pipeline.submit(make_message("m1", "you idiot"))
    await settle(pipeline)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.NEEDS_REVIEW and case.violation
    assert [e.kind for e, _ in sink.executed] == [EffectKind.FLAG]
    assert "a violation citing no rule of the policy goes to human review" in case.judging_notes
    assert case.verdicts[0].rule_ids == cited  # kept visible
    if cited == ("HB9.z",):
        assert "cited rule ids it does not define: HB9.z (marked unknown)" in case.judging_notes
        [(_, context)] = sink.of_kind(EffectKind.FLAG)
        brief = context.policy("harassment")
        assert brief is not None and brief.rule("HB9.z").known is False
        assert ("HB9.z", False) in [(r.id, r.known) for r in brief.rules]
        assert brief.rule("HB1.a").known  # the policy's own rules stay known


async def test_a_known_rule_beside_an_unknown_one_still_acts_and_marks_the_unknown(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel, sink: PostingSink
) -> None:
    model.rule_ids = ("hb1.a ", "HB7.q")  # a model's spelling of HB1.a, and an id it made up
    pipeline = await make_pipeline(settings(effect_rules=ACT))
    await pipeline.submit(make_message("m1", "you idiot"))
    await settle(pipeline)
    [case] = await all_cases(store)
    assert case.status is CaseStatus.OPEN
    assert case.verdicts[0].rule_ids == ("HB1.a", "HB7.q")
    assert [e.kind for e, _ in sink.executed] == [
        EffectKind.FLAG,
        EffectKind.DELETE,
        EffectKind.TIMEOUT,
        EffectKind.NOTIFY_AUTHOR,
    ]
    assert "cited rule ids it does not define: HB7.q (marked unknown)" in case.judging_notes
    context = await effect_runner.build_context(store, case)
    brief = context.policy("harassment")
    assert brief is not None and [(r.id, r.known) for r in brief.rules if r.id in ("HB1.a", "HB7.q")] == [
        ("HB1.a", True),
        ("HB7.q", False),
    ]


async def test_the_model_s_answer_is_made_safe_to_store_and_show(
    make_pipeline: PipelineFactory, store: SqliteStore, model: ReadingModel
) -> None:
    """Model JSON may carry lone surrogates and any number of ids of any length: the case is still recorded."""
    hostile = Verdict(
        policy="harassment",
        policy_version=1,
        violation=True,
        confidence=Confidence.HIGH,
        rule_ids=("HB1.a\ud800", "@everyone " + "x" * 5_000, *(f"R{i}" for i in range(500))),
        policy_category="\udfff",
        rationale="<@123> \ud83d " + "y" * 50_000,
        reasoning="\x00" * 10 + "z" * 100_000,
        raw_output="\ud800",
    )
    model.answer = lambda request, _: hostile
    pipeline = await make_pipeline()
    await pipeline.submit(make_message("m1", "you idiot"))
    await settle(pipeline)
    [case] = await all_cases(store)
    verdict = case.verdicts[0]
    for text in (verdict.rationale, verdict.reasoning, verdict.raw_output or "", *verdict.rule_ids):
        text.encode("utf-8")
    assert len(verdict.rule_ids) == 20 and all(len(r) <= 64 for r in verdict.rule_ids)
    assert len(verdict.rationale) <= 2_000 and len(verdict.reasoning) <= 20_000
    assert "@everyone" not in case.judging_notes  # ids echoed in the notes are defused
    assert len(case.judging_notes) <= 2_000
