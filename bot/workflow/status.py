"""What `modbot status` reports: the queue, the store's size, the model's health, each platform's limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain import Frozen
from bot.platforms import PlatformRouter
from bot.sanitise import safe_inline
from bot.store.ports import HealthState, ModerationStore


class PlatformStatus(Frozen):
    platform: str
    running: bool
    # What this process's configuration cannot do, in words (Slack delete without an admin token).
    limits: tuple[str, ...] = ()
    # Servers whose settings ask for an effect the platform cannot carry out at all.
    misconfigured: tuple[str, ...] = ()


class StatusReport(Frozen):
    store: Mapping[str, Any]
    store_bytes: int
    queue: Mapping[str, int]
    # Interactive work (appeal second opinions, previews) by state.
    work: Mapping[str, int] = {}
    model: HealthState
    platforms: tuple[PlatformStatus, ...]

    def lines(self) -> list[str]:
        queue = ", ".join(f"{n} {state}" for state, n in sorted(self.queue.items())) or "empty"
        # The probe's problem quotes the model server's answer, and servers' ids are the platforms':
        # shown inert, on their own line.
        model = (
            f"failing since {self.model.failing_since:%Y-%m-%d %H:%M} UTC: {safe_inline(self.model.last_problem, 300)}"
            if self.model.failing_since
            else "healthy (as last probed)"
        )
        out = [
            f"store: {self.store.get('kind')} {self.store.get('path', '')} ({self.store_bytes:,} bytes)".replace(
                "  ", " "
            ),
            f"queue: {queue}",
            f"model: {model}",
        ]
        if self.store.get("auto_vacuum") == "none":
            out.insert(
                1,
                "  space freed by retention is not given back to the disk: run `modbot db compact`"
                " while the bot is stopped (once)",
            )
        if self.work:
            out.append("interactive work: " + ", ".join(f"{n} {state}" for state, n in sorted(self.work.items())))
        for p in self.platforms:
            out.append(f"platform {p.platform}: {'running' if p.running else 'not running in this process'}")
            out += [f"  limit: {limit}" for limit in p.limits]
            out += [f"  settings: {safe_inline(problem, 500)}" for problem in p.misconfigured]
        return out


class Status:
    def __init__(self, store: ModerationStore, router: PlatformRouter) -> None:
        self.store = store
        self.router = router

    async def report(self) -> StatusReport:
        """For the operator: nothing in it is any one server's content."""
        settings = await self.store.settings.every()
        platforms = []
        for name in sorted(set(self.router.catalog.names) | set(self.router.running)):
            declared = self.router.catalog.get(name)
            limits = tuple(declared.configuration_limits()) if declared and self.router.runs(name) else ()
            misconfigured = tuple(
                f"server {s.server_id}: {problem}"
                for s in settings
                if s.platform == name
                for problem in self.router.catalog.unsupported(s)
            )
            platforms.append(
                PlatformStatus(
                    platform=name, running=self.router.runs(name), limits=limits, misconfigured=misconfigured
                )
            )
        return StatusReport(
            store=self.store.describe(),
            store_bytes=await self.store.size_bytes(),
            queue=await self.store.queue_counts(),
            work=await self.store.work.counts(),
            model=await self.store.jobs.health(),
            platforms=tuple(platforms),
        )
