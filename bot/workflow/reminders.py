"""Appeal reminders: an appeal waiting past the server's limit is brought up again, once per limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.notices import AppealReminder, WaitingAppeal
from bot.store import SqliteStore
from bot.workflow._notify import post, servers_with_mod_channel
from bot.workflow.ports import ModChannel


async def remind_waiting_appeals(store: SqliteStore, channel: ModChannel, now: datetime) -> list[AppealReminder]:
    """One notice per server listing its overdue appeals; each appeal at most once per limit period."""
    sent: list[AppealReminder] = []
    stamp = now.isoformat()
    for server in await servers_with_mod_channel(store):
        limit = timedelta(hours=server.appeal_reminder_hours)
        due_before = (now - limit).isoformat()
        rows = await store.fetchall(
            "SELECT a.id, a.case_id, a.created_at FROM appeals a JOIN cases c ON c.id = a.case_id"
            " LEFT JOIN appeal_reminders r ON r.appeal_id = a.id"
            " WHERE c.server_id = ? AND a.status = 'pending' AND a.created_at <= ?"
            " AND (r.last_sent_at IS NULL OR r.last_sent_at <= ?) ORDER BY a.created_at",
            (server.server_id, due_before, due_before),
        )
        if not rows:
            continue
        waiting = tuple(
            WaitingAppeal(
                case_id=r[1],
                appeal_id=r[0],
                filed_at=datetime.fromisoformat(r[2]),
                waiting_hours=round((now - datetime.fromisoformat(r[2])).total_seconds() / 3600, 1),
            )
            for r in rows
        )
        notice = AppealReminder(server_id=server.server_id, limit_hours=server.appeal_reminder_hours, appeals=waiting)
        # Recorded whether or not the post worked: a broken channel must not be retried every run.
        async with store.transaction() as conn:
            await conn.executemany(
                "INSERT INTO appeal_reminders (appeal_id, reminders, last_sent_at) VALUES (?, 1, ?)"
                " ON CONFLICT (appeal_id) DO UPDATE SET reminders = reminders + 1,"
                " last_sent_at = excluded.last_sent_at",
                [(w.appeal_id, stamp) for w in waiting],
            )
        await post(channel, server, notice)
        sent.append(notice)
    return sent
