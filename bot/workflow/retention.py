"""Retention: message text older than the server's limit is deleted; verdicts and labels stay."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain import ServerSettings
from bot.store.ports import ModerationStore

DEFAULT_RETENTION_DAYS = ServerSettings.model_fields["retention_days"].default


async def purge_message_text(store: ModerationStore, now: datetime) -> dict[tuple[str, str], int]:
    """Clear the text of every case past its server's retention. Returns purged counts by (platform, server).

    Every server is purged, whichever platforms run in this process: retention is a promise
    about the data, not about a platform.
    """
    retention = {(s.platform, s.server_id): s.retention_days for s in await store.settings.every()}
    purged: dict[tuple[str, str], int] = {}
    for platform, server_id in await store.cases.servers_with_text():
        days = retention.get((platform, server_id), DEFAULT_RETENTION_DAYS)
        count = await store.cases.purge_text(platform, server_id, now - timedelta(days=days), now)
        if count:
            purged[(platform, server_id)] = count
    return purged
