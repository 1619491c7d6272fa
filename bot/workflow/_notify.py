"""Posting notices to mod channels: which servers have one, and never letting a post break a job."""

from __future__ import annotations

import logging

from bot.domain import EffectOutcome, EffectResult, ServerSettings
from bot.notices import Notice
from bot.store import SqliteStore
from bot.workflow.ports import ModChannel

log = logging.getLogger(__name__)


async def configured_servers(store: SqliteStore) -> list[ServerSettings]:
    rows = await store.fetchall("SELECT settings FROM server_settings ORDER BY server_id")
    return [ServerSettings.model_validate_json(r[0]) for r in rows]


async def servers_with_mod_channel(store: SqliteStore) -> list[ServerSettings]:
    return [s for s in await configured_servers(store) if s.mod_channel_id]


async def post(channel: ModChannel, server: ServerSettings, notice: Notice) -> EffectResult:
    try:
        return await channel.post(server, notice)
    except Exception as exc:
        log.warning("posting %s to server %s failed: %s", notice.kind, server.server_id, type(exc).__name__)
        return EffectResult(outcome=EffectOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:300])
