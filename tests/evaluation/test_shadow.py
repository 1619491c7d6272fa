"""Shadow evaluation: moderators' decisions (human_decisions) against the model's first-pass verdicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain import Author, Case, CaseStatus, Confidence, DecisionAction, Message, Verdict, VerdictStatus
from bot.evaluation import shadow_report
from bot.store.sqlite import SqliteStore
from tests.evaluation._cli import run_cli

SERVER = "g1"
DAY0 = datetime(2025, 3, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return DAY0 + timedelta(days=n)


def verdict(policy: str, rules: tuple[str, ...] = (), *, status: VerdictStatus = VerdictStatus.DECIDED) -> Verdict:
    return Verdict(
        policy=policy,
        policy_version=1,
        status=status,
        violation=bool(rules),
        rule_ids=rules,
        policy_category=rules[0] if rules else None,
        confidence=Confidence.HIGH,
        model="gpt-oss-safeguard:20b",
    )


async def add_case(store: SqliteStore, case_id: str, verdicts: tuple[Verdict, ...], server: str = SERVER) -> None:
    message = Message(
        platform="discord",
        server_id=server,
        channel_id="c1",
        message_id=f"m-{case_id}",
        author=Author(id="u1", name="someone"),
        text=f"text of {case_id}",
    )
    queue_id = await store.enqueue(message)
    assert queue_id is not None
    flagged = any(v.violation for v in verdicts)
    status = CaseStatus.SKIPPED if not verdicts else (CaseStatus.OPEN if flagged else CaseStatus.CLEAN)
    case = Case(id=case_id, message=message, status=status, verdicts=verdicts)
    await store.record_decision(queue_id, case, [])


async def decide(store: SqliteStore, case_id: str, action: str, at: datetime) -> None:
    # Written through the store's port, as the moderation workflow writes them.
    await store.decisions.add(case_id, DecisionAction(action), "mod1", "", at)


HB, SP = "harassment", "spam-scams"


@pytest.fixture
async def traffic(store: SqliteStore) -> SqliteStore:
    await add_case(store, "c1", (verdict(HB, ("HB1.a",)), verdict(SP)))
    await decide(store, "c1", "confirm", day(1))
    await add_case(store, "c2", (verdict(HB, ("HB1.b",)), verdict(SP)))
    await decide(store, "c2", "dismiss", day(2))
    # An appeal's second opinion is not the first-pass verdict: it must not count.
    await store.appeals.add_second_opinion(1, "c2", [verdict(SP, ("SP1.a",))])
    await add_case(store, "c3", (verdict(HB, ("HB1.b", "HB1.a")), verdict(SP)))
    await decide(store, "c3", "confirm", day(2))
    await decide(store, "c3", "overturn", day(6))  # the latest decision is the label
    await add_case(store, "c4", (verdict(HB), verdict(SP, ("SP1.a",))))
    await decide(store, "c4", "uphold", day(7))  # inserted first, decided last
    await decide(store, "c4", "confirm", day(3))
    await add_case(store, "c5", (verdict(HB), verdict(SP)))
    await decide(store, "c5", "confirm", day(4))  # a violation nobody flagged
    await add_case(store, "c6", (verdict(HB), verdict(SP)))
    await decide(store, "c6", "dismiss", day(5))
    await add_case(store, "c7", (verdict(HB, status=VerdictStatus.NEEDS_REVIEW), verdict(SP)))
    await decide(store, "c7", "dismiss", day(5))
    await add_case(store, "c8", ())  # skipped: no verdict to compare
    await decide(store, "c8", "confirm", day(5))
    await add_case(store, "c9", (verdict(HB, ("HB1.b",)),), server="g2")  # another server
    await decide(store, "c9", "dismiss", day(5))
    await add_case(store, "c10", (verdict(HB, ("HB1.b",)),))  # no human decision yet
    return store


async def test_report_by_hand(traffic: SqliteStore) -> None:
    report = await shadow_report(traffic, "discord", SERVER)
    assert report.labelled_cases == 8
    assert report.compared_cases == 7
    assert report.unjudged_cases == 1
    assert report.undecided_verdicts == 1
    # Agree: c1 (flag, confirmed), c4 (flag, upheld), c6 and c7 (clean, dismissed).
    assert report.agreed_cases == 4
    assert report.agreement == pytest.approx(4 / 7)
    assert (report.false_flags, report.missed) == (2, 1)  # c2, c3; c5
    assert (report.appeals_upheld, report.appeals_overturned) == (1, 1)
    assert report.appeal_overturn_rate == pytest.approx(0.5)

    hb = report.policies[HB]
    assert (hb.confirmed, hb.reversed, hb.cleared) == (1, 2, 1)  # c1; c2, c3; c6 (c7 undecided)
    assert hb.agreement == pytest.approx(0.5)
    assert hb.overturn_rate == pytest.approx(2 / 3)
    sp = report.policies[SP]
    assert (sp.confirmed, sp.reversed, sp.cleared) == (1, 0, 4)  # c4; -; c2 c3 c6 c7 (the appeal opinion ignored)
    assert sp.agreement == 1.0
    assert sp.overturn_rate == 0.0

    worst = report.false_positive_rules
    assert [(r.policy, r.rule_id, r.tally.reversed, r.tally.flags) for r in worst] == [
        (HB, "HB1.b", 2, 2),
        (HB, "HB1.a", 1, 2),
    ]


async def test_lines_for_the_digest(traffic: SqliteStore) -> None:
    report = await shadow_report(traffic, "discord", SERVER)
    assert report.lines() == [
        "Shadow evaluation, server g1",
        "  7 cases with a moderator's decision: the model agreed on 4 (57.1%); 2 false flags, 1 missed",
        "  appeals: 1 upheld, 1 overturned (overturn rate 50.0%)",
        "  not compared: 1 unusable model answer, 1 case without a verdict",
        "  policy      agreement  flags  reversed  overturn rate",
        "  harassment      50.0%      3         2          66.7%",
        "  spam-scams     100.0%      1         0           0.0%",
        "  rules causing most false positives:",
        "    HB1.b (harassment): 2 of 2 flags reversed (100.0%)",
        "    HB1.a (harassment): 1 of 2 flags reversed (50.0%)",
    ]


async def test_since_counts_cases_by_their_latest_decision(traffic: SqliteStore) -> None:
    report = await shadow_report(traffic, "discord", SERVER, since=day(5))
    # c3 (overturned day 6), c4 (upheld day 7), c6, c7, c8 (day 5); c1 c2 c5 are older.
    assert report.labelled_cases == 5
    assert report.compared_cases == 4
    assert report.agreed_cases == 3
    assert report.policies[HB].reversed == 1
    assert report.lines()[0] == "Shadow evaluation, server g1 since 2025-03-06T00:00+00:00"
    with pytest.raises(ValueError, match="timezone"):
        await shadow_report(traffic, "discord", SERVER, since=datetime(2025, 3, 1))


async def test_a_server_without_decisions(store: SqliteStore) -> None:
    report = await shadow_report(store, "discord", "quiet")
    assert report.labelled_cases == 0
    assert report.agreement is None
    assert report.lines() == [
        "Shadow evaluation, server quiet",
        "  no human decisions yet: confirm, dismiss or decide appeals to get labels",
    ]


async def test_report_command(traffic: SqliteStore) -> None:
    db = traffic.path
    text = await run_cli("report", "--server", SERVER, "--platform", "discord", "--db", db)
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == (await shadow_report(traffic, "discord", SERVER)).lines()
    as_json = await run_cli("report", "--server", SERVER, "--platform", "discord", "--db", db, "--json")
    data = json.loads(as_json.stdout)
    assert data["policies"][HB]["overturn_rate"] == pytest.approx(2 / 3)
    assert data["false_positive_rules"][0]["rule_id"] == "HB1.b"
    since = await run_cli("report", "--server", SERVER, "--platform", "discord", "--db", db, "--since", "2025-03-06")
    assert "since 2025-03-06T00:00+00:00" in since.stdout


async def test_report_without_a_database(tmp_path: Path) -> None:
    result = await run_cli("report", "--server", SERVER, "--platform", "discord", "--db", tmp_path / "none.db")
    assert result.exit_code == 2
    assert "no database at" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_since_accepts_days_hours_and_dates() -> None:
    from adapters.console.policy_eng_cli import parse_since

    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2025, 3, 3, 12, tzinfo=UTC)
    assert parse_since("24h", now) == datetime(2025, 3, 9, 12, tzinfo=UTC)
    assert parse_since("2025-03-01", now) == datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_since("2025-03-01T10:00+02:00", now) == datetime(2025, 3, 1, 8, tzinfo=UTC)
