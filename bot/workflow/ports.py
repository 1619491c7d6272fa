"""What the workflow needs from the outside beyond the core's ports: a mod channel and a model probe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from bot.domain import EffectResult, ServerSettings
from bot.workflow.notices import Notice

Clock = Callable[[], datetime]


class ModChannel(Protocol):
    """Posts a notice that belongs to no single case (reminders, digests, health) to a server's mod channel.

    Returns what happened; an adapter without a mod channel for the server says UNSUPPORTED.
    """

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult: ...


class ModelProbe(Protocol):
    """Asks the model server whether it can answer: None if so, else what is wrong."""

    async def check(self) -> str | None: ...
