"""Pieces the queue's pipeline tests share: a sink that gives flag posts a reference, a gated model."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.classifier import ClassificationRequest
from bot.domain import (
    Author,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    Message,
    ServerSettings,
    Verdict,
)
from bot.notices import Notice
from bot.observability.logs import current_ids
from tests.helpers import ScriptedClassifier
from tests.queue.conftest import T0


def chat(
    message_id: str,
    text: str,
    *,
    edited_after_s: float | None = None,
    author: str = "u1",
    server: str = "s1",
    channel: str = "c1",
    sent_after_s: float = 0.0,
) -> Message:
    """A message as a platform delivers it; with edited_after_s, the revision an edit made then."""
    return Message(
        platform="console",
        server_id=server,
        channel_id=channel,
        message_id=message_id,
        author=Author(id=author, name=author),
        text=text,
        sent_at=T0 + timedelta(seconds=sent_after_s),
        edited=edited_after_s is not None,
        edited_at=T0 + timedelta(seconds=edited_after_s) if edited_after_s is not None else None,
    )


@dataclass
class PostingSink:
    """The EffectSink port: a FLAG makes a post with a reference, as Discord's and Slack's do."""

    platform: str = "console"
    executed: list[tuple[str, Effect]] = field(default_factory=list)
    ids_seen: list[dict[str, object]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    posted: list[Notice] = field(default_factory=list)
    supported_effects: frozenset[EffectKind] = frozenset(EffectKind)

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        self.ids_seen.append(current_ids())
        if self.gate is not None:
            await self.gate.wait()
        self.executed.append((context.case.id, effect))
        reference = f"mods/{context.case.id}" if effect.kind is EffectKind.FLAG else None
        return EffectResult(outcome=EffectOutcome.DONE, detail="posted", reference=reference)

    def kinds(self, case_id: str) -> list[EffectKind]:
        return [e.kind for c, e in self.executed if c == case_id]

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        self.posted.append(notice)
        return EffectResult(outcome=EffectOutcome.DONE)


@dataclass
class GatedModel(ScriptedClassifier):
    """Flags 'idiot'; holds every call until the gate opens (a busy or slow model)."""

    ids_seen: list[dict[str, object]] = field(default_factory=list)
    started: int = 0

    async def classify(self, request: ClassificationRequest) -> Verdict:
        self.ids_seen.append(current_ids())
        self.started += 1
        return await super().classify(request)


class MutableClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def word(i: int) -> str:
    """A word of its own for each i: texts that differ only in digits are near-repeats to judging."""
    return "".join(chr(ord("a") + (i // 26**k) % 26) for k in range(4))
