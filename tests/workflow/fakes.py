"""In-memory fakes of the workflow's ports: an effect sink, a mod channel, a model probe, a clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.domain import Case, Effect, EffectContext, EffectKind, EffectOutcome, EffectResult, ServerSettings
from bot.workflow import Notice


class FakeClock:
    """A clock that moves only when a test says so."""

    def __init__(self, start: datetime = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when


@dataclass
class FakeSink:
    """Carries out nothing, records everything; a kind can be made unsupported or failing."""

    platform: str = "console"
    executed: list[tuple[Effect, Case]] = field(default_factory=list)
    unsupported: set[EffectKind] = field(default_factory=set)
    failing: set[EffectKind] = field(default_factory=set)

    supported_effects: frozenset[EffectKind] = frozenset(EffectKind)

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        self.executed.append((effect, context.case))
        if effect.kind in self.failing:
            raise RuntimeError(f"{effect.kind.value} failed")
        if effect.kind in self.unsupported:
            return EffectResult(outcome=EffectOutcome.UNSUPPORTED, detail="not on this platform")
        return EffectResult(outcome=EffectOutcome.DONE, detail="done by the fake")

    def kinds(self) -> list[EffectKind]:
        return [e.kind for e, _ in self.executed]


@dataclass
class FakeModChannel:
    posted: list[tuple[str, Notice]] = field(default_factory=list)
    broken: bool = False

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        self.posted.append((server.server_id, notice))
        if self.broken:
            raise ConnectionError("mod channel unreachable")
        return EffectResult(outcome=EffectOutcome.DONE)

    def kinds(self) -> list[str]:
        return [n.kind for _, n in self.posted]


@dataclass
class FakeProbe:
    problem: str | None = None
    checks: int = 0

    async def check(self) -> str | None:
        self.checks += 1
        return self.problem
