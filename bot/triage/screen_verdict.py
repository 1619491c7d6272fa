"""What the screen decided: which policies to judge, and the record a case keeps of it.

The screen's names are mapped to the server's policies leniently (a name, a title, a
rule id, a rule prefix), because a name it got slightly wrong is still a policy it
meant. An answer that names something but nothing recognisable means "judge every
policy": the screen is for recall, and a garbled answer is no reason to skip a check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.domain import Confidence, Effort, Verdict
from bot.triage.screen_answer import ScreenAnswer
from bot.triage.screening import PreparedScreen, ScreenDetail, ScreenedPolicy

# The name a screen's verdict carries in place of a policy's. Policy names cannot hold a
# colon, so it never collides with a server's policy; the version is the template's.
SCREEN_POLICY = "triage:screen"
_RULE_PREFIX = re.compile(r"^([A-Za-z]{1,5})(\d{1,2})?(?:\.[A-Za-z0-9]{1,3})?$")
# What a model writes in the list when it means an empty list.
_NOTHING = frozenset({"", "none", "null", "n/a", "no policy", "no policies", "nothing"})
_TITLE_CODE = re.compile(r"\(([A-Z]{1,5})\)\s*$")


class ScreenOutcome(StrEnum):
    # The screen named no policy: the message is screened out; no per-policy call.
    CLEAR = "clear"
    # The screen named some policies: only those are judged.
    SELECTED = "selected"
    # Every policy is judged: the screen named nothing it recognises, its answer was
    # unusable, or the message did not fit its context.
    ALL = "all"


class ScreenVerdict(BaseModel):
    """One screen's result, as a screened case records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: ScreenOutcome
    # The policies to judge now: none for CLEAR, the named ones for SELECTED, all for ALL.
    policies: tuple[str, ...]
    # What the screen wrote, as written, and which of it matched nothing.
    named: tuple[str, ...] = ()
    unrecognised: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()  # known rule ids it cited
    # The screen's own rationale, or why every policy is judged.
    rationale: str = ""
    template: str = ""
    template_version: int = 1
    detail: ScreenDetail = ScreenDetail.FULL
    model: str = ""
    effort: Effort = Effort.LOW
    calls: int = 0  # model calls the screen made: 0 when it did not run, 2 after a retry
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning: str = ""  # moderators only, like a verdict's
    raw_output: str | None = None

    @property
    def screened_out(self) -> bool:
        return self.outcome is ScreenOutcome.CLEAR

    def as_verdict(self) -> Verdict:
        """The record a case keeps: never a violation, always the screen's reason.

        A screened-out case records it as its only verdict, so the case log shows why no
        policy was asked; a screened-in case may record it beside the policies' verdicts.
        """
        version = f"{self.template} v{self.template_version}"
        if self.outcome is ScreenOutcome.CLEAR:
            rationale = f"Screened out by {version}: no policy may apply. {self.rationale}"
        elif self.outcome is ScreenOutcome.SELECTED:
            rationale = f"Screen {version} named {', '.join(self.policies)}: {self.rationale}"
        else:
            rationale = f"Every policy judged: {self.rationale}"
        return Verdict(
            policy=SCREEN_POLICY,
            policy_version=self.template_version,
            violation=False,
            rule_ids=self.rule_ids,
            confidence=Confidence.LOW,
            rationale=rationale.strip(),
            reasoning=self.reasoning,
            raw_output=self.raw_output,
            model=self.model,
            effort=self.effort,
            latency_ms=self.latency_ms,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )


def _candidates(named: str) -> list[str]:
    text = named.strip().strip("\"'`#*").strip()
    forms = [text, text.split(":", 1)[0], text.split("(", 1)[0], text.split(" - ", 1)[0]]
    return list(dict.fromkeys(f.strip().casefold() for f in forms if f.strip()))


def _title_without_code(title: str) -> str:
    return _TITLE_CODE.sub("", title).strip().casefold()


class PolicyLookup:
    """Maps what a screen wrote to the server's policies."""

    def __init__(self, policies: Sequence[ScreenedPolicy]) -> None:
        self.names = tuple(p.name for p in policies)
        self._by_key: dict[str, str] = {}
        self._by_rule: dict[str, str] = {}
        self._by_prefix: dict[str, str] = {}
        for p in policies:
            for key in (p.name, p.title.casefold(), _title_without_code(p.title)):
                self._by_key.setdefault(key.casefold(), p.name)
            for rule in p.rules:
                self._by_rule.setdefault(rule.id, p.name)
                prefix = _RULE_PREFIX.match(rule.id)
                if prefix:
                    self._by_prefix.setdefault(prefix.group(1), p.name)

    def policy_named(self, named: str) -> str | None:
        for form in _candidates(named):
            if form in self._by_key:
                return self._by_key[form]
        return self.policy_of_rule(named)[0]

    def policy_of_rule(self, rule_id: str) -> tuple[str | None, bool]:
        """The policy a rule id belongs to, and whether the id is one of its rules exactly.

        "SP2.z" or "SP" still point at the SP policy: the screen meant it.
        """
        text = rule_id.strip()
        if text in self._by_rule:
            return self._by_rule[text], True
        prefix = _RULE_PREFIX.match(text)
        return (self._by_prefix.get(prefix.group(1).upper()) if prefix else None), False


def resolve_answer(screen: PreparedScreen, answer: ScreenAnswer) -> ScreenVerdict:
    """The screen's answer as a decision over the server's policies (the call's costs are added by the caller)."""
    lookup = PolicyLookup(screen.policies)
    chosen: set[str] = set()
    unrecognised: list[str] = []
    for named in answer.policies:
        if named.strip().casefold() in _NOTHING:
            continue
        found = lookup.policy_named(named)
        if found is None:
            unrecognised.append(named)
        else:
            chosen.add(found)
    known_rules: list[str] = []
    for rule_id in answer.rule_ids:
        if rule_id.strip().casefold() in _NOTHING:
            continue
        found, exact = lookup.policy_of_rule(rule_id)
        if found is None:
            unrecognised.append(rule_id)
            continue
        # A rule id it cites names its policy too, even when the name was left out.
        chosen.add(found)
        if exact:
            known_rules.append(rule_id.strip())
    rationale = " ".join(answer.rationale.split())[:500]
    if chosen:
        outcome = ScreenOutcome.SELECTED
        policies = tuple(n for n in lookup.names if n in chosen)  # the server's order
    elif unrecognised:
        outcome = ScreenOutcome.ALL
        policies = lookup.names
        rationale = f"the screen named nothing it recognises ({', '.join(unrecognised)[:200]}). {rationale}"
    else:
        outcome = ScreenOutcome.CLEAR
        policies = ()
    return ScreenVerdict(
        outcome=outcome,
        policies=policies,
        named=tuple(answer.policies),
        unrecognised=tuple(unrecognised),
        rule_ids=tuple(dict.fromkeys(known_rules)),
        rationale=rationale,
        template=screen.template.name,
        template_version=screen.template.version,
        detail=screen.detail,
        effort=screen.effort,
    )


def judge_every_policy(screen: PreparedScreen | None, policy_names: Sequence[str], reason: str) -> ScreenVerdict:
    """The verdict when the screen cannot be used: every policy is judged, and the case says why."""
    return ScreenVerdict(
        outcome=ScreenOutcome.ALL,
        policies=tuple(policy_names),
        rationale=reason,
        template=screen.template.name if screen else "",
        template_version=screen.template.version if screen else 1,
        detail=screen.detail if screen else ScreenDetail.FULL,
        effort=screen.effort if screen else Effort.LOW,
    )
