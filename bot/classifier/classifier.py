"""The Classifier port, written once for every backend: retries, deadlines, validation, review.

The rules, whatever the server behind the endpoints:

- No endpoint can take the call (unreachable, overloaded, model missing): back off and try
  again, forever in the bot (the message stays queued), a few times in a one-shot command;
  then ModelUnavailable, with what the operator should do.
- A call gets stuck (no answer by the deadline): its connection is closed and it is asked
  again, preferring another endpoint, up to `timeout_retries` times; then the verdict is
  NEEDS_REVIEW with the reason, so the message is decided and never holds the queue.
- The answer is not the verdict schema: asked once more; then NEEDS_REVIEW with the raw
  output kept for the moderators.
- The server refuses the request itself (4xx): ModelRequestRejected, at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypedDict

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_none,
    wait_random_exponential,
)

from bot.classifier.backend import CallResult, ModelCall
from bot.classifier.errors import EndpointFailure, EndpointTimedOut, ModelUnavailable
from bot.classifier.pool import Answered, EndpointPool
from bot.classifier.prompt import ClassificationRequest
from bot.classifier.verdict import MalformedAnswer, ModelAnswer, parse_answer
from bot.domain import Confidence, Effort, Verdict, VerdictStatus
from bot.observability.logs import bound_ids

log = logging.getLogger(__name__)

# A malformed answer is asked once more: a second sample usually parses (an answer cut
# short, a stray fence); a third rarely helps and doubles the cost of a bad prompt.
ANSWERS_PER_VERDICT = 2


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff while no endpoint can take a call. None attempts: keep trying (the bot, replay)."""

    max_attempts: int | None = None
    initial_seconds: float = 0.5
    max_seconds: float = 30.0


class ModelClassifier:
    """Implements the Classifier port over an EndpointPool (one endpoint or several)."""

    def __init__(self, pool: EndpointPool, *, retry: RetryPolicy | None = None, timeout_retries: int = 1) -> None:
        if timeout_retries < 0:
            raise ValueError("timeout_retries must be 0 or more")
        self.pool = pool
        self.retry = retry or RetryPolicy()
        self.timeout_retries = timeout_retries

    @property
    def reports_model_calls(self) -> bool:
        """True when an observer hears of every call (the metrics need not wrap this classifier)."""
        return self.pool.reports_calls

    @property
    def in_flight(self) -> int:
        return self.pool.in_flight

    @property
    def peak_in_flight(self) -> int:
        return self.pool.peak_in_flight

    async def check(self) -> str | None:
        """The ModelProbe port: None if some endpoint can serve the model, else what is wrong."""
        return await self.pool.check()

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def classify(self, request: ClassificationRequest) -> Verdict:
        message = request.message
        # Every line logged about this call (retries, timeouts, endpoints going down) names
        # the message it was for, never its text.
        with bound_ids(platform=message.platform, server_id=message.server_id, message_id=message.message_id):
            return await self._classify(request)

    async def _classify(self, request: ClassificationRequest) -> Verdict:
        answers: list[Answered] = []
        problem = ""
        try:
            for _ in range(ANSWERS_PER_VERDICT):
                answered = await self._answer(request)
                answers.append(answered)
                try:
                    answer = parse_answer(answered.raw.content)
                except MalformedAnswer as exc:
                    self._observe(request, answered, "malformed")
                    problem = str(exc)
                    log.warning("policy %s: malformed model output (%s)", request.policy.name, exc)
                    continue
                self._observe(request, answered, "ok")
                return self._decided(request, answers, answer)
        except EndpointTimedOut as stuck:
            why = f"The model did not answer: {stuck} ({self.timeout_retries + 1} attempts)."
            return self._needs_review(request, answers, why, model=stuck.model)
        log.warning("policy %s: the model's answer could not be used twice; needs human review", request.policy.name)
        return self._needs_review(request, answers, f"The model's answer could not be used: {problem}")

    # ------------------------------------------------------------ calls

    async def _answer(self, request: ClassificationRequest) -> Answered:
        """One answer; a stuck call is asked again elsewhere, a bounded number of times."""
        stuck_on: set[str] = set()

        def asking_again(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, EndpointTimedOut):
                stuck_on.add(exc.endpoint)
                log.warning(
                    "policy %s: no answer from model endpoint %s: %s (attempt %d of %d); asking again",
                    request.policy.name,
                    exc.endpoint,
                    exc,
                    state.attempt_number,
                    self.timeout_retries + 1,
                )

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(EndpointTimedOut),
            stop=stop_after_attempt(self.timeout_retries + 1),
            wait=wait_none(),
            before_sleep=asking_again,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._answer_when_available(request, stuck_on)
        except EndpointTimedOut as exc:
            log.warning(
                "policy %s: no answer from model endpoint %s: %s (attempt %d of %d); the message needs human review",
                request.policy.name,
                exc.endpoint,
                exc,
                self.timeout_retries + 1,
                self.timeout_retries + 1,
            )
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _answer_when_available(self, request: ClassificationRequest, stuck_on: set[str]) -> Answered:
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, EndpointFailure) and exc.transient),
            wait=wait_random_exponential(multiplier=self.retry.initial_seconds, max=self.retry.max_seconds),
            stop=stop_never if self.retry.max_attempts is None else stop_after_attempt(self.retry.max_attempts),
            before_sleep=_log_unavailable,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self.pool.call(request, avoid=stuck_on)
        except EndpointFailure as failure:
            raise ModelUnavailable(failure.problem, missing_model=failure.missing_model) from failure
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _observe(self, request: ClassificationRequest, answered: Answered, result: CallResult) -> None:
        self.pool.observer.model_call(
            ModelCall(
                answered.endpoint.name,
                request.effort.value,
                result,
                answered.seconds,
                answered.raw.prompt_tokens,
                answered.raw.completion_tokens,
            )
        )

    # ------------------------------------------------------------ verdicts

    def _decided(self, request: ClassificationRequest, answers: list[Answered], answer: ModelAnswer) -> Verdict:
        return Verdict(
            policy=request.policy.name,
            policy_version=request.policy.version,
            violation=bool(answer.violation),
            policy_category=answer.policy_category,
            rule_ids=tuple(answer.rule_ids),
            confidence=Confidence(answer.confidence),
            rationale=answer.rationale,
            **_spent(request, answers),
        )

    def _needs_review(
        self, request: ClassificationRequest, answers: list[Answered], why: str, model: str | None = None
    ) -> Verdict:
        spent = _spent(request, answers)
        if model is not None:
            spent["model"] = model
        return Verdict(
            policy=request.policy.name,
            policy_version=request.policy.version,
            status=VerdictStatus.NEEDS_REVIEW,
            rationale=why,
            raw_output=answers[-1].raw.content if answers else "",
            **spent,
        )


class _Spent(TypedDict):
    reasoning: str
    model: str
    effort: Effort
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int


def _spent(request: ClassificationRequest, answers: list[Answered]) -> _Spent:
    """What the verdict records of its calls: the last answer's reasoning and model, the sums of the rest."""
    last = answers[-1] if answers else None
    return {
        "reasoning": last.raw.reasoning if last else "",
        "model": last.endpoint.model if last else "",
        "effort": request.effort,
        "latency_ms": sum(a.seconds for a in answers) * 1000,
        "prompt_tokens": sum(a.raw.prompt_tokens for a in answers),
        "completion_tokens": sum(a.raw.completion_tokens for a in answers),
    }


def _log_unavailable(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("%s; attempt %d, retrying in %.1fs", exc or "model call failed", state.attempt_number, wait)
