"""gpt-oss-safeguard behind Ollama: one bounded, retried, validated call per policy."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
import ollama
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
    wait_random_exponential,
)

from bot.classifier.prompt import VERDICT_SCHEMA, ClassificationRequest, build_messages
from bot.classifier.verdict import MalformedAnswer, ModelAnswer, parse_answer
from bot.domain import Confidence, Verdict, VerdictStatus

log = logging.getLogger(__name__)

TRANSIENT_STATUS = {-1, 429, 500, 502, 503, 504}


class ModelUnavailable(RuntimeError):
    """The model server cannot answer now: unreachable, overloaded, or the model is not pulled."""

    def __init__(self, message: str, *, missing_model: bool = False) -> None:
        super().__init__(message)
        self.missing_model = missing_model


class ModelRequestRejected(RuntimeError):
    """The server refused the request itself (a 4xx other than 404/429): retrying cannot help."""


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for an unavailable model server. None attempts: keep trying (the bot, replay)."""

    max_attempts: int | None = None
    initial_seconds: float = 0.5
    max_seconds: float = 30.0


class OllamaClassifier:
    """Implements the Classifier port against Ollama's /api/chat.

    A single semaphore bounds the requests in flight across every message and policy, so
    the server never sees more than its slots plus what we chose to queue there.
    """

    def __init__(
        self,
        host: str,
        model: str,
        *,
        concurrency: int = 2,
        timeout: float = 300.0,
        keep_alive: str | float = "30m",
        num_ctx: int = 8192,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.host = host
        self.model = model
        self.retry = retry or RetryPolicy()
        self._client = ollama.AsyncClient(host=host, timeout=timeout)
        self._slots = asyncio.Semaphore(concurrency)
        self._keep_alive = keep_alive
        self._options = {"num_ctx": num_ctx}
        self.in_flight = 0
        self.peak_in_flight = 0

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # untyped in ollama 0.6

    async def classify(self, request: ClassificationRequest) -> Verdict:
        """One verdict. Malformed output is retried once, then handed to a human."""
        first = await self._call_with_retries(request)
        try:
            return self._verdict(request, first, parse_answer(first.content))
        except MalformedAnswer as exc:
            log.warning("policy %s: malformed model output (%s); asking once more", request.policy.name, exc)
        second = await self._call_with_retries(request)
        try:
            return self._verdict(request, second, parse_answer(second.content))
        except MalformedAnswer as exc:
            log.warning("policy %s: malformed model output again (%s); needs human review", request.policy.name, exc)
            return Verdict(
                policy=request.policy.name,
                policy_version=request.policy.version,
                status=VerdictStatus.NEEDS_REVIEW,
                rationale=f"The model's answer could not be used: {exc}",
                reasoning=second.thinking,
                raw_output=second.content,
                model=self.model,
                effort=request.effort,
                latency_ms=first.latency_ms + second.latency_ms,
                prompt_tokens=first.prompt_tokens + second.prompt_tokens,
                completion_tokens=first.completion_tokens + second.completion_tokens,
            )

    def _verdict(self, request: ClassificationRequest, raw: _RawAnswer, answer: ModelAnswer) -> Verdict:
        return Verdict(
            policy=request.policy.name,
            policy_version=request.policy.version,
            violation=bool(answer.violation),
            policy_category=answer.policy_category,
            rule_ids=tuple(answer.rule_ids),
            confidence=Confidence(answer.confidence),
            rationale=answer.rationale,
            reasoning=raw.thinking,
            model=self.model,
            effort=request.effort,
            latency_ms=raw.latency_ms,
            prompt_tokens=raw.prompt_tokens,
            completion_tokens=raw.completion_tokens,
        )

    async def _call_with_retries(self, request: ClassificationRequest) -> _RawAnswer:
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            wait=wait_random_exponential(multiplier=self.retry.initial_seconds, max=self.retry.max_seconds),
            stop=stop_never if self.retry.max_attempts is None else stop_after_attempt(self.retry.max_attempts),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._call_once(request)
        except ollama.ResponseError as exc:
            raise self._explain(exc) from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise ModelUnavailable(self._unreachable(exc)) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _call_once(self, request: ClassificationRequest) -> _RawAnswer:
        async with self._slots:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            started = time.perf_counter()
            try:
                response = await self._client.chat(
                    model=self.model,
                    messages=build_messages(request),
                    think=request.effort.value,
                    format=VERDICT_SCHEMA,
                    stream=False,
                    options=self._options,
                    keep_alive=self._keep_alive,
                )
            finally:
                self.in_flight -= 1
        return _RawAnswer(
            content=response.message.content or "",
            thinking=response.message.thinking or "",
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=response.prompt_eval_count or 0,
            completion_tokens=response.eval_count or 0,
        )

    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"model server unreachable at {self.host} ({type(exc).__name__}): start Ollama with "
            f"`ollama serve` (or `docker compose up ollama`), or set OLLAMA_HOST"
        )

    def _explain(self, exc: ollama.ResponseError) -> Exception:
        if exc.status_code == 404:
            return ModelUnavailable(
                f"model {self.model} is not available on {self.host}: run `ollama pull {self.model}`",
                missing_model=True,
            )
        if exc.status_code in TRANSIENT_STATUS:
            return ModelUnavailable(f"model server at {self.host} answered {exc.status_code}: {exc.error}")
        return ModelRequestRejected(f"model server at {self.host} refused the request ({exc.status_code}): {exc.error}")

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if isinstance(exc, ollama.ResponseError):
            what = f"model server at {self.host} answered {exc.status_code} ({exc.error})"
        else:
            what = self._unreachable(exc) if exc else "model call failed"
        log.warning("%s; attempt %d, retrying in %.1fs", what, state.attempt_number, wait)


@dataclass(frozen=True)
class _RawAnswer:
    content: str
    thinking: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ollama.ResponseError):
        return exc.status_code in TRANSIENT_STATUS
    return isinstance(exc, ConnectionError | httpx.TransportError)
