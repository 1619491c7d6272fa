"""Health checks as data: a name and an async callable that returns a problem, or None when healthy.

The callable has the shape of the workflow's `ModelProbe.check` (`bot.workflow.health`),
so the model probe plugs in as it is. A check that raises or does not answer in time is
a problem too: a health endpoint that hangs is no health endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

ProblemCheck = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class HealthCheck:
    name: str  # "model", "database", "adapter:discord", ...
    check: ProblemCheck
    timeout_seconds: float = 5.0

    @classmethod
    def adapter(cls, platform: str, is_connected: Callable[[], bool]) -> HealthCheck:
        """A platform adapter is healthy while connected (discord.py: `client.is_ready`, ...)."""

        async def check() -> str | None:
            return None if is_connected() else f"{platform} adapter is not connected"

        return cls(f"adapter:{platform}", check, timeout_seconds=1.0)


@dataclass(frozen=True)
class CheckResult:
    name: str
    problem: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class HealthReport:
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "checks": {
                r.name: {"ok": r.ok, "problem": r.problem, "seconds": round(r.seconds, 4)} for r in self.results
            },
        }


async def run_checks(checks: Sequence[HealthCheck]) -> HealthReport:
    """Run every check at once, each within its own timeout."""
    return HealthReport(tuple(await asyncio.gather(*(_run_one(c) for c in checks))))


async def _run_one(check: HealthCheck) -> CheckResult:
    started = time.perf_counter()
    try:
        problem = await asyncio.wait_for(check.check(), check.timeout_seconds)
    except TimeoutError:
        problem = f"no answer within {check.timeout_seconds:g} s"
    except Exception as exc:
        problem = f"check failed: {type(exc).__name__}: {exc}"[:300]
    return CheckResult(check.name, problem, time.perf_counter() - started)
