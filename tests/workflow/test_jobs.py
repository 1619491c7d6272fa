"""The scheduled jobs, run on a controllable clock: retention, appeal reminders, digest, model health."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED

from bot.domain import CaseStatus, ServerSettings
from bot.store.sqlite import SqliteStore
from bot.workflow import (
    Appeals,
    JobIntervals,
    ModelOutage,
    ModelRecovered,
    OllamaProbe,
    Reviews,
    WorkflowJobs,
    start_jobs,
)
from tests.fakes.ollama_fake import FakeOllama
from tests.workflow.conftest import AUTHOR_ACTOR, MOD, SERVER, configure, human_labels, seed_case, verdict
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeProbe, FakeSink


class _Opinion:
    async def classify(self, request: object) -> object:
        return verdict(False, latency_ms=5000)


def appeals_for(store: SqliteStore, sink: FakeSink, channel: FakeModChannel, clock: FakeClock) -> Appeals:
    return Appeals(store, _Opinion(), {"console": sink}, channel, clock)  # type: ignore[arg-type]


# ---------------------------------------------------------------- retention


async def test_retention_purges_old_text_and_keeps_verdicts_and_labels(
    wstore: SqliteStore, clock: FakeClock, sink: FakeSink
) -> None:
    await configure(wstore)  # g1: the default 30 days
    await wstore.settings.put(ServerSettings(platform="console", server_id="g2", retention_days=7), wstore.now())
    old_g1 = await seed_case(wstore)
    await Reviews(wstore, {"console": sink}, clock).confirm(old_g1.id, MOD)
    old_g2 = await seed_case(wstore, server="g2")
    unconfigured = await seed_case(wstore, server="g3")
    clock.advance(days=8)
    fresh = await seed_case(wstore)
    jobs = WorkflowJobs(wstore, FakeModChannel(), clock=clock)

    assert await jobs.retention() == {("console", "g2"): 1}
    clock.advance(days=23)  # 31 days after the first cases
    assert await jobs.retention() == {("console", SERVER): 1, ("console", "g3"): 1}
    assert await jobs.retention() == {}

    texts = {r[0]: (r[1], r[2]) for r in await wstore.fetchall("SELECT id, text, text_purged_at FROM cases")}
    assert texts[old_g2.id] == (None, (clock.now - timedelta(days=23)).isoformat())
    assert texts[old_g1.id][0] is None and texts[unconfigured.id][0] is None
    assert texts[fresh.id] == ("you are an idiot", None)
    kept = await wstore.cases.get(old_g1.id)
    assert kept is not None
    assert kept.message.text == ""
    # The rationale may quote the text: it goes with it; the rule ids and the decision stay.
    assert kept.verdicts[0].rationale == "" and kept.verdicts[0].rule_ids == ("HB1.a",)
    assert kept.status is CaseStatus.CONFIRMED
    assert await human_labels(wstore, old_g1.id) == [("confirm", 1, "mod-1")]


# ---------------------------------------------------------------- appeal reminders


async def test_a_waiting_appeal_is_reminded_once_per_limit(
    wstore: SqliteStore, clock: FakeClock, sink: FakeSink, channel: FakeModChannel
) -> None:
    await configure(wstore)
    appeals = appeals_for(wstore, sink, channel, clock)
    waiting = await seed_case(wstore)
    await appeals.file(waiting.id, AUTHOR_ACTOR, "please look again")
    decided = await seed_case(wstore)
    await appeals.file(decided.id, AUTHOR_ACTOR, "and this one")
    await appeals.uphold(decided.id, MOD)
    channel.posted.clear()
    jobs = WorkflowJobs(wstore, channel, clock=clock)

    clock.advance(hours=23, minutes=59)
    assert await jobs.reminders() == []
    clock.advance(minutes=2)
    (reminder,) = await jobs.reminders()
    assert reminder.limit_hours == 24
    assert [(a.case_id, a.waiting_hours) for a in reminder.appeals] == [(waiting.id, 24.0)]
    assert channel.posted == [(SERVER, reminder)]
    clock.advance(hours=1)
    assert await jobs.reminders() == []
    clock.advance(hours=23)
    assert len(await jobs.reminders()) == 1
    assert len(channel.posted) == 2
    await appeals.overturn(waiting.id, MOD)
    clock.advance(days=3)
    assert await jobs.reminders() == []


async def test_a_broken_mod_channel_does_not_make_a_reminder_storm(
    wstore: SqliteStore, clock: FakeClock, sink: FakeSink
) -> None:
    await configure(wstore, appeal_reminder_hours=2)
    broken = FakeModChannel(broken=True)
    case = await seed_case(wstore)
    await appeals_for(wstore, sink, broken, clock).file(case.id, AUTHOR_ACTOR, "please")
    jobs = WorkflowJobs(wstore, broken, clock=clock)
    clock.advance(hours=2)
    assert len(await jobs.reminders()) == 1
    for _ in range(7):  # every 15 minutes, up to just before the limit comes round again
        clock.advance(minutes=15)
        assert await jobs.reminders() == []
    assert broken.kinds() == ["appeal_filed", "appeal_reminder"]


async def test_no_mod_channel_no_reminder(wstore: SqliteStore, clock: FakeClock, sink: FakeSink) -> None:
    await configure(wstore, mod_channel_id=None)
    channel = FakeModChannel()
    case = await seed_case(wstore)
    await appeals_for(wstore, sink, channel, clock).file(case.id, AUTHOR_ACTOR, "please")
    clock.advance(days=2)
    assert await WorkflowJobs(wstore, channel, clock=clock).reminders() == []


# ---------------------------------------------------------------- digest


async def test_the_daily_digest(wstore: SqliteStore, clock: FakeClock, sink: FakeSink, channel: FakeModChannel) -> None:
    await configure(wstore)
    clock.set(datetime(2025, 3, 3, 8, 0, tzinfo=UTC))
    await seed_case(wstore, text="before the period")  # counted in the previous day's digest
    clock.set(datetime(2025, 3, 3, 12, 0, tzinfo=UTC))
    reviews = Reviews(wstore, {"console": sink}, clock)
    appeals = appeals_for(wstore, sink, channel, clock)
    a = await seed_case(wstore, verdicts=[verdict(rules=("HB1.a", "HB1.b"), latency_ms=100)])
    b = await seed_case(wstore, verdicts=[verdict(rules=("HB1.a",), latency_ms=300)])
    c = await seed_case(wstore, verdicts=[verdict(rules=("HB2.a",), latency_ms=900)])
    d = await seed_case(wstore, verdicts=[verdict(rules=("HB1.b",), latency_ms=700)])
    await seed_case(wstore, status=CaseStatus.CLEAN, verdicts=[verdict(False, latency_ms=200)])
    reused = verdict(False, latency_ms=0).model_copy(update={"reused": True})
    await seed_case(wstore, status=CaseStatus.CLEAN, verdicts=[reused])
    await reviews.confirm(a.id, MOD)
    await reviews.dismiss(b.id, MOD)
    await appeals.file(c.id, AUTHOR_ACTOR, "no")
    await appeals.file(d.id, AUTHOR_ACTOR, "no")
    for appealed in (c, d):  # the queued second opinions, as the bot's workers run them
        await appeals.complete_second_opinion(appealed.id)
    await appeals.uphold(c.id, MOD)
    await appeals.overturn(d.id, MOD)
    channel.posted.clear()
    jobs = WorkflowJobs(wstore, channel, clock=clock)

    clock.set(datetime(2025, 3, 4, 8, 59, tzinfo=UTC))
    assert await jobs.digest() == []
    clock.set(datetime(2025, 3, 4, 9, 5, tzinfo=UTC))
    (digest,) = await jobs.digest()
    assert channel.posted == [(SERVER, digest)]
    assert (digest.day, digest.period_start, digest.period_end) == (
        "2025-03-04",
        datetime(2025, 3, 3, 9, tzinfo=UTC),
        datetime(2025, 3, 4, 9, tzinfo=UTC),
    )
    assert (digest.messages, digest.flagged, digest.confirmed, digest.dismissed) == (6, 4, 1, 1)
    assert (digest.appeals_filed, digest.appeals_decided, digest.overturned, digest.overturn_rate) == (2, 2, 1, 0.5)
    # Model calls only: 100, 200, 300, 700, 900 and the two second opinions at 5000 ms.
    assert digest.median_latency_ms == 700.0
    counts = {(p.policy, p.rule_id): p.flags for p in digest.by_policy}
    assert counts == {
        ("harassment", None): 4,
        ("harassment", "HB1.a"): 2,
        ("harassment", "HB1.b"): 2,
        ("harassment", "HB2.a"): 1,
    }
    # The shadow evaluation over the last 30 days: a confirmed and an upheld flag agree with
    # the model; a dismissed (HB1.a) and an overturned (HB1.b) one are false positives.
    shadow = "\n".join(digest.shadow_evaluation)
    assert digest.shadow_evaluation[0].startswith(f"Shadow evaluation, server {SERVER} since 2025-02-02")
    assert "4 cases with a moderator's decision: the model agreed on 2 (50.0%); 2 false flags" in shadow
    assert "appeals: 1 upheld, 1 overturned" in shadow
    assert "rules causing most false positives:" in shadow and "HB1.a (harassment): 1 of 2 flags reversed" in shadow
    clock.set(datetime(2025, 3, 4, 9, 15, tzinfo=UTC))
    assert await jobs.digest() == []  # once a day
    clock.set(datetime(2025, 3, 5, 9, 0, tzinfo=UTC))
    (quiet,) = await jobs.digest()
    assert (quiet.messages, quiet.flagged, quiet.overturn_rate, quiet.median_latency_ms) == (0, 0, None, None)


async def test_a_digest_survives_a_restart_but_is_not_sent_twice(
    tmp_path: Path, clock: FakeClock, channel: FakeModChannel
) -> None:
    clock.set(datetime(2025, 3, 4, 9, 1, tzinfo=UTC))
    first = await SqliteStore.open(tmp_path / "db", now=clock)
    await configure(first)
    assert len(await WorkflowJobs(first, channel, clock=clock).digest()) == 1
    await first.close()
    second = await SqliteStore.open(tmp_path / "db", now=clock)
    try:
        clock.advance(minutes=10)
        assert await WorkflowJobs(second, channel, clock=clock).digest() == []
    finally:
        await second.close()


@pytest.mark.parametrize(
    ("hour", "changes", "sent"),
    [
        (15, {}, 0),
        (14, {}, 1),
        (10, {"digest_enabled": False}, 0),
        (10, {"mod_channel_id": None}, 0),
        (6, {"digest_hour_utc": 6}, 1),
    ],
)
async def test_when_a_digest_is_sent(
    wstore: SqliteStore, clock: FakeClock, channel: FakeModChannel, hour: int, changes: dict[str, object], sent: int
) -> None:
    await configure(wstore, **changes)
    clock.set(datetime(2025, 3, 4, hour, 30, tzinfo=UTC))
    # Up to six hours late (the bot was down at 09:00) it is still sent; later it is skipped.
    assert len(await WorkflowJobs(wstore, channel, clock=clock).digest()) == sent


# ---------------------------------------------------------------- model health


async def test_one_alert_after_a_sustained_outage_and_one_all_clear(
    wstore: SqliteStore, clock: FakeClock, channel: FakeModChannel, probe: FakeProbe
) -> None:
    await configure(wstore)  # alert after 10 minutes, all-clear after 5 minutes of answers
    jobs = WorkflowJobs(wstore, channel, probe, clock)
    start = clock.now

    async def minute(problem: str | None, minutes: int = 1) -> None:
        probe.problem = problem
        for _ in range(minutes):
            await jobs.health()
            clock.advance(minutes=1)

    await minute("model server unreachable", 10)  # 12:00 .. 12:09
    assert channel.posted == []
    await minute("model server unreachable", 30)  # 12:10 onwards: one alert
    assert channel.posted == [(SERVER, ModelOutage(since=start, problem="model server unreachable"))]
    await minute(None, 2)  # answers again, briefly ...
    await minute("model server unreachable", 3)  # ... and fails again: no new alert
    await minute(None, 10)
    assert [n.kind for _, n in channel.posted] == ["model_outage", "model_recovered"]
    recovered = channel.posted[1][1]
    assert isinstance(recovered, ModelRecovered)
    assert recovered.outage_started == start
    assert recovered.recovered_at == start + timedelta(minutes=45)
    state = (await jobs.health()).state  # type: ignore[union-attr]
    assert state.failing_since is None
    assert probe.checks == 56


async def test_a_short_outage_says_nothing(wstore: SqliteStore, clock: FakeClock, channel: FakeModChannel) -> None:
    await configure(wstore)
    probe = FakeProbe(problem="down")
    jobs = WorkflowJobs(wstore, channel, probe, clock)
    for _ in range(9):
        await jobs.health()
        clock.advance(minutes=1)
    probe.problem = None
    for _ in range(20):
        await jobs.health()
        clock.advance(minutes=1)
    assert channel.posted == []


async def test_each_server_is_alerted_after_its_own_limit_and_once(
    wstore: SqliteStore, clock: FakeClock, channel: FakeModChannel
) -> None:
    await configure(wstore)
    await wstore.settings.put(
        ServerSettings(platform="console", server_id="g2", mod_channel_id="c2", health_alert_after_minutes=30),
        wstore.now(),
    )
    await wstore.settings.put(ServerSettings(platform="console", server_id="g3"), wstore.now())  # no mod channel
    probe = FakeProbe(problem="down")
    jobs = WorkflowJobs(wstore, channel, probe, clock)
    seen = []
    for _ in range(40):
        report = await jobs.health()
        assert report is not None
        seen += [(clock.now - datetime(2025, 3, 3, 12, tzinfo=UTC), s) for s, _ in report.posted]
        clock.advance(minutes=1)
    assert seen == [(timedelta(minutes=10), SERVER), (timedelta(minutes=30), "g2")]


async def test_the_alert_state_survives_a_restart(tmp_path: Path, clock: FakeClock, channel: FakeModChannel) -> None:
    probe = FakeProbe(problem="down")
    first = await SqliteStore.open(tmp_path / "db", now=clock)
    await configure(first)
    for _ in range(12):
        await WorkflowJobs(first, channel, probe, clock).health()
        clock.advance(minutes=1)
    await first.close()
    second = await SqliteStore.open(tmp_path / "db", now=clock)
    try:
        for _ in range(12):
            await WorkflowJobs(second, channel, probe, clock).health()
            clock.advance(minutes=1)
        probe.problem = None
        for _ in range(6):
            await WorkflowJobs(second, channel, probe, clock).health()
            clock.advance(minutes=1)
    finally:
        await second.close()
    assert [n.kind for _, n in channel.posted] == ["model_outage", "model_recovered"]


async def test_a_probe_that_raises_counts_as_a_failure(
    wstore: SqliteStore, clock: FakeClock, channel: FakeModChannel
) -> None:
    await configure(wstore, health_alert_after_minutes=1)

    class Exploding:
        async def check(self) -> str | None:
            raise OSError("socket trouble")

    jobs = WorkflowJobs(wstore, channel, Exploding(), clock)
    await jobs.health()
    clock.advance(minutes=1)
    report = await jobs.health()
    assert report is not None
    ((_, notice),) = report.posted
    assert isinstance(notice, ModelOutage) and "OSError: socket trouble" in notice.problem


async def test_the_ollama_probe(fake_ollama: FakeOllama) -> None:
    healthy = OllamaProbe(fake_ollama.host, "gpt-oss-safeguard:20b")
    missing = OllamaProbe(fake_ollama.host, "gpt-oss-safeguard:120b")
    try:
        assert await healthy.check() is None
        assert "run `ollama pull gpt-oss-safeguard:120b`" in (await missing.check() or "")
        await fake_ollama.stop()
        assert "model server unreachable" in (await healthy.check() or "")
    finally:
        await healthy.aclose()
        await missing.aclose()


# ---------------------------------------------------------------- the scheduler


async def test_the_scheduler_runs_the_jobs_in_the_event_loop(wstore: SqliteStore, channel: FakeModChannel) -> None:
    ran = asyncio.Event()

    class SignallingProbe:
        async def check(self) -> str | None:
            ran.set()
            return None

    scheduler = start_jobs(WorkflowJobs(wstore, channel, SignallingProbe()), JobIntervals())
    try:
        jobs = {j.id: j for j in scheduler.get_jobs()}
        assert set(jobs) == {
            "modbot-retention",
            "modbot-reminders",
            "modbot-digest",
            "modbot-health",
            "modbot-effects",
        }
        assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
        assert jobs["modbot-health"].trigger.interval == timedelta(minutes=1)
        scheduler.modify_job("modbot-health", next_run_time=datetime.now(UTC))
        await asyncio.wait_for(ran.wait(), timeout=5)
    finally:
        scheduler.shutdown(wait=False)


async def test_a_failing_job_does_not_stop_the_schedule(wstore: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    finished = [asyncio.Event(), asyncio.Event()]
    runs = 0

    class FailingJobs(WorkflowJobs):
        async def health(self) -> None:  # type: ignore[override]
            raise RuntimeError("boom")

    def on_executed(event: object) -> None:
        nonlocal runs
        finished[min(runs, 1)].set()
        runs += 1

    scheduler = start_jobs(FailingJobs(wstore, FakeModChannel(), FakeProbe()))
    scheduler.add_listener(on_executed, EVENT_JOB_EXECUTED)
    try:
        scheduler.modify_job("modbot-health", next_run_time=datetime.now(UTC))
        await asyncio.wait_for(finished[0].wait(), timeout=5)
        scheduler.modify_job("modbot-health", next_run_time=datetime.now(UTC))
        await asyncio.wait_for(finished[1].wait(), timeout=5)
    finally:
        scheduler.shutdown(wait=False)
    assert caplog.text.count("scheduled job health failed") == 2
