"""The scheduled jobs (retention, appeal reminders, digests, model health, waiting effects) and their scheduler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from bot.domain import utcnow
from bot.effect_runner import carry_out_waiting
from bot.notices import AppealReminder, Digest
from bot.platforms import PlatformRouter
from bot.store.ports import ModerationStore
from bot.workflow.digest import send_due_digests
from bot.workflow.health import HealthReport, probe_model
from bot.workflow.ports import Clock, ModChannel, ModelProbe
from bot.workflow.reminders import remind_waiting_appeals
from bot.workflow.retention import purge_message_text

log = logging.getLogger(__name__)

JOB_NAMES = ("retention", "reminders", "digest", "health", "effects")


@dataclass(frozen=True)
class JobIntervals:
    retention: timedelta = timedelta(hours=1)
    reminders: timedelta = timedelta(minutes=15)
    # Digests are due at an hour; checking often enough sends them within minutes of it.
    digest: timedelta = timedelta(minutes=10)
    health: timedelta = timedelta(minutes=1)
    # Effects another process left for a platform running here (a confirm typed at the CLI).
    effects: timedelta = timedelta(seconds=10)


def _every_platform(platform: str) -> bool:
    return True


@dataclass
class WorkflowJobs:
    """The jobs over their ports and a clock, so tests run them at any time they like.

    `runs(platform)` says whether that platform's adapter runs in this process: only its
    servers are notified, so that no notice is marked sent that nobody posted. With a
    PlatformRouter as the mod channel, it is the router's own answer.
    """

    store: ModerationStore
    mod_channel: ModChannel
    probe: ModelProbe | None = None
    clock: Clock = field(default=utcnow)
    runs: Callable[[str], bool] | None = None

    def _runs(self, platform: str) -> bool:
        if self.runs is not None:
            return self.runs(platform)
        if isinstance(self.mod_channel, PlatformRouter):
            return self.mod_channel.runs(platform)
        return _every_platform(platform)

    async def retention(self) -> dict[tuple[str, str], int]:
        return await purge_message_text(self.store, self.clock())

    async def reminders(self) -> list[AppealReminder]:
        return await remind_waiting_appeals(self.store, self.mod_channel, self.clock(), self._runs)

    async def digest(self) -> list[Digest]:
        return await send_due_digests(self.store, self.mod_channel, self.clock(), self._runs)

    async def health(self) -> HealthReport | None:
        if self.probe is None:
            return None
        return await probe_model(self.store, self.probe, self.mod_channel, self.clock(), self._runs)

    async def effects(self) -> int:
        if not isinstance(self.mod_channel, PlatformRouter):
            return 0
        return await carry_out_waiting(self.store, self.mod_channel)

    async def run(self, name: str) -> object:
        if name not in JOB_NAMES:
            raise ValueError(f"no job named {name!r}; jobs are {', '.join(JOB_NAMES)}")
        job: Callable[[], Awaitable[object]] = getattr(self, name)
        return await job()


def _guarded(name: str, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job()
        except Exception:  # one failed run must not stop the schedule
            log.exception("scheduled job %s failed; it runs again at its next time", name)

    run.__name__ = f"modbot_{name}"
    return run


def schedule_jobs(scheduler: Any, jobs: WorkflowJobs, intervals: JobIntervals = JobIntervals()) -> list[str]:
    """Add the jobs to an APScheduler 3 scheduler: one instance each, missed runs coalesced."""
    from apscheduler.triggers.interval import IntervalTrigger

    added = []
    for name in JOB_NAMES:
        if name == "health" and jobs.probe is None:
            continue
        every: timedelta = getattr(intervals, name)
        scheduler.add_job(
            _guarded(name, getattr(jobs, name)),
            IntervalTrigger(seconds=every.total_seconds(), timezone=UTC),
            id=f"modbot-{name}",
            name=name,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            misfire_grace_time=int(every.total_seconds()),
        )
        added.append(name)
    return added


def start_jobs(jobs: WorkflowJobs, intervals: JobIntervals = JobIntervals()) -> Any:
    """Start an AsyncIOScheduler in the running event loop (call from async code); shut it down on exit."""
    # Imported here: only a running bot schedules anything, and APScheduler is slow to import.
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone=UTC)
    schedule_jobs(scheduler, jobs, intervals)
    scheduler.start()
    return scheduler
