"""The daily digest per server: flags by policy and rule, human decisions, overturn rate, model latency."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import datetime, timedelta

from bot.domain import ServerSettings
from bot.evaluation.shadow import shadow_report
from bot.notices import Digest, PolicyCount
from bot.store import SqliteStore
from bot.workflow._notify import post, servers_with_mod_channel
from bot.workflow.ports import ModChannel

# A digest missed at its hour (the bot was down) is still sent this long after it.
CATCH_UP = timedelta(hours=6)
# Labels accumulate slowly: a day of them says little, a month says which rules misfire.
SHADOW_WINDOW = timedelta(days=30)


def digest_time(server: ServerSettings, now: datetime) -> datetime:
    """Today's digest hour for the server (UTC)."""
    return now.replace(hour=server.digest_hour_utc, minute=0, second=0, microsecond=0)


async def build_digest(store: SqliteStore, server_id: str, start: datetime, end: datetime) -> Digest:
    span = (server_id, start.isoformat(), end.isoformat())
    in_span = "c.server_id = ? AND c.created_at >= ? AND c.created_at < ?"
    row = await store.fetchone(f"SELECT COUNT(*), COALESCE(SUM(c.violation), 0) FROM cases c WHERE {in_span}", span)
    messages, flagged = (int(row[0]), int(row[1])) if row else (0, 0)
    by_policy: Counter[str] = Counter()
    by_rule: Counter[tuple[str, str]] = Counter()
    for policy, rule_ids in await store.fetchall(
        f"SELECT v.policy, v.rule_ids FROM verdicts v JOIN cases c ON c.id = v.case_id"
        f" WHERE {in_span} AND v.appeal_id IS NULL AND v.violation = 1",
        span,
    ):
        by_policy[policy] += 1
        for rule in json.loads(rule_ids):
            by_rule[(policy, rule)] += 1
    decisions = Counter(
        {
            r[0]: int(r[1])
            for r in await store.fetchall(
                "SELECT action, COUNT(*) FROM human_decisions WHERE server_id = ? AND at >= ? AND at < ?"
                " GROUP BY action",
                span,
            )
        }
    )
    filed = await store.fetchone(
        "SELECT COUNT(*) FROM appeals a JOIN cases c ON c.id = a.case_id"
        " WHERE c.server_id = ? AND a.created_at >= ? AND a.created_at < ?",
        span,
    )
    latencies = [
        float(r[0])
        for r in await store.fetchall(
            "SELECT v.latency_ms FROM verdicts v JOIN cases c ON c.id = v.case_id"
            " WHERE c.server_id = ? AND v.created_at >= ? AND v.created_at < ? AND v.reused = 0"
            " AND v.latency_ms > 0",
            span,
        )
    ]
    decided = decisions["uphold"] + decisions["overturn"]
    counts = [PolicyCount(policy=p, rule_id=None, flags=n) for p, n in sorted(by_policy.items())]
    counts += [PolicyCount(policy=p, rule_id=r, flags=n) for (p, r), n in sorted(by_rule.items())]
    shadow = await shadow_report(store, server_id, since=end - SHADOW_WINDOW)
    return Digest(
        server_id=server_id,
        day=end.date().isoformat(),
        period_start=start,
        period_end=end,
        messages=messages,
        flagged=flagged,
        confirmed=decisions["confirm"],
        dismissed=decisions["dismiss"],
        appeals_filed=int(filed[0]) if filed else 0,
        appeals_decided=decided,
        overturned=decisions["overturn"],
        overturn_rate=round(decisions["overturn"] / decided, 3) if decided else None,
        median_latency_ms=round(statistics.median(latencies), 1) if latencies else None,
        by_policy=tuple(counts),
        shadow_evaluation=tuple(shadow.lines()),
    )


async def send_due_digests(store: SqliteStore, channel: ModChannel, now: datetime) -> list[Digest]:
    """Each server's digest for the 24 hours up to its digest hour, once a day."""
    sent: list[Digest] = []
    for server in await servers_with_mod_channel(store):
        if not server.digest_enabled:
            continue
        due = digest_time(server, now)
        if not due <= now < due + CATCH_UP:
            continue
        day = due.date().isoformat()
        async with store.transaction() as conn:
            # Claimed before posting: a second process or a re-run cannot send it twice.
            cur = await conn.execute(
                "INSERT INTO digests_sent (server_id, day, outcome, sent_at) VALUES (?, ?, 'claimed', ?)"
                " ON CONFLICT DO NOTHING",
                (server.server_id, day, now.isoformat()),
            )
            claimed = cur.rowcount == 1
            await cur.close()
        if not claimed:
            continue
        digest = await build_digest(store, server.server_id, due - timedelta(days=1), due)
        result = await post(channel, server, digest)
        async with store.transaction() as conn:
            await conn.execute(
                "UPDATE digests_sent SET outcome = ? WHERE server_id = ? AND day = ?",
                (result.outcome.value, server.server_id, day),
            )
        sent.append(digest)
    return sent
