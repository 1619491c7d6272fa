"""What the workflow needs from the outside beyond the core's ports: a clock and a model probe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from bot.ports import ModChannel

Clock = Callable[[], datetime]

__all__ = ["Clock", "ModChannel", "ModelProbe"]


class ModelProbe(Protocol):
    """Asks the model server whether it can answer: None if so, else what is wrong."""

    async def check(self) -> str | None: ...
