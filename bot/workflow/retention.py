"""Retention: message text older than the server's limit is deleted; verdicts and labels stay."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain import ServerSettings
from bot.store import SqliteStore

DEFAULT_RETENTION_DAYS = ServerSettings.model_fields["retention_days"].default


async def purge_message_text(store: SqliteStore, now: datetime) -> dict[str, int]:
    """Clear the text of every case past its server's retention. Returns purged counts by server."""
    rows = await store.fetchall("SELECT server_id, settings FROM server_settings")
    retention = {r[0]: ServerSettings.model_validate_json(r[1]).retention_days for r in rows}
    servers = await store.fetchall("SELECT DISTINCT server_id FROM cases WHERE text IS NOT NULL")
    purged: dict[str, int] = {}
    stamp = now.isoformat()
    async with store.transaction() as conn:
        for (server_id,) in servers:
            days = retention.get(server_id, DEFAULT_RETENTION_DAYS)
            cutoff = (now - timedelta(days=days)).isoformat()
            cur = await conn.execute(
                "UPDATE cases SET text = NULL, text_purged_at = ? WHERE server_id = ? AND text IS NOT NULL"
                " AND created_at < ?",
                (stamp, server_id, cutoff),
            )
            if cur.rowcount:
                purged[server_id] = cur.rowcount
            await cur.close()
    return purged
