"""Which servers a job may notify: those with a mod channel, on a platform running in this process."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.domain import EffectOutcome, EffectResult, ServerSettings
from bot.notices import Notice
from bot.ports import ModChannel
from bot.store.ports import ModerationStore

log = logging.getLogger(__name__)

# Whether a platform's adapter runs in this process (only its servers' notices can be posted).
Runs = Callable[[str], bool]


async def servers_to_notify(store: ModerationStore, runs: Runs) -> list[ServerSettings]:
    """Servers with a mod channel whose platform runs here: a notice nobody can post is never marked sent."""
    return [s for s in await store.settings.every() if s.mod_channel_id and runs(s.platform)]


async def post(channel: ModChannel, server: ServerSettings, notice: Notice) -> EffectResult:
    """Post a notice; a failing channel is logged and reported, never allowed to break a job."""
    try:
        return await channel.post(server, notice)
    except Exception as exc:
        log.warning("posting %s to server %s failed: %s", notice.kind, server.server_id, type(exc).__name__)
        return EffectResult(outcome=EffectOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:300])
