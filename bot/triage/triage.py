"""Triage of one piece of work: rules, then the plan (shedding), then the screen; what to judge next.

This is the one call the pipeline makes before its per-policy calls. It never calls a
policy itself: it returns the verdicts the case records from triage (a rule's, the
screen's) and the policies still to judge, at which effort.

Order, and why:
1. Rules, for chat traffic only: they cost nothing, and a rule's decision needs no model.
   Interactive work (an appeal, a report, a preview) is a person asking for judgement;
   it skips the rules, and the flood detector sees each chat message once.
2. The plan: the server's triage and effort, changed by shedding for chat traffic only.
3. The screen, when the plan says so and no rule sent the message to every policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.domain import Effort, Message, Policy, Verdict
from bot.triage.config import RuleSet, TriageMode
from bot.triage.flood import DuplicateFloodDetector
from bot.triage.lists import RuleLists
from bot.triage.rules import CompiledRules, RuleOutcome
from bot.triage.screen_verdict import ScreenVerdict, judge_every_policy
from bot.triage.screener import ScreenModel, screen_message
from bot.triage.screening import ContextBudget, PreparedScreen, ScreenDoesNotFit, ScreenTemplate, prepare_screen
from bot.triage.shedding import JudgingPlan, ShedMode, WorkKind, plan_judging


@dataclass(frozen=True)
class ServerTriage:
    """One server's triage, compiled: build it when the server's settings, rules or policies change."""

    mode: TriageMode
    effort: Effort
    policy_names: tuple[str, ...]  # the active policies, in the server's order
    rules: CompiledRules | None
    # Prepared even when the mode is off: shedding may send the server's traffic to it.
    screen: PreparedScreen | None
    # Why there is no screen (it does not fit the context): recorded when it is skipped.
    screen_unavailable: str = ""


def build_server_triage(
    *,
    mode: TriageMode,
    effort: Effort,
    policies: Sequence[Policy],
    rule_set: RuleSet | None,
    lists: RuleLists,
    template: ScreenTemplate,
    budget: ContextBudget,
) -> ServerTriage:
    """Compile the rules and prepare the screen. Raises RuleSetError for a rule set that cannot be used."""
    rules = CompiledRules(rule_set, lists) if rule_set is not None else None
    try:
        screen: PreparedScreen | None = prepare_screen(template, policies, budget)
        reason = ""
    except ScreenDoesNotFit as exc:
        screen, reason = None, str(exc)
    return ServerTriage(
        mode=mode,
        effort=effort,
        policy_names=tuple(p.name for p in policies),
        rules=rules,
        screen=screen,
        screen_unavailable=reason,
    )


@dataclass(frozen=True)
class TriageResult:
    """What triage decided for one piece of work."""

    plan: JudgingPlan
    # Verdicts the case records from triage, before any policy's: the rule's decision or
    # referral, the screen's verdict. Never empty when triage changed what is judged.
    records: tuple[Verdict, ...]
    # The policies to judge one by one, at `plan.effort`: empty when a rule decided or
    # the screen cleared the message.
    policies: tuple[str, ...]
    rules: RuleOutcome | None = None
    screen: ScreenVerdict | None = None

    @property
    def decided_by_rule(self) -> bool:
        return self.rules is not None and self.rules.decided

    @property
    def screened_out(self) -> bool:
        return self.screen is not None and self.screen.screened_out

    @property
    def outcome(self) -> Literal["rule", "screened"] | None:
        """The `modbot_messages_total` outcome when triage settled the message, else None."""
        if self.decided_by_rule:
            return "rule"
        return "screened" if self.screened_out else None

    @property
    def model_calls(self) -> int:
        """Calls this work costs: the screen's, plus one per policy still to judge."""
        return (self.screen.calls if self.screen else 0) + len(self.policies)


async def triage_message(
    message: Message,
    server: ServerTriage,
    *,
    screen_model: ScreenModel,
    floods: DuplicateFloodDetector,
    context: Sequence[Message] = (),
    kind: WorkKind = WorkKind.CHAT,
    shedding: bool = False,
    shed_mode: ShedMode = ShedMode.SCREEN,
) -> TriageResult:
    plan = plan_judging(kind, triage=server.mode, effort=server.effort, shedding=shedding, mode=shed_mode)
    records: list[Verdict] = []
    outcome: RuleOutcome | None = None
    if kind is WorkKind.CHAT and server.rules is not None:
        outcome = server.rules.check(message, floods)
        verdict = outcome.verdict()
        if verdict is not None:
            records.append(verdict)
        if outcome.decided:
            return TriageResult(plan, tuple(records), (), rules=outcome)
        if outcome.judge_every_policy:
            return TriageResult(plan, tuple(records), server.policy_names, rules=outcome)
    if plan.triage is not TriageMode.SCREEN:
        return TriageResult(plan, tuple(records), server.policy_names, rules=outcome)
    if server.screen is None:
        screened = judge_every_policy(None, server.policy_names, server.screen_unavailable or "no screen")
    else:
        screened = await screen_message(screen_model, server.screen, message, context)
    records.append(screened.as_verdict())
    return TriageResult(plan, tuple(records), screened.policies, rules=outcome, screen=screened)
