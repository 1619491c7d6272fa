"""The bot's Prometheus metrics: their names, and the ways the running parts feed them.

One `ModbotMetrics` per app, with its own registry (no process-wide globals, so tests and
several apps in one process never mix counts). The names are a contract with the
dashboard and alert rules in ops/: change them together.

- modbot_messages_total{outcome}: classified, skipped, reused, failed, screened, rule.
  Fed by `observe_case` (a pipeline observer), and by `observe_message` for the outcomes
  that the triage decides.
- modbot_model_calls_total{endpoint,result}: ok, needs_review, malformed, timeout,
  unavailable, rejected, error.
- modbot_model_latency_seconds{effort,endpoint}: seconds the server took to answer, not
  the time spent waiting for a free slot.
- modbot_model_tokens_total{direction}: in, out.
- modbot_model_endpoint_up{endpoint}: an answer sets 1, "unavailable" sets 0; probes may
  set it too (`set_endpoint_up`).
  The four model metrics are fed by `InstrumentedClassifier`, or by a classifier that
  reports each call itself (`reports_model_calls = True`) to this object as its
  `ModelCallObserver` (`model_call`, `endpoint_health`); `instrument_classifier` picks.
- modbot_queue_depth, modbot_queue_oldest_age_seconds: `track_queue`, asked of the store
  before each scrape (`refresh`).
- modbot_backlog_drain_seconds: `track_backlog_drain`, the capacity model's estimate.
- modbot_effects_total{kind,result}: done, failed, unsupported, error (the sink raised).
  Fed by `InstrumentedSink` around each platform's sink, or by `observe_effect`.
- modbot_appeals_total{outcome}: filed, upheld, overturned; `observe_appeal`, called by
  the appeals service.
- modbot_adapter_connected{platform}: `track_adapter`, read at each scrape.

Each of the feeds counts its thing once: wrap the classifier or let the backend report,
not both; wrap the sinks or let the effect runner report, not both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from bot.classifier import ClassificationRequest, ModelRequestRejected, ModelUnavailable
from bot.classifier.backend import endpoint_name
from bot.domain import (
    Case,
    CaseStatus,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    Effort,
    Verdict,
    VerdictStatus,
    utcnow,
)
from bot.observability.logs import bound_ids
from bot.ports import Classifier, EffectSink
from bot.store.ports import QueueBacklog

log = logging.getLogger(__name__)


class MessageOutcome(StrEnum):
    CLASSIFIED = "classified"  # the model judged it
    SKIPPED = "skipped"  # no model call needed: a bot, an exempt role or channel, empty, no policy
    REUSED = "reused"  # a recent verdict for the same text was reused
    FAILED = "failed"  # decided as "needs human review": unusable answers or internal errors
    SCREENED = "screened"  # the cheap screen found no policy that may apply (triage)
    RULE = "rule"  # a rule decided without the model (triage)


class ModelCallResult(StrEnum):
    OK = "ok"
    NEEDS_REVIEW = "needs_review"  # answered, but the answer could not be used (after its retry)
    MALFORMED = "malformed"  # one answer that is not the verdict schema (a self-reporting backend)
    TIMEOUT = "timeout"  # no answer by the deadline
    UNAVAILABLE = "unavailable"  # unreachable, overloaded, model not pulled
    REJECTED = "rejected"  # the server refused the request itself
    ERROR = "error"  # anything else


# The results for which the server did answer: their seconds are model latency.
ANSWERED: Final = frozenset({ModelCallResult.OK, ModelCallResult.NEEDS_REVIEW, ModelCallResult.MALFORMED})


class ModelCallReport(Protocol):
    """One call as a self-reporting classifier describes it (the model backends' `ModelCall`)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def effort(self) -> str: ...
    @property
    def result(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...


class AppealOutcome(StrEnum):
    FILED = "filed"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


EFFECT_RESULTS: Final = ("done", "failed", "unsupported", "error")

_Labelled = TypeVar("_Labelled", Counter, Gauge, Histogram)

QueueSource = Callable[[], Awaitable[QueueBacklog]]
# A scrape must answer even when the store is slow: the queue's gauges keep their last
# values rather than hold the scraper past its own timeout.
REFRESH_TIMEOUT_SECONDS: Final = 2.0

# Model calls take from a fraction of a second (low effort, a GPU) to minutes (high effort,
# a CPU); the last bucket is the default timeout.
LATENCY_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0)


def endpoint_label(url: str) -> str:
    """A model endpoint as a label: scheme, host and path, never credentials or a query.

    The same name the classifier gives the endpoint when it reports its own calls.
    """
    return endpoint_name(url)


def outcome_of(case: Case) -> MessageOutcome:
    """How the pipeline decided a message, for modbot_messages_total."""
    if case.status is CaseStatus.SKIPPED:
        return MessageOutcome.SKIPPED
    if case.status is CaseStatus.NEEDS_REVIEW and (
        not case.verdicts or any(v.status is VerdictStatus.NEEDS_REVIEW for v in case.verdicts)
    ):
        return MessageOutcome.FAILED
    if case.verdicts and all(v.reused for v in case.verdicts):
        return MessageOutcome.REUSED
    return MessageOutcome.CLASSIFIED


class ModbotMetrics:
    """Every metric of one app, in one registry that the /metrics endpoint exposes."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process_metrics: bool = True) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._queue_source: QueueSource | None = None
        self._clock: Callable[[], datetime] = utcnow
        self._refresh_failing = False
        r = self.registry
        self.messages = Counter("modbot_messages", "Messages decided, by outcome.", ["outcome"], registry=r)
        self.model_calls = Counter(
            "modbot_model_calls", "Model calls, by endpoint and result.", ["endpoint", "result"], registry=r
        )
        self.model_latency = Histogram(
            "modbot_model_latency_seconds",
            "Seconds a model server took to answer one call, by effort and endpoint.",
            ["effort", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_tokens = Counter(
            "modbot_model_tokens", "Tokens sent to (in) and generated by (out) the model.", ["direction"], registry=r
        )
        self.endpoint_up = Gauge(
            "modbot_model_endpoint_up", "1 while a model endpoint answers, else 0.", ["endpoint"], registry=r
        )
        self.queue_depth = Gauge("modbot_queue_depth", "Messages accepted and not yet decided.", registry=r)
        self.queue_oldest_age = Gauge(
            "modbot_queue_oldest_age_seconds", "Age of the oldest message waiting to be decided.", registry=r
        )
        self.backlog_drain = Gauge(
            "modbot_backlog_drain_seconds", "Estimated seconds to decide the waiting backlog.", registry=r
        )
        self.effects = Counter(
            "modbot_effects", "Effects carried out by the platforms.", ["kind", "result"], registry=r
        )
        self.appeals = Counter("modbot_appeals", "Appeals filed and decided, by outcome.", ["outcome"], registry=r)
        self.adapter_connected = Gauge(
            "modbot_adapter_connected", "1 while a platform adapter is connected.", ["platform"], registry=r
        )
        if process_metrics:
            # Memory, CPU and open files of this process: the backlog's RSS is worth watching.
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        # Series that exist from the start read 0 rather than missing, so rate() and
        # alert rules work before the first event of each kind.
        for outcome in MessageOutcome:
            self.messages.labels(outcome=outcome.value)
        for appeal in AppealOutcome:
            self.appeals.labels(outcome=appeal.value)
        for direction in ("in", "out"):
            self.model_tokens.labels(direction=direction)
        for kind in EffectKind:
            for result in EFFECT_RESULTS:
                self.effects.labels(kind=kind.value, result=result)

    # ------------------------------------------------------------ events

    def observe_message(self, outcome: MessageOutcome) -> None:
        self._child(self.messages, outcome.value).inc()

    def observe_case(self, case: Case) -> None:
        """A pipeline observer: `pipeline.observers.append(metrics.observe_case)`."""
        self.observe_message(outcome_of(case))

    def observe_model_call(
        self,
        *,
        endpoint: str,
        effort: Effort | str,
        result: ModelCallResult,
        seconds: float | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
    ) -> None:
        """One call to a model server; its `seconds` count as latency only when it answered."""
        effort_value = effort.value if isinstance(effort, Effort) else effort
        self._child(self.model_calls, endpoint, result.value).inc()
        if seconds is not None and result in ANSWERED:
            self._child(self.model_latency, effort_value, endpoint).observe(seconds)
        if tokens_in:
            self._child(self.model_tokens, "in").inc(tokens_in)
        if tokens_out:
            self._child(self.model_tokens, "out").inc(tokens_out)
        if result in (ModelCallResult.OK, ModelCallResult.NEEDS_REVIEW):
            self.set_endpoint_up(endpoint, True)
        elif result is ModelCallResult.UNAVAILABLE:
            self.set_endpoint_up(endpoint, False)

    def set_endpoint_up(self, endpoint: str, up: bool) -> None:
        self._child(self.endpoint_up, endpoint).set(1 if up else 0)

    # The ModelCallObserver protocol of a classifier that reports its own calls.

    def model_call(self, call: ModelCallReport) -> None:
        try:
            result = ModelCallResult(call.result)
        except ValueError:
            result = ModelCallResult.ERROR  # a result this version does not know: still counted
        self.observe_model_call(
            endpoint=call.endpoint,
            effort=call.effort,
            result=result,
            seconds=call.seconds,
            tokens_in=call.prompt_tokens,
            tokens_out=call.completion_tokens,
        )

    def endpoint_health(self, endpoint: str, up: bool) -> None:
        self.set_endpoint_up(endpoint, up)

    def observe_effect(self, kind: EffectKind, result: str) -> None:
        """`result`: done, failed, unsupported, or error (the sink raised)."""
        self._child(self.effects, kind.value, result).inc()

    def observe_appeal(self, outcome: AppealOutcome | str) -> None:
        """An appeal filed, upheld or overturned (the appeals service's hook passes the word)."""
        self._child(self.appeals, AppealOutcome(outcome).value).inc()

    def _child(self, metric: _Labelled, *values: str) -> _Labelled:
        # labels() takes a lock and builds a key on every call; the per-message paths reuse
        # the child. Label values are few (outcomes, kinds, endpoints), so the cache stays small.
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # ------------------------------------------------------------ state, read at each scrape

    def track_queue(self, backlog: QueueSource, clock: Callable[[], datetime] = utcnow) -> None:
        """Ask `backlog` (the store's `queue_backlog`) for the queue's depth and oldest item before each scrape.

        One cheap query per scrape rather than bookkeeping per message; the age is 0 when
        nothing waits.
        """
        self._queue_source = backlog
        self._clock = clock

    async def refresh(self) -> None:
        """Bring the gauges that need I/O up to date; the endpoint calls this before each exposition."""
        if self._queue_source is None:
            return
        try:
            backlog = await asyncio.wait_for(self._queue_source(), REFRESH_TIMEOUT_SECONDS)
        except Exception as exc:
            # Logged when it starts failing, not at every scrape; the health check says more.
            if not self._refresh_failing:
                log.warning("queue metrics not refreshed: %s", type(exc).__name__)
            self._refresh_failing = True
            return
        self._refresh_failing = False
        self.queue_depth.set(backlog.depth)
        oldest = backlog.oldest_enqueued_at
        self.queue_oldest_age.set(max(0.0, (self._clock() - oldest).total_seconds()) if oldest else 0.0)

    def track_backlog_drain(self, seconds: Callable[[], float]) -> None:
        self.backlog_drain.set_function(seconds)

    def track_adapter(self, platform: str, is_connected: Callable[[], bool]) -> None:
        def value() -> float:
            # Read inside the scrape: an adapter whose flag raises is not connected, and the
            # scrape still answers.
            try:
                return 1.0 if is_connected() else 0.0
            except Exception:
                return 0.0

        self.adapter_connected.labels(platform=platform).set_function(value)

    # ------------------------------------------------------------ exposition

    # ------------------------------------------------------------ wrapping the ports

    def instrument_classifier(self, classifier: Classifier, endpoint: str) -> Classifier:
        """The classifier to give the app: wrapped to be counted, unless it reports its own calls.

        A classifier that reports each call itself says so with `reports_model_calls = True`
        and has been given this object as its observer; wrapping it too would count twice.
        """
        if getattr(classifier, "reports_model_calls", False):
            return classifier
        return InstrumentedClassifier(classifier, self, endpoint)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (Prometheus text or OpenMetrics)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class InstrumentedClassifier:
    """The Classifier port, counting each call of the classifier it wraps.

    For a backend that does not report its own calls (today's Ollama backend): one
    `classify` is one call to `endpoint`, timed by the server's own answer time
    (`Verdict.latency_ms`), so waiting for a free slot is not counted as model latency.
    The backend's log lines during the call carry the message's ids.
    """

    def __init__(self, inner: Classifier, metrics: ModbotMetrics, endpoint: str) -> None:
        self.inner = inner
        self.metrics = metrics
        self.endpoint = endpoint_label(endpoint)

    async def classify(self, request: ClassificationRequest) -> Verdict:
        message = request.message
        try:
            with bound_ids(platform=message.platform, server_id=message.server_id, message_id=message.message_id):
                verdict = await self.inner.classify(request)
        except ModelUnavailable:
            self._count(request, ModelCallResult.UNAVAILABLE)
            raise
        except ModelRequestRejected:
            self._count(request, ModelCallResult.REJECTED)
            raise
        except Exception:
            self._count(request, ModelCallResult.ERROR)
            raise
        self.metrics.observe_model_call(
            endpoint=self.endpoint,
            effort=verdict.effort,
            result=ModelCallResult.OK if verdict.status is VerdictStatus.DECIDED else ModelCallResult.NEEDS_REVIEW,
            seconds=verdict.latency_ms / 1000,
            tokens_in=verdict.prompt_tokens,
            tokens_out=verdict.completion_tokens,
        )
        return verdict

    def _count(self, request: ClassificationRequest, result: ModelCallResult) -> None:
        self.metrics.observe_model_call(endpoint=self.endpoint, effort=request.effort, result=result)

    async def aclose(self) -> None:
        # The app closes its classifier; the wrapped one holds the connections.
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


class InstrumentedSink:
    """The EffectSink port, counting each effect the wrapped platform sink carries out.

    (The effect runner binds the case's ids around the sink.) Everything else of the
    adapter (its mod channel's `post`, `aclose`, `connected`, ...) is the adapter's own,
    so the wrapper can stand wherever the adapter did.
    """

    def __init__(self, inner: EffectSink, metrics: ModbotMetrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.platform = inner.platform

    def __getattr__(self, name: str) -> Any:
        # Reached only for names the wrapper lacks: `post`, `aclose`, `connected`, ... are the
        # adapter's, and absent when the adapter lacks them (the router asks with getattr).
        if name == "inner":  # not set yet (a copy being made): no endless recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def supported_effects(self) -> frozenset[EffectKind]:
        return self.inner.supported_effects

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        try:
            result = await self.inner.execute(effect, context)
        except Exception:
            self.metrics.observe_effect(effect.kind, "error")
            raise
        self.metrics.observe_effect(effect.kind, _RESULT_NAMES[result.outcome])
        return result


_RESULT_NAMES: Final = {
    EffectOutcome.DONE: "done",
    EffectOutcome.FAILED: "failed",
    EffectOutcome.UNSUPPORTED: "unsupported",
}
