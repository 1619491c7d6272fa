"""Helpers shared by the core's tests: message builders, in-memory port fakes, CLI runner."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.classifier import ClassificationRequest
from bot.domain import (
    Author,
    Case,
    Confidence,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    Message,
    Policy,
    Verdict,
)
from bot.store.ports import ModerationStore, PolicyContent

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_message(
    message_id: str = "m1",
    text: str = "hello",
    *,
    server: str = "s1",
    channel: str = "c1",
    author: str = "u1",
    roles: tuple[str, ...] = (),
    is_bot: bool = False,
    platform: str = "console",
    offset_s: int = 0,
    **extra: object,
) -> Message:
    return Message(
        platform=platform,
        server_id=server,
        channel_id=channel,
        message_id=message_id,
        author=Author(id=author, name=author, roles=roles, is_bot=is_bot),
        text=text,
        sent_at=T0 + timedelta(seconds=offset_s),
        **extra,  # type: ignore[arg-type]
    )


async def add_policy(
    store: ModerationStore,
    server: str = "s1",
    name: str = "harassment",
    text: str = "policy text",
    *,
    platform: str = "console",
    **content: object,
) -> Policy:
    """A policy version written straight through the store's port (tests of the pipeline need no service)."""
    return await store.policies.add_version(
        platform,
        server,
        PolicyContent(name=name, text=text, **content),
        "test",  # type: ignore[arg-type]
    )


@dataclass
class ScriptedClassifier:
    """The Classifier port, in memory: flags texts containing a bad word."""

    bad_word: str = "idiot"
    calls: list[ClassificationRequest] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def classify(self, request: ClassificationRequest) -> Verdict:
        self.calls.append(request)
        if self.gate is not None:
            await self.gate.wait()
        bad = self.bad_word in request.message.text.casefold()
        return Verdict(
            policy=request.policy.name,
            policy_version=request.policy.version,
            violation=bad,
            rule_ids=("HB1.a",) if bad else (),
            policy_category="HB1.a" if bad else None,
            confidence=Confidence.HIGH,
            rationale="insult (HB1.a)" if bad else "fine",
            effort=request.effort,
        )


@dataclass
class RecordingSink:
    """The EffectSink port, in memory: records every effect it is asked to carry out."""

    platform: str = "console"
    executed: list[tuple[str, Effect]] = field(default_factory=list)
    outcome: EffectOutcome = EffectOutcome.DONE
    before: Callable[[Effect, Case], None] | None = None

    supported_effects: frozenset[EffectKind] = frozenset(EffectKind)

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        case = context.case
        if self.before is not None:
            self.before(effect, case)
        self.executed.append((case.id, effect))
        return EffectResult(outcome=self.outcome, detail="recorded")  # type: ignore[arg-type]


async def run_modbot(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, timeout: float = 60
) -> tuple[int, str, str]:
    """Run the real `modbot` command in a subprocess, with this test's event loop still serving fakes."""
    full_env = {**os.environ, "MODBOT_LOG_LEVEL": "INFO", **(env or {})}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.console.cli",
        *args,
        cwd=REPO,
        env=full_env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
