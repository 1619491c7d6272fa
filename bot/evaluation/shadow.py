"""Shadow evaluation from real traffic: moderators' decisions as labels for the model's verdicts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain import DecisionAction, VerdictStatus
from bot.store.ports import ModerationStore

# How many rules the text rendering lists under "most false positives".
TOP_RULES = 5
NO_RULE = "(no rule cited)"


@dataclass
class Tally:
    """Verdicts of one policy (or one rule) against the human label of their case."""

    confirmed: int = 0  # the model flagged, a human agreed
    reversed: int = 0  # the model flagged, a human said no violation
    cleared: int = 0  # the model did not flag, a human said no violation

    @property
    def flags(self) -> int:
        return self.confirmed + self.reversed

    @property
    def judged(self) -> int:
        return self.confirmed + self.reversed + self.cleared

    @property
    def agreement(self) -> float | None:
        return (self.confirmed + self.cleared) / self.judged if self.judged else None

    @property
    def overturn_rate(self) -> float | None:
        """The share of this policy's flags that a human reversed (dismissed or overturned)."""
        return self.reversed / self.flags if self.flags else None

    def to_json(self) -> dict[str, Any]:
        return {
            "confirmed": self.confirmed,
            "reversed": self.reversed,
            "cleared": self.cleared,
            "flags": self.flags,
            "judged": self.judged,
            "agreement": self.agreement,
            "overturn_rate": self.overturn_rate,
        }


@dataclass(frozen=True)
class RuleTally:
    policy: str
    rule_id: str
    tally: Tally

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "rule_id": self.rule_id, **self.tally.to_json()}


@dataclass(frozen=True)
class ShadowReport:
    """How the model's verdicts on one server compare with its moderators' decisions.

    A case's label is its latest human decision. Per policy: a flag on a case a human called a
    violation is confirmed, on a case a human cleared it is reversed; a policy that did not
    flag a cleared case agrees with it. When a human calls a case a violation that no policy
    flagged, no single policy can be blamed: it is counted as missed, for the server only.
    """

    server_id: str
    since: datetime | None
    labelled_cases: int = 0  # cases with a human decision
    compared_cases: int = 0  # ... and a usable model verdict to compare it with
    agreed_cases: int = 0  # the model's case-level call (any policy flagged) matched the label
    missed: int = 0  # a human said violation; no policy flagged
    false_flags: int = 0  # some policy flagged; a human said no violation
    appeals_upheld: int = 0
    appeals_overturned: int = 0
    undecided_verdicts: int = 0  # unusable model answers: no call to compare
    unjudged_cases: int = 0  # labelled, but with no model verdict (skipped messages)
    policies: dict[str, Tally] = field(default_factory=dict)
    rules: tuple[RuleTally, ...] = ()

    @property
    def agreement(self) -> float | None:
        return self.agreed_cases / self.compared_cases if self.compared_cases else None

    @property
    def appeal_overturn_rate(self) -> float | None:
        decided = self.appeals_upheld + self.appeals_overturned
        return self.appeals_overturned / decided if decided else None

    @property
    def false_positive_rules(self) -> list[RuleTally]:
        """Rules behind reversed flags, most reversals first."""
        ranked = [r for r in self.rules if r.tally.reversed]
        return sorted(ranked, key=lambda r: (-r.tally.reversed, -(r.tally.overturn_rate or 0), r.policy, r.rule_id))

    def lines(self) -> list[str]:
        """Plain text for `modbot report` and the daily digest."""
        window = f" since {self.since.isoformat(timespec='minutes')}" if self.since else ""
        head = f"Shadow evaluation, server {self.server_id}{window}"
        if not self.labelled_cases:
            return [head, "  no human decisions yet: confirm, dismiss or decide appeals to get labels"]
        out = [
            head,
            f"  {self.compared_cases} cases with a moderator's decision: the model agreed on "
            f"{self.agreed_cases} ({_pct(self.agreement)}); {self.false_flags} false flags, {self.missed} missed",
        ]
        if self.appeals_upheld or self.appeals_overturned:
            out.append(
                f"  appeals: {self.appeals_upheld} upheld, {self.appeals_overturned} overturned "
                f"(overturn rate {_pct(self.appeal_overturn_rate)})"
            )
        if self.undecided_verdicts or self.unjudged_cases:
            out.append(
                f"  not compared: {_count(self.undecided_verdicts, 'unusable model answer')}, "
                f"{_count(self.unjudged_cases, 'case')} without a verdict"
            )
        width = max([len("policy"), *(len(n) for n in self.policies)])
        out.append(f"  {'policy':<{width}}  agreement  flags  reversed  overturn rate")
        for name in sorted(self.policies):
            t = self.policies[name]
            out.append(
                f"  {name:<{width}}  {_pct(t.agreement):>9}  {t.flags:>5}  {t.reversed:>8}  {_pct(t.overturn_rate):>13}"
            )
        worst = self.false_positive_rules[:TOP_RULES]
        if worst:
            out.append("  rules causing most false positives:")
            out.extend(
                f"    {r.rule_id} ({r.policy}): {r.tally.reversed} of {r.tally.flags} flags reversed "
                f"({_pct(r.tally.overturn_rate)})"
                for r in worst
            )
        else:
            out.append("  no false positives")
        return out

    def text(self) -> str:
        return "\n".join(self.lines())

    def to_json(self) -> dict[str, Any]:
        return {
            "server_id": self.server_id,
            "since": self.since.isoformat() if self.since else None,
            "labelled_cases": self.labelled_cases,
            "compared_cases": self.compared_cases,
            "agreed_cases": self.agreed_cases,
            "agreement": self.agreement,
            "missed": self.missed,
            "false_flags": self.false_flags,
            "appeals_upheld": self.appeals_upheld,
            "appeals_overturned": self.appeals_overturned,
            "appeal_overturn_rate": self.appeal_overturn_rate,
            "undecided_verdicts": self.undecided_verdicts,
            "unjudged_cases": self.unjudged_cases,
            "policies": {name: t.to_json() for name, t in sorted(self.policies.items())},
            "rules": [r.to_json() for r in sorted(self.rules, key=lambda r: (r.policy, r.rule_id))],
            "false_positive_rules": [r.to_json() for r in self.false_positive_rules],
        }


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


