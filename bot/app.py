"""The app: every service built once over the same ports, and the lifecycle that starts and stops them.

An adapter (or the console CLI) gets everything it calls from here:
`app.pipeline.submit(message)` for chat messages, and the workflow services (`reviews`,
`appeals`, `policies`, `server_settings`, `preview`, `reports`, `labels`, `status`, `privacy`) for
everything people do. `async with app:` starts the workers and the scheduled jobs; leaving
it stops intake, then the jobs and workers, then closes the clients, in that order. Used
without `async with` (an admin command), nothing runs in the background: call `aclose()`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bot.pipeline import ModerationPipeline
from bot.platforms import PlatformCatalog, PlatformRouter
from bot.ports import Classifier, ModelProbe
from bot.store.ports import ModerationStore
from bot.workflow.appeals import Appeals
from bot.workflow.jobs import JobIntervals, WorkflowJobs, start_jobs
from bot.workflow.labels import Labels
from bot.workflow.policies import PolicyAdmin
from bot.workflow.preview import Previews
from bot.workflow.privacy import MemberDataRequests
from bot.workflow.reports import Reports
from bot.workflow.review import Reviews
from bot.workflow.server_settings import ServerSettingsService
from bot.workflow.status import Status

if TYPE_CHECKING:
    from bot.observability.metrics import ModbotMetrics
    from bot.observability.server import ObservabilityServer

log = logging.getLogger(__name__)


@dataclass
class ModbotApp:
    store: ModerationStore
    classifier: Classifier
    platforms: PlatformRouter  # the running adapters: effect sinks and the mod-channel router
    pipeline: ModerationPipeline
    reviews: Reviews
    appeals: Appeals
    policies: PolicyAdmin
    server_settings: ServerSettingsService
    preview: Previews
    reports: Reports
    labels: Labels
    status: Status
    jobs: WorkflowJobs
    # Data-subject requests: one member's data exported or erased.
    privacy: MemberDataRequests
    probe: ModelProbe | None = None
    job_intervals: JobIntervals = field(default_factory=JobIntervals)
    run_jobs: bool = True
    metrics: ModbotMetrics | None = None  # set by bootstrap(metrics=...): what is counted
    endpoint: ObservabilityServer | None = None  # /healthz and /metrics: up first, down first
    _scheduler: Any = None
    _started: bool = False
    _closed: bool = False

    @property
    def catalog(self) -> PlatformCatalog:
        return self.platforms.catalog

    @property
    def mod_channel(self) -> PlatformRouter:
        return self.platforms

    async def __aenter__(self) -> ModbotApp:
        try:
            await self.start()
        except BaseException:
            await self.aclose()  # a start that fails (a port in use) leaves nothing open
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> int:
        """Resume what an earlier run left, start the workers and (in a running bot) the jobs.

        Returns how many queued messages were resumed.
        """
        for name in self.platforms.running:
            declared = self.catalog.get(name)
            for limit in declared.configuration_limits() if declared else ():
                log.warning("%s as configured cannot carry out %s; such effects are recorded unsupported", name, limit)
        if self.endpoint is not None:
            # Before resuming: /livez must answer while a long backlog is taken up again.
            await self.endpoint.start()
        resumed = await self.pipeline.start()
        self._started = True
        if self.run_jobs and self._scheduler is None:
            self._scheduler = start_jobs(self.jobs, self.job_intervals)
        return resumed

    async def aclose(self) -> None:
        """Stop intake, then the jobs and the workers, then close the clients and the store."""
        if self._closed:
            return
        self._closed = True
        if self.endpoint is not None:
            await self.endpoint.stop()
        self.pipeline.close_intake()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._started:
            await self.pipeline.stop()
        for client in (self.classifier, self.probe, self.platforms):
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
        await self.store.close()
