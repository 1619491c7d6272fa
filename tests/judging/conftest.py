"""Judging through the real pipeline: a fake model that reads the prompt it is given, a sink that posts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio

from bot.classifier import ClassificationRequest, build_messages
from bot.domain import (
    Case,
    Confidence,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    ServerSettings,
    Verdict,
    VerdictStatus,
)
from bot.pipeline import ModerationPipeline
from bot.raids import FlagUpdates
from bot.store.sqlite import SqliteStore
from tests.helpers import add_policy

POLICY = """# Harassment (HB)

## INSTRUCTIONS
Decide whether CONTENT attacks a member.

## VIOLATES (1)
- HB1.a: Insulting a target.
- HB2.a: Threatening a target.

## SAFE (0)
- HB0.a: Banter.
"""


def content_of(request: ClassificationRequest) -> dict[str, Any]:
    """The "content" object of the prompt the model receives: exactly what it reads of the message."""
    user = build_messages(request)[1]["content"]
    return json.loads(user[user.index("\n\n{") + 2 :])["content"]  # type: ignore[no-any-return]


@dataclass
class ReadingModel:
    """The Classifier port, faked at the prompt: it judges only what the prompt's content shows it.

    A text of the content containing one of `bad` (as written, case-sensitive: no folding
    here) is a violation citing `rule_ids`; anything else is clean. `answer` overrides the
    verdict for a request (scripted answers); `gate` holds every call until set.
    """

    bad: tuple[str, ...] = ("idiot", "🔪")
    rule_ids: tuple[str, ...] = ("HB1.a",)
    calls: list[ClassificationRequest] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    answer: Callable[[ClassificationRequest, dict[str, Any]], Verdict | None] | None = None
    latency: float = 0.0

    async def classify(self, request: ClassificationRequest) -> Verdict:
        content = content_of(request)
        self.calls.append(request)
        self.seen.append(content)
        if self.gate is not None:
            await self.gate.wait()
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.answer is not None and (scripted := self.answer(request, content)) is not None:
            return scripted
        bad = any(word in content["text"] for word in self.bad)
        return Verdict(
            policy=request.policy.name,
            policy_version=request.policy.version,
            violation=bad,
            rule_ids=self.rule_ids if bad else (),
            policy_category=self.rule_ids[0] if bad and self.rule_ids else None,
            confidence=Confidence.HIGH,
            rationale="an insult" if bad else "fine",
            effort=request.effort,
        )


def needs_review(request: ClassificationRequest, why: str, raw: str = "") -> Verdict:
    return Verdict(
        policy=request.policy.name,
        policy_version=request.policy.version,
        status=VerdictStatus.NEEDS_REVIEW,
        rationale=why,
        raw_output=raw,
    )


@dataclass
class PostingSink:
    """The EffectSink port in memory, as a platform behaves: a flag post gets a reference to edit later."""

    platform: str = "console"
    supported_effects: frozenset[EffectKind] = frozenset(EffectKind)
    executed: list[tuple[Effect, EffectContext]] = field(default_factory=list)
    before: Callable[[Effect, EffectContext], Awaitable[None]] | None = None

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        if self.before is not None:
            await self.before(effect, context)
        self.executed.append((effect, context))
        reference = f"mod/{context.case.id}" if effect.kind is EffectKind.FLAG else None
        return EffectResult(outcome=EffectOutcome.DONE, detail="done", reference=reference)

    def of_kind(self, kind: EffectKind) -> list[tuple[Effect, EffectContext]]:
        return [(e, c) for e, c in self.executed if e.kind is kind]


@pytest_asyncio.fixture
async def model() -> ReadingModel:
    return ReadingModel()


@pytest_asyncio.fixture
async def sink() -> PostingSink:
    return PostingSink()


PipelineFactory = Callable[..., Awaitable[ModerationPipeline]]


@pytest_asyncio.fixture
async def make_pipeline(store: SqliteStore, model: ReadingModel, sink: PostingSink) -> AsyncIterator[PipelineFactory]:
    """A started pipeline over the real SQLite store; `settings` are the server's (console, s1)."""
    made: list[ModerationPipeline] = []

    async def make(
        settings: ServerSettings | None = None, *, workers: int = 4, flag_interval: float = 0.0
    ) -> ModerationPipeline:
        await add_policy(store, "s1", "harassment", POLICY)
        if settings is not None:
            await store.settings.put(settings, store.now())
        pipeline = ModerationPipeline(
            store, model, {"console": sink}, workers=workers, unavailable_backoff=(0.01, 0.02)
        )
        # Edits of a raid's flag as often as joins come (their spacing is tested on FlagUpdates alone).
        pipeline.judge.flag_updates = FlagUpdates(store, pipeline.sinks, interval_seconds=flag_interval)
        await pipeline.start()
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        await pipeline.stop()


async def settle(pipeline: ModerationPipeline) -> None:
    """Every queued message decided, its effects carried out, and every flag post brought up to date."""
    await pipeline.drain()
    await pipeline.judge.flag_updates.idle()  # type: ignore[union-attr]


async def all_cases(store: SqliteStore) -> list[Case]:
    return [c async for c in store.cases.every()]


def settings(**changes: Any) -> ServerSettings:
    return ServerSettings(platform="console", server_id="s1", **changes)
