"""Retention: message text older than the server's limit is removed, with every copy of it.

The copies are the model's rationale, reasoning and raw output (first pass and second
opinions), the appeal's statement and the effects' reasons; what stays is what the server
decided and why in rule ids: verdicts (policy, rule ids, confidence), statuses, effects,
human decisions and their labels.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.domain import ServerSettings
from bot.store.ports import ModerationStore

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = ServerSettings.model_fields["retention_days"].default


async def purge_message_text(store: ModerationStore, now: datetime) -> dict[tuple[str, str], int]:
    """Purge every case past its server's retention. Returns purged counts by (platform, server).

    Every server is purged, whichever platforms run in this process: retention is a promise
    about the data, not about a platform. A server whose purge fails is logged and tried
    again at the next run; the other servers are purged all the same.
    """
    retention = {(s.platform, s.server_id): s.retention_days for s in await store.settings.every()}
    purged: dict[tuple[str, str], int] = {}
    for platform, server_id in await store.cases.servers_with_text():
        try:
            days = retention.get((platform, server_id), DEFAULT_RETENTION_DAYS)
            count = await store.cases.purge_text(platform, server_id, now - timedelta(days=days), now)
        except Exception:
            log.exception("retention of %s server %r failed; the other servers were purged", platform, server_id)
            continue
        if count:
            purged[(platform, server_id)] = count
    return purged
