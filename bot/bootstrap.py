"""One place that builds the store, the model client and the pipeline from settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.classifier import ModelClassifier, RetryPolicy
from bot.classifier.factory import build_classifier as build_model_classifier
from bot.pipeline import ModerationPipeline
from bot.ports import Classifier, EffectSink
from bot.settings import ModbotSettings
from bot.store import SqliteStore
from bot.workflow import OllamaProbe, WorkflowJobs, start_jobs
from bot.workflow.ports import ModChannel


@dataclass
class ModbotApp:
    settings: ModbotSettings
    store: SqliteStore
    classifier: Classifier
    pipeline: ModerationPipeline
    jobs: WorkflowJobs | None = None
    _scheduler: Any = None

    def start_jobs(self) -> None:
        """Start retention, appeal reminders, digests and the health probe in this event loop."""
        if self.jobs is not None and self._scheduler is None:
            self._scheduler = start_jobs(self.jobs)

    async def aclose(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        await self.pipeline.stop()
        for closable in (self.classifier, self.jobs.probe if self.jobs else None):
            close = getattr(closable, "aclose", None)
            if close is not None:
                await close()
        await self.store.close()


def build_classifier(settings: ModbotSettings, retry: RetryPolicy | None = None) -> ModelClassifier:
    # The backend, endpoints, deadlines and retries are the classifier package's business.
    return build_model_classifier(settings, retry)


async def bootstrap(
    settings: ModbotSettings,
    sinks: Mapping[str, EffectSink],
    *,
    classifier: Classifier | None = None,
    retry: RetryPolicy | None = None,
    mod_channel: ModChannel | None = None,
) -> ModbotApp:
    store = await SqliteStore.open(settings.db)
    model = classifier or build_classifier(settings, retry)
    pipeline = ModerationPipeline(store, model, sinks, workers=settings.worker_count)
    jobs = None
    if mod_channel is not None:
        probe = OllamaProbe(settings.ollama_host, settings.model)
        jobs = WorkflowJobs(store, mod_channel, probe)
    return ModbotApp(settings, store, model, pipeline, jobs)


def configure_logging(level: str) -> None:
    # INFO lines carry ids, counts and outcomes only: never message text or secrets.
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