@dataclass
class _Label:
    violation: bool
    at: datetime
    order: int


async def shadow_report(
    store: ModerationStore, platform: str, server_id: str, since: datetime | None = None
) -> ShadowReport:
    """Compare a server's human labels with the model's first-pass verdicts (not appeal opinions).

    With `since`, only cases whose latest human decision falls at or after it are counted.
    """
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    labels: dict[str, _Label] = {}
    upheld = overturned = 0
    latest_actions: dict[str, DecisionAction] = {}
    for decision in await store.decisions.for_server(platform, server_id):
        label = _Label(decision.action.violation, decision.at, decision.id)
        current = labels.get(decision.case_id)
        # The latest decision wins: an appeal decided after the review replaces its label.
        if current is None or (label.at, label.order) > (current.at, current.order):
            labels[decision.case_id] = label
            latest_actions[decision.case_id] = decision.action
    if since is not None:
        labels = {case_id: lab for case_id, lab in labels.items() if lab.at >= since}
    for case_id in labels:
        action = latest_actions[case_id]
        upheld += action is DecisionAction.UPHOLD
        overturned += action is DecisionAction.OVERTURN
    verdicts = await _first_pass_verdicts(store, labels)
    return _compare(server_id, since, labels, verdicts, upheld, overturned)


@dataclass(frozen=True)
class _Verdict:
    policy: str
    decided: bool
    violation: bool
    rule_ids: tuple[str, ...]


async def _first_pass_verdicts(store: ModerationStore, labels: dict[str, _Label]) -> dict[str, dict[str, _Verdict]]:
    verdicts: dict[str, dict[str, _Verdict]] = {}
    for case in await store.cases.get_many(list(labels)):
        for v in case.verdicts:
            rule_ids = v.rule_ids or ((v.policy_category,) if v.policy_category else ())
            # A later first-pass verdict of the same policy (a re-run) replaces the earlier one.
            verdicts.setdefault(case.id, {})[v.policy] = _Verdict(
                v.policy, v.status is VerdictStatus.DECIDED, v.violation, rule_ids
            )
    return verdicts


def _compare(
    server_id: str,
    since: datetime | None,
    labels: dict[str, _Label],
    verdicts: dict[str, dict[str, _Verdict]],
    upheld: int,
    overturned: int,
) -> ShadowReport:
    policies: dict[str, Tally] = {}
    rules: dict[tuple[str, str], Tally] = {}
    agreed = missed = false_flags = undecided = unjudged = 0
    for case_id, label in labels.items():
        case_verdicts = verdicts.get(case_id, {})
        decided = [v for v in case_verdicts.values() if v.decided]
        undecided += len(case_verdicts) - len(decided)
        if not decided:
            unjudged += 1
            continue
        flagged = any(v.violation for v in decided)
        agreed += flagged == label.violation
        missed += label.violation and not flagged
        false_flags += flagged and not label.violation
        for v in decided:
            tally = policies.setdefault(v.policy, Tally())
            if v.violation:
                for t in [tally, *_rule_tallies(rules, v.policy, v.rule_ids)]:
                    if label.violation:
                        t.confirmed += 1
                    else:
                        t.reversed += 1
            elif not label.violation:
                tally.cleared += 1
            # Not flagged but labelled a violation: another policy may have been the right one.
    return ShadowReport(
        server_id=server_id,
        since=since,
        labelled_cases=len(labels),
        compared_cases=len(labels) - unjudged,
        agreed_cases=agreed,
        missed=missed,
        false_flags=false_flags,
        appeals_upheld=upheld,
        appeals_overturned=overturned,
        undecided_verdicts=undecided,
        unjudged_cases=unjudged,
        policies=policies,
        rules=tuple(RuleTally(p, r, t) for (p, r), t in rules.items()),
    )


def _rule_tallies(rules: dict[tuple[str, str], Tally], policy: str, rule_ids: Iterable[str]) -> list[Tally]:
    ids = list(dict.fromkeys(rule_ids)) or [NO_RULE]
    return [rules.setdefault((policy, rule_id), Tally()) for rule_id in ids]
