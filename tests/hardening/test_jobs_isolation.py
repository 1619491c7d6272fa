"""Issue 7 §8: one server cannot break the jobs of all.

A settings row stored before the ranges existed is read repaired; and whatever else fails
for one server in a job is logged, while the job goes on with every other server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain import ServerSettings
from bot.store.sqlite import SqliteStore
from bot.workflow import Actor, Appeals, WorkflowJobs
from tests.workflow.conftest import AUTHOR, configure, seed_case, verdict
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeProbe, FakeSink

GOOD, BAD = "good", "bad"


class _Opinion:
    async def classify(self, request: object) -> object:
        return verdict(False)


async def two_servers(store: SqliteStore, clock: FakeClock, channel: FakeModChannel) -> None:
    """Servers GOOD and BAD, each with a mod channel, an old case and a waiting appeal."""
    for server in (GOOD, BAD):
        await store.settings.put(
            ServerSettings(platform="console", server_id=server, mod_channel_id=f"mods-{server}"), clock.now
        )
        case = await seed_case(store, server=server)
        appeals = Appeals(store, _Opinion(), {"console": FakeSink()}, channel, clock)  # type: ignore[arg-type]
        await appeals.file(case.id, Actor(id=AUTHOR, platform="console", server_id=server), "please look again")


async def store_raw_settings(store: SqliteStore, server: str, **values: Any) -> None:
    """A settings row as an older modbot stored it, before the ranges existed."""
    settings = json.loads(
        ServerSettings(platform="console", server_id=server, mod_channel_id=f"mods-{server}").model_dump_json()
    )
    settings.update(values)
    async with store.raw_transaction() as conn:
        await conn.execute(
            "UPDATE server_settings SET settings = ? WHERE platform = 'console' AND server_id = ?",
            (json.dumps(settings), server),
        )


async def test_settings_stored_out_of_range_before_the_ranges_break_no_job(
    wstore: SqliteStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    channel = FakeModChannel()
    await two_servers(wstore, clock, channel)
    # The values: accepted by an older modbot, they crashed retention and reminders for all.
    await store_raw_settings(wstore, BAD, retention_days=1000000, appeal_reminder_hours=100000000000)
    channel.posted.clear()
    clock.set(datetime(2025, 4, 12, 9, 5, tzinfo=UTC))  # 40 days on, at the digest hour
    jobs = WorkflowJobs(wstore, channel, FakeProbe(problem="down"), clock)

    with caplog.at_level(logging.WARNING, logger="bot.store.sqlite"):
        assert await jobs.retention() == {("console", GOOD): 1}
        reminded = await jobs.reminders()
        digests = await jobs.digest()

    # BAD is read as close to what its admin asked as the ranges allow: the longest retention
    # (3650 days: nothing purged yet) and the longest reminder limit (720 hours: due after 40 days).
    bad = await wstore.settings.get("console", BAD)
    assert bad is not None and (bad.retention_days, bad.appeal_reminder_hours) == (3650, 720)
    assert sorted((r.server_id, r.limit_hours) for r in reminded) == [(BAD, 720), (GOOD, 24)]
    assert sorted(d.server_id for d in digests) == [BAD, GOOD]
    repaired = [r.getMessage() for r in caplog.records if "read repaired" in r.getMessage()]
    assert len(repaired) == 1, repaired  # said once, not at every read
    assert "'bad'" in repaired[0] and "retention_days=1000000 is out of range 1-3650: read as 3650" in repaired[0]


Sabotage = Callable[..., Awaitable[Any]]


def failing_for(server: str, real: Sabotage, server_arg: int = 1) -> Sabotage:
    """`real`, except that it raises for one server (its data or settings broke something)."""

    async def call(*args: Any, **kwargs: Any) -> Any:
        if args[server_arg] == server:
            raise OverflowError("date value out of range")
        return await real(*args, **kwargs)

    return call


async def test_retention_goes_on_with_the_other_servers(
    wstore: SqliteStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await two_servers(wstore, clock, FakeModChannel())
    wstore.cases.purge_text = failing_for(BAD, wstore.cases.purge_text)  # type: ignore[method-assign]
    clock.advance(days=40)
    with caplog.at_level(logging.ERROR):
        assert await WorkflowJobs(wstore, FakeModChannel(), clock=clock).retention() == {("console", GOOD): 1}
    assert any("retention of console server 'bad' failed" in r.getMessage() for r in caplog.records)


async def test_reminders_go_on_with_the_other_servers(
    wstore: SqliteStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    channel = FakeModChannel()
    await two_servers(wstore, clock, channel)
    wstore.jobs.appeals_to_remind = failing_for(BAD, wstore.jobs.appeals_to_remind)  # type: ignore[method-assign]
    clock.advance(days=2)
    with caplog.at_level(logging.ERROR):
        reminded = await WorkflowJobs(wstore, channel, clock=clock).reminders()
    assert [r.server_id for r in reminded] == [GOOD]
    assert any("appeal reminders failed for console server 'bad'" in r.getMessage() for r in caplog.records)


async def test_the_digest_goes_on_with_the_other_servers(wstore: SqliteStore, clock: FakeClock) -> None:
    channel = FakeModChannel()
    await two_servers(wstore, clock, channel)
    wstore.jobs.claim_digest = failing_for(BAD, wstore.jobs.claim_digest)  # type: ignore[method-assign]
    clock.set(datetime(2025, 3, 4, 9, 5, tzinfo=UTC))
    assert [d.server_id for d in await WorkflowJobs(wstore, channel, clock=clock).digest()] == [GOOD]


async def test_outage_alerts_and_all_clears_go_on_with_the_other_servers(wstore: SqliteStore, clock: FakeClock) -> None:
    channel = FakeModChannel()
    await two_servers(wstore, clock, channel)
    channel.posted.clear()
    probe = FakeProbe(problem="down")
    jobs = WorkflowJobs(wstore, channel, probe, clock)
    real_mark, real_clear = wstore.jobs.mark_alerted, wstore.jobs.clear_alert
    wstore.jobs.mark_alerted = failing_for(BAD, real_mark)  # type: ignore[method-assign]
    await jobs.health()
    clock.advance(minutes=11)
    report = await jobs.health()
    assert report is not None and [server for server, _ in report.posted] == [GOOD]

    wstore.jobs.mark_alerted = real_mark  # type: ignore[method-assign]
    clock.advance(minutes=1)
    await jobs.health()  # BAD is alerted now, a minute late
    wstore.jobs.clear_alert = failing_for(BAD, real_clear)  # type: ignore[method-assign]
    probe.problem = None
    await jobs.health()
    clock.advance(minutes=6)
    report = await jobs.health()
    assert report is not None and [(s, n.kind) for s, n in report.posted] == [(GOOD, "model_recovered")]
    # BAD keeps its alert, so that its all-clear comes at a later run rather than never.
    assert await wstore.jobs.alerted_servers() == {("console", BAD)}
    wstore.jobs.clear_alert = real_clear  # type: ignore[method-assign]
    clock.advance(minutes=1)
    report = await jobs.health()
    assert report is not None and [(s, n.kind) for s, n in report.posted] == [(BAD, "model_recovered")]


async def test_waiting_effects_go_on_with_the_other_cases(wstore: SqliteStore, clock: FakeClock) -> None:
    from bot.domain import Effect, EffectKind, EffectOutcome
    from bot.platforms import PlatformRouter

    await configure(wstore)
    waiting = [
        await seed_case(wstore, effects=[(Effect(kind=EffectKind.DELETE), EffectOutcome.PENDING)]) for _ in range(3)
    ]
    for case in waiting:  # decided by another process: its queue item is done, the effect waits
        row = await wstore.fetchone("SELECT id FROM queue WHERE case_id = ?", (case.id,))
        assert row is not None
        await wstore.finish_queue_item(row[0])
    broken = waiting[1].id
    real_get = wstore.cases.get

    async def get(case_id: str) -> Any:
        if case_id == broken:
            raise ValueError("a row this version cannot read")
        return await real_get(case_id)

    wstore.cases.get = get  # type: ignore[method-assign]
    sink = FakeSink()
    jobs = WorkflowJobs(wstore, PlatformRouter({"console": sink}), clock=clock)
    assert await jobs.effects() == 2
    assert sorted(c.id for _, c in sink.executed) == sorted([waiting[0].id, waiting[2].id])
