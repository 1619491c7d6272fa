"""What the workflow needs from the outside beyond the core's ports: a clock, a model probe, a change hook."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.ports import ModChannel, ModelProbe

Clock = Callable[[], datetime]
# Called with (platform, server id) after a service changed a server's policies or settings,
# so that the pipeline forgets what it cached about that server at once.
ConfigChanged = Callable[[str, str], None]

__all__ = ["Clock", "ConfigChanged", "ModChannel", "ModelProbe"]
