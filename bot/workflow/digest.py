"""The daily digest per server: flags by policy and rule, human decisions, overturn rate, model latency."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta

from bot.domain import ServerSettings
from bot.evaluation.shadow import shadow_report
from bot.notices import Digest, PolicyCount
from bot.store.ports import ModerationStore
from bot.workflow._notify import Runs, each_server, post, servers_to_notify
from bot.workflow.ports import ModChannel

# A digest missed at its hour (the bot was down) is still sent this long after it.
CATCH_UP = timedelta(hours=6)
# Labels accumulate slowly: a day of them says little, a month says which rules misfire.
SHADOW_WINDOW = timedelta(days=30)


def digest_time(server: ServerSettings, now: datetime) -> datetime:
    """Today's digest hour for the server (UTC)."""
    return now.replace(hour=server.digest_hour_utc, minute=0, second=0, microsecond=0)


async def build_digest(store: ModerationStore, platform: str, server_id: str, start: datetime, end: datetime) -> Digest:
    counts = await store.statistics.digest_counts(platform, server_id, start, end)
    by_policy: Counter[str] = Counter()
    by_rule: Counter[tuple[str, str]] = Counter()
    for policy, rule_ids in counts.violations:
        by_policy[policy] += 1
        for rule in rule_ids:
            by_rule[(policy, rule)] += 1
    decisions = Counter(counts.decisions)
    decided = decisions["uphold"] + decisions["overturn"]
    policy_counts = [PolicyCount(policy=p, rule_id=None, flags=n) for p, n in sorted(by_policy.items())]
    policy_counts += [PolicyCount(policy=p, rule_id=r, flags=n) for (p, r), n in sorted(by_rule.items())]
    shadow = await shadow_report(store, platform, server_id, since=end - SHADOW_WINDOW)
    latencies = counts.latencies_ms
    return Digest(
        server_id=server_id,
        day=end.date().isoformat(),
        period_start=start,
        period_end=end,
        messages=counts.messages,
        flagged=counts.flagged,
        confirmed=decisions["confirm"],
        dismissed=decisions["dismiss"],
        appeals_filed=counts.appeals_filed,
        appeals_decided=decided,
        overturned=decisions["overturn"],
        overturn_rate=round(decisions["overturn"] / decided, 3) if decided else None,
        median_latency_ms=round(statistics.median(latencies), 1) if latencies else None,
        by_policy=tuple(policy_counts),
        shadow_evaluation=tuple(shadow.lines()),
    )


async def send_due_digests(store: ModerationStore, channel: ModChannel, now: datetime, runs: Runs) -> list[Digest]:
    """Each server's digest for the 24 hours up to its digest hour, once a day."""

    async def send(server: ServerSettings) -> Digest | None:
        if not server.digest_enabled:
            return None
        due = digest_time(server, now)
        if not due <= now < due + CATCH_UP:
            return None
        day = due.date().isoformat()
        # Claimed before posting: a second process or a re-run cannot send it twice.
        if not await store.jobs.claim_digest(server.platform, server.server_id, day, now):
            return None
        digest = await build_digest(store, server.platform, server.server_id, due - timedelta(days=1), due)
        result = await post(channel, server, digest)
        await store.jobs.set_digest_outcome(server.platform, server.server_id, day, result.outcome.value)
        return digest

    return await each_server("the digest", await servers_to_notify(store, runs), send)
