"""A platform for the launcher's tests: declared like Discord or Slack, its messages fed by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.app import ModbotApp
from bot.domain import EffectKind, Message
from bot.platforms import PlatformCapabilities
from bot.settings import ModbotSettings
from tests.helpers import RecordingSink

NAME = "fakechat"
TOKEN = "FAKECHAT_TOKEN"
# What the test hands the running platform to submit, and what it saw.
inbox: asyncio.Queue[Message] | None = None
connected: list[FakeChat] = []


def capabilities(environ: Mapping[str, str]) -> PlatformCapabilities:
    every = frozenset(EffectKind)
    return PlatformCapabilities(
        platform=NAME,
        effects=every - {EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT},
        configured=every - {EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT},
        limits={EffectKind.TIMEOUT: "fakechat has no timeouts"},
    )


def credentials_set(environ: Mapping[str, str]) -> bool:
    return bool(environ.get(TOKEN))


@dataclass
class FakeChat:
    adapter: RecordingSink = field(default_factory=lambda: RecordingSink(platform=NAME))
    submitted: list[bool] = field(default_factory=list)
    connected: bool = True  # what /healthz reads; a test switches it off

    async def serve(self, app: ModbotApp) -> None:
        assert inbox is not None
        while True:
            self.submitted.append(await app.pipeline.submit(await inbox.get()))


async def connect(settings: ModbotSettings, environ: Mapping[str, str]) -> FakeChat:
    chat = FakeChat()
    connected.append(chat)
    return chat
