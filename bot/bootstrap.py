"""One place that builds the store, the model client, the pipeline and every workflow service from settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from bot.domain import utcnow

if TYPE_CHECKING:
    # Only for types: a command that needs one piece (`modbot check`, the model client) must
    # not pay for importing the pipeline and every workflow service.
    from bot.app import ModbotApp
    from bot.classifier import ModelClassifier, RetryPolicy
    from bot.classifier.backend import ModelCallObserver
    from bot.observability.metrics import ModbotMetrics
    from bot.platforms import PlatformCapabilities
    from bot.ports import Classifier, EffectSink, ModelProbe
    from bot.settings import LogFormat, ModbotSettings
    from bot.store.ports import ModerationStore
    from bot.workflow.jobs import JobIntervals
    from bot.workflow.ports import Clock

__all__ = ["bootstrap", "build_classifier", "configure_logging"]


def build_classifier(
    settings: ModbotSettings, retry: RetryPolicy | None = None, *, observer: ModelCallObserver | None = None
) -> ModelClassifier:
    # The backend, endpoints, deadlines and retries are the classifier package's business.
    # With an observer (the app's metrics) it reports every call it makes, to every endpoint.
    from bot.classifier.factory import build_classifier as build_model_classifier

    return build_model_classifier(settings, retry, observer=observer)


def build_probe(settings: ModbotSettings) -> ModelProbe:
    # A model client of its own answers the probe (ModelClassifier.check): whatever the
    # backend, and every endpoint of MODBOT_MODEL_ENDPOINTS, not only OLLAMA_HOST.
    return build_classifier(settings)


def model_slots(classifier: Classifier, settings: ModbotSettings) -> int:
    """How many calls the model serves at once: the sum of its endpoints' bounds, else the setting."""
    endpoints = getattr(getattr(classifier, "pool", None), "endpoints", None)
    if endpoints:
        return sum(int(endpoint.bound) for endpoint in endpoints)
    return settings.model_concurrency


async def bootstrap(
    settings: ModbotSettings,
    platforms: Mapping[str, EffectSink] | None = None,
    *,
    capabilities: Iterable[PlatformCapabilities] = (),
    classifier: Classifier | None = None,
    retry: RetryPolicy | None = None,
    store: ModerationStore | None = None,
    probe: ModelProbe | None = None,
    run_jobs: bool = True,
    job_intervals: JobIntervals | None = None,
    clock: Clock = utcnow,
    runner: str | None = None,
    metrics: ModbotMetrics | None = None,
) -> ModbotApp:
    """Build the app: each service once, over one store, one model client and the running adapters.

    `platforms` maps a platform name to its adapter, the object that is its EffectSink and
    (with `post`) its ModChannel. `capabilities` are every platform's declarations, running
    here or not (the launcher collects them), for `settings set` and `modbot status`.
    `run_jobs` False (admin commands) builds no model probe and schedules nothing.
    `runner` names a process that works the queue (`modbot run`, `replay`): it must be the
    only one on the database (RunnerLockHeld otherwise); admin commands pass none.
    With `metrics`, the model calls, effects, decided messages, appeals and the queue are
    counted there (bot.observability.metrics).
    """
    from bot.app import ModbotApp
    from bot.pipeline import ModerationPipeline
    from bot.platforms import PlatformCatalog, PlatformRouter
    from bot.store.ports import WorkKind
    from bot.workflow.appeals import Appeals, SecondOpinions
    from bot.workflow.jobs import JobIntervals, WorkflowJobs
    from bot.workflow.labels import Labels
    from bot.workflow.policies import PolicyAdmin
    from bot.workflow.preview import Previews, QueuedPreviews
    from bot.workflow.privacy import MemberDataRequests
    from bot.workflow.reports import Reports
    from bot.workflow.review import Reviews
    from bot.workflow.server_settings import ServerSettingsService
    from bot.workflow.status import Status

    if store is None:
        from bot.store.sqlite import SqliteStore

        store = await SqliteStore.open(settings.db, now=clock, runner=runner)
    elif runner is not None:
        await store.take_runner_lock(runner)
    try:
        model = classifier or build_classifier(settings, retry, observer=metrics)
    except BaseException:
        await store.close()
        raise
    slots = model_slots(model, settings)
    adapters = dict(platforms or {})
    if metrics is not None:
        from bot.observability.metrics import InstrumentedSink

        model = metrics.instrument_classifier(model, settings.ollama_host)
        adapters = {name: InstrumentedSink(adapter, metrics) for name, adapter in adapters.items()}
        metrics.track_queue(store.queue_backlog, clock)
    router = PlatformRouter(adapters, PlatformCatalog(capabilities))
    # The bulk of messages keeps at most the model's concurrency in flight, so that interactive
    # work (appeals, previews: the services below call the model directly) is next in line.
    pipeline = ModerationPipeline(store, model, router, workers=settings.worker_count, now=clock, model_slots=slots)
    if metrics is not None:
        pipeline.observers.append(metrics.observe_case)
    changed = pipeline.invalidate
    if run_jobs and probe is None:
        probe = build_probe(settings)
    appeals = Appeals(
        store,
        model,
        router,
        router,
        clock,
        observe=metrics.observe_appeal if metrics else None,
        on_work=pipeline.wake,
    )
    preview = Previews(store, model, changed, clock, mod_channel=router, on_work=pipeline.wake)
    pipeline.register_work(WorkKind.SECOND_OPINION, SecondOpinions(appeals))
    pipeline.register_work(WorkKind.PREVIEW, QueuedPreviews(preview))
    return ModbotApp(
        store=store,
        classifier=model,
        platforms=router,
        pipeline=pipeline,
        reviews=Reviews(store, router, clock),
        appeals=appeals,
        policies=PolicyAdmin(store, changed, clock),
        server_settings=ServerSettingsService(store, router.catalog, changed, clock),
        preview=preview,
        reports=Reports(store),
        labels=Labels(store),
        status=Status(store, router),
        jobs=WorkflowJobs(store, router, probe, clock),
        privacy=MemberDataRequests(store, clock),
        probe=probe,
        job_intervals=job_intervals or JobIntervals(),
        run_jobs=run_jobs,
        metrics=metrics,
    )


def configure_logging(level: str, log_format: LogFormat | None = None) -> None:
    """Structured logs (bot.observability.logs); the format defaults to MODBOT_LOG_FORMAT."""
    from bot.observability.logs import configure_logging as configure_structured_logging
    from bot.settings import ModbotSettings

    # INFO lines carry ids, counts and outcomes only: never message text or secrets.
    configure_structured_logging(level, log_format or ModbotSettings().log_format)
