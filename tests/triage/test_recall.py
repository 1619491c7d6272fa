"""The screen's recall against per-policy verdicts, and the calls it saves."""

from __future__ import annotations

from bot.domain import Verdict, VerdictStatus
from bot.triage.recall import ScreenTrial, recall_table, screen_recall
from bot.triage.screen_verdict import ScreenOutcome, ScreenVerdict

POLICIES = ("harassment", "spam-scams", "self-harm")


def verdicts(*violating: str, unusable: str = "") -> tuple[Verdict, ...]:
    return tuple(
        Verdict(
            policy=p,
            policy_version=1,
            violation=p in violating,
            status=VerdictStatus.NEEDS_REVIEW if p == unusable else VerdictStatus.DECIDED,
        )
        for p in POLICIES
    )


def screen(outcome: ScreenOutcome, *named: str, calls: int = 1) -> ScreenVerdict:
    policies = POLICIES if outcome is ScreenOutcome.ALL else named
    return ScreenVerdict(outcome=outcome, policies=policies, calls=calls)


TRIALS = [
    # Caught: the screen named the violating policy.
    ScreenTrial("m1", screen(ScreenOutcome.SELECTED, "harassment"), verdicts("harassment"), True),
    # Missed: the screen cleared a message the per-policy pass flags.
    ScreenTrial("m2", screen(ScreenOutcome.CLEAR), verdicts("spam-scams"), True),
    # Half caught: two violations, one named.
    ScreenTrial("m3", screen(ScreenOutcome.SELECTED, "self-harm"), verdicts("self-harm", "harassment"), None),
    # Clean and cleared: the saving.
    ScreenTrial("m4", screen(ScreenOutcome.CLEAR), verdicts(), False),
    # The screen was unusable: everything judged, two calls spent on it.
    ScreenTrial("m5", screen(ScreenOutcome.ALL, calls=2), verdicts("spam-scams", unusable="self-harm"), True),
]


def test_recall_counts_pairs_messages_and_labels() -> None:
    report = screen_recall(TRIALS)
    assert report.messages == 5
    assert (report.screened_out, report.judged_all) == (2, 1)
    assert (report.violations, report.passed_on) == (5, 3)
    assert report.recall == 3 / 5
    assert (report.violating_messages, report.violating_messages_passed_on) == (4, 3)
    assert (report.labelled_violations, report.labelled_violations_passed_on) == (3, 2)
    assert report.unusable_verdicts == 1
    assert report.missed == (("m2", "spam-scams"), ("m3", "harassment"))
    by_policy = {p.policy: (p.violations, p.passed_on) for p in report.per_policy}
    assert by_policy == {"harassment": (2, 1), "self-harm": (1, 1), "spam-scams": (2, 1)}


def test_calls_are_one_per_policy_off_and_the_screen_plus_named_policies_on() -> None:
    report = screen_recall(TRIALS)
    assert report.calls_off == 15
    assert report.calls_screen == (1 + 1) + 1 + (1 + 1) + 1 + (2 + 3)
    assert report.calls_per_message_off == 3.0
    assert report.calls_saved == 1 - 11 / 15


def test_the_table_shows_every_figure() -> None:
    text = "\n".join(recall_table(screen_recall(TRIALS)))
    assert "| recall, violations found by per-policy judgement | 60.0% (3 of 5) |" in text
    assert "| model calls per message, triage screen | 2.20 |" in text
    assert "| harassment | 2 | 1 | 50.0% |" in text
    assert "1 per-policy verdicts were unusable" in text


def test_an_empty_run_reports_no_recall_rather_than_dividing_by_zero() -> None:
    report = screen_recall([])
    assert report.recall is None and report.message_recall is None and report.label_recall is None
    assert report.calls_saved == 0.0 and report.calls_per_message_screen == 0.0
    assert "n/a" in "\n".join(recall_table(report))
