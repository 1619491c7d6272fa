"""The screen held to account: its recall against per-policy judgement, and the calls it saves.

For `modbot eval --triage screen`: each labelled message is screened, and also judged
against every policy (the reference). A violation the per-policy pass finds under a policy
the screen did not name is a miss. Pure: the command runs the calls and passes the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain import Verdict, VerdictStatus
from bot.triage.screen_verdict import ScreenOutcome, ScreenVerdict


@dataclass(frozen=True)
class ScreenTrial:
    """One message: what the screen said, and every policy's verdict on it."""

    message_id: str
    screen: ScreenVerdict
    verdicts: Sequence[Verdict]
    # The dataset's label, when it has one: True for a violation.
    labelled_violation: bool | None = None


@dataclass(frozen=True)
class PolicyRecall:
    policy: str
    violations: int  # messages the per-policy pass found violating this policy
    passed_on: int  # of those, the ones the screen named this policy for

    @property
    def recall(self) -> float | None:
        return self.passed_on / self.violations if self.violations else None


@dataclass(frozen=True)
class ScreenRecallReport:
    messages: int
    screened_out: int
    judged_all: int  # the screen was bypassed or unusable: every policy judged
    # (message, policy) pairs the per-policy pass found violating, and those the screen passed on.
    violations: int
    passed_on: int
    # Messages with at least one violation, and those for which the screen named at least one.
    violating_messages: int
    violating_messages_passed_on: int
    # Against the dataset's labels: violating messages, and those the screen did not clear.
    labelled_violations: int
    labelled_violations_passed_on: int
    unusable_verdicts: int  # per-policy NEEDS_REVIEW: left out of the reference
    calls_off: int  # one per policy per message
    calls_screen: int  # the screen's own calls, plus one per named policy
    per_policy: tuple[PolicyRecall, ...]
    missed: tuple[tuple[str, str], ...]  # (message id, policy)

    @property
    def recall(self) -> float | None:
        return self.passed_on / self.violations if self.violations else None

    @property
    def message_recall(self) -> float | None:
        return self.violating_messages_passed_on / self.violating_messages if self.violating_messages else None

    @property
    def label_recall(self) -> float | None:
        if not self.labelled_violations:
            return None
        return self.labelled_violations_passed_on / self.labelled_violations

    @property
    def calls_per_message_off(self) -> float:
        return self.calls_off / self.messages if self.messages else 0.0

    @property
    def calls_per_message_screen(self) -> float:
        return self.calls_screen / self.messages if self.messages else 0.0

    @property
    def calls_saved(self) -> float:
        return 1 - self.calls_screen / self.calls_off if self.calls_off else 0.0


def screen_recall(trials: Sequence[ScreenTrial]) -> ScreenRecallReport:
    violations = passed = violating_messages = violating_passed = 0
    labelled = labelled_passed = unusable = calls_off = calls_screen = 0
    per_policy: dict[str, list[int]] = {}
    missed: list[tuple[str, str]] = []
    for trial in trials:
        named = set(trial.screen.policies)
        calls_off += len(trial.verdicts)
        calls_screen += trial.screen.calls + len(trial.screen.policies)
        found = False
        caught = False
        for verdict in trial.verdicts:
            counts = per_policy.setdefault(verdict.policy, [0, 0])
            if verdict.status is VerdictStatus.NEEDS_REVIEW:
                unusable += 1
                continue
            if not verdict.violation:
                continue
            found = True
            violations += 1
            counts[0] += 1
            if verdict.policy in named:
                passed += 1
                counts[1] += 1
                caught = True
            else:
                missed.append((trial.message_id, verdict.policy))
        violating_messages += found
        violating_passed += caught
        if trial.labelled_violation:
            labelled += 1
            labelled_passed += trial.screen.outcome is not ScreenOutcome.CLEAR
    return ScreenRecallReport(
        messages=len(trials),
        screened_out=sum(1 for t in trials if t.screen.outcome is ScreenOutcome.CLEAR),
        judged_all=sum(1 for t in trials if t.screen.outcome is ScreenOutcome.ALL),
        violations=violations,
        passed_on=passed,
        violating_messages=violating_messages,
        violating_messages_passed_on=violating_passed,
        labelled_violations=labelled,
        labelled_violations_passed_on=labelled_passed,
        unusable_verdicts=unusable,
        calls_off=calls_off,
        calls_screen=calls_screen,
        per_policy=tuple(PolicyRecall(name, v, p) for name, (v, p) in sorted(per_policy.items())),
        missed=tuple(missed),
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def recall_table(report: ScreenRecallReport) -> list[str]:
    """The report as Markdown, as `modbot eval --triage screen` prints it and the README shows it."""
    lines = [
        "| screen | figure |",
        "|---|---|",
        f"| messages | {report.messages} |",
        f"| screened out (no per-policy call) | {report.screened_out} |",
        f"| every policy judged (screen bypassed or unusable) | {report.judged_all} |",
        f"| recall, violations found by per-policy judgement | {_pct(report.recall)}"
        f" ({report.passed_on} of {report.violations}) |",
        f"| recall, violating messages | {_pct(report.message_recall)}"
        f" ({report.violating_messages_passed_on} of {report.violating_messages}) |",
        f"| recall, against the dataset's labels | {_pct(report.label_recall)}"
        f" ({report.labelled_violations_passed_on} of {report.labelled_violations}) |",
        f"| model calls per message, triage off | {report.calls_per_message_off:.2f} |",
        f"| model calls per message, triage screen | {report.calls_per_message_screen:.2f} |",
        f"| calls saved | {_pct(report.calls_saved)} |",
        "",
        "| policy | violations | screen named it | recall |",
        "|---|---|---|---|",
        *(f"| {p.policy} | {p.violations} | {p.passed_on} | {_pct(p.recall)} |" for p in report.per_policy),
    ]
    if report.unusable_verdicts:
        lines.append(f"\n{report.unusable_verdicts} per-policy verdicts were unusable and left out of the reference.")
    return lines
