"""Sending labelled texts through the classifier, a bounded number at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from bot.classifier import ClassificationRequest
from bot.domain import Author, Effort, Message, Policy, Verdict, VerdictStatus
from bot.evaluation.datasets import Label, LabelledText
from bot.ports import Classifier

# Evaluation texts are not platform messages; these ids only fill the message's shape.
EVAL_PLATFORM = "eval"
_EVAL_AUTHOR = Author(id="member", name="member")


class Judgement(BaseModel):
    """The model's verdict on one labelled text, with its cost. One entry of a results file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    label: Label  # VIOLATION or SAFE: unknown rows are never judged
    status: VerdictStatus
    violation: bool | None  # None: the model's answer was unusable even after a retry
    policy_category: str | None = None
    rule_ids: tuple[str, ...] = ()
    confidence: str = ""
    rationale: str = ""
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def decided(self) -> bool:
        return self.violation is not None

    @property
    def correct(self) -> bool:
        return self.decided and self.violation == (self.label is Label.VIOLATION)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def judgement_of(text: LabelledText, verdict: Verdict) -> Judgement:
    decided = verdict.status is VerdictStatus.DECIDED
    return Judgement(
        id=text.id,
        label=text.label,
        status=verdict.status,
        violation=verdict.violation if decided else None,
        policy_category=verdict.policy_category,
        rule_ids=verdict.rule_ids,
        confidence=verdict.confidence.value if decided else "",
        rationale=verdict.rationale,
        latency_ms=round(verdict.latency_ms, 3),
        prompt_tokens=verdict.prompt_tokens,
        completion_tokens=verdict.completion_tokens,
    )


def message_for(text: LabelledText) -> Message:
    return Message(
        platform=EVAL_PLATFORM,
        server_id=EVAL_PLATFORM,
        channel_id=EVAL_PLATFORM,
        message_id=text.id,
        author=_EVAL_AUTHOR,
        text=text.text,
    )


async def judge_texts(
    classifier: Classifier,
    policy: Policy,
    texts: Sequence[LabelledText],
    effort: Effort,
    *,
    concurrency: int,
    on_judgement: Callable[[Judgement], None] | None = None,
) -> list[Judgement]:
    """Judge every text; at most `concurrency` requests are in flight.

    A fixed pool of workers (not one task per text) keeps a 1,680-row run from queueing
    everything at once. The first failure (model unavailable, request refused) stops the
    run: judgements already reported through `on_judgement` stand, so a rerun resumes.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if not texts:
        return []
    pending = list(reversed(texts))
    judged: list[Judgement] = []

    async def worker() -> None:
        while pending:
            text = pending.pop()
            verdict = await classifier.classify(ClassificationRequest(policy, message_for(text), effort))
            judgement = judgement_of(text, verdict)
            judged.append(judgement)
            if on_judgement is not None:
                on_judgement(judgement)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(texts)))]
    try:
        done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            failure = task.exception()
            if failure is not None:
                raise failure
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    order = {t.id: i for i, t in enumerate(texts)}
    return sorted(judged, key=lambda j: order[j.id])
