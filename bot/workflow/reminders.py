"""Appeal reminders: an appeal waiting past the server's limit is brought up again, once per limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain import ServerSettings
from bot.notices import AppealReminder, WaitingAppeal
from bot.store.ports import ModerationStore
from bot.workflow._notify import Runs, each_server, post, servers_to_notify
from bot.workflow.ports import ModChannel


async def remind_waiting_appeals(
    store: ModerationStore, channel: ModChannel, now: datetime, runs: Runs
) -> list[AppealReminder]:
    """One notice per server listing its overdue appeals; each appeal at most once per limit period."""

    async def remind(server: ServerSettings) -> AppealReminder | None:
        due_before = now - timedelta(hours=server.appeal_reminder_hours)
        due = await store.jobs.appeals_to_remind(server.platform, server.server_id, due_before, due_before)
        if not due:
            return None
        waiting = tuple(
            WaitingAppeal(
                case_id=a.case_id,
                appeal_id=a.id,
                filed_at=a.created_at,
                waiting_hours=round((now - a.created_at).total_seconds() / 3600, 1),
            )
            for a in due
        )
        notice = AppealReminder(server_id=server.server_id, limit_hours=server.appeal_reminder_hours, appeals=waiting)
        # Recorded whether or not the post worked: a broken channel must not be retried every run.
        await store.jobs.mark_reminded([w.appeal_id for w in waiting], now)
        await post(channel, server, notice)
        return notice

    return await each_server("appeal reminders", await servers_to_notify(store, runs), remind)
