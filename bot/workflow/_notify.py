"""Which servers a job may notify: those with a mod channel, on a platform running in this process."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from bot.domain import EffectOutcome, EffectResult, ServerSettings
from bot.notices import Notice
from bot.ports import ModChannel
from bot.store.ports import ModerationStore

log = logging.getLogger(__name__)

# Whether a platform's adapter runs in this process (only its servers' notices can be posted).
Runs = Callable[[str], bool]
T = TypeVar("T")


async def each_server(
    job: str, servers: Iterable[ServerSettings], work: Callable[[ServerSettings], Awaitable[T | None]]
) -> list[T]:
    """Run a job's work for each server; one server's failure is logged and the job goes on.

    Whatever one server's settings or data do to its own run, every other server still gets
    its reminders, digest and alerts; the failed one is tried again at the job's next run.
    """
    done: list[T] = []
    for server in servers:
        try:
            result = await work(server)
        except Exception:
            log.exception("%s failed for %s server %r; the other servers go on", job, server.platform, server.server_id)
            continue
        if result is not None:
            done.append(result)
    return done


async def servers_to_notify(store: ModerationStore, runs: Runs) -> list[ServerSettings]:
    """Servers with a mod channel whose platform runs here: a notice nobody can post is never marked sent."""
    return [s for s in await store.settings.every() if s.mod_channel_id and runs(s.platform)]


async def post(channel: ModChannel, server: ServerSettings, notice: Notice) -> EffectResult:
    """Post a notice; a failing channel is logged and reported, never allowed to break a job."""
    try:
        return await channel.post(server, notice)
    except Exception as exc:
        log.warning("posting %s to server %r failed: %s", notice.kind, server.server_id, type(exc).__name__)
        return EffectResult(outcome=EffectOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:300])
