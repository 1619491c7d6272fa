"""Triage of one message, as the pipeline will call it: the issue's scenarios against fakes.

The pipeline wiring comes later; here a scripted screen model and a counting per-policy
judge stand in for the model, and the tests count the calls each path makes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bot.domain import Effort, Verdict
from bot.triage.config import MentionFloodRule, RuleSet, ScamLinkRule, TriageMode, WordListRule
from bot.triage.flood import DuplicateFloodDetector
from bot.triage.lists import load_rule_lists
from bot.triage.rules import RULES_POLICY
from bot.triage.screen_verdict import SCREEN_POLICY, ScreenOutcome
from bot.triage.screener import ScreenCompletion
from bot.triage.screening import ContextBudget, ScreenRequest, load_screen_template, template_path
from bot.triage.shedding import ShedMode, WorkKind
from bot.triage.triage import ServerTriage, TriageResult, build_server_triage, triage_message
from tests.triage.helpers import LISTS_DIR, POLICY_DIR, library_policies, message

POLICIES = library_policies()
LISTS = load_rule_lists(LISTS_DIR)
TEMPLATE = load_screen_template(template_path(POLICY_DIR))


@dataclass
class Model:
    """Answers screens from a script and counts per-policy calls, as the pipeline would make them."""

    screen_answers: list[list[str]] = field(default_factory=list)
    screen_calls: int = 0
    policy_calls: list[tuple[str, Effort]] = field(default_factory=list)

    async def complete(self, request: ScreenRequest) -> ScreenCompletion:
        self.screen_calls += 1
        named = self.screen_answers.pop(0)
        return ScreenCompletion(json.dumps({"policies": named, "rule_ids": [], "rationale": "r"}), model="fake")

    def judge(self, result: TriageResult) -> tuple[Verdict, ...]:
        for name in result.policies:
            self.policy_calls.append((name, result.plan.effort))
        return tuple(Verdict(policy=n, policy_version=1, effort=result.plan.effort) for n in result.policies)


def server(mode: TriageMode = TriageMode.OFF, effort: Effort = Effort.MEDIUM, num_ctx: int = 8192) -> ServerTriage:
    rule_set = RuleSet(rules=(ScamLinkRule(), MentionFloodRule(max_mentions=3), WordListRule(words=("airdrop",))))
    return build_server_triage(
        mode=mode,
        effort=effort,
        policies=POLICIES,
        rule_set=rule_set,
        lists=LISTS,
        template=TEMPLATE,
        budget=ContextBudget(num_ctx),
    )


async def run(text: str, model: Model, srv: ServerTriage, **kw: object) -> TriageResult:
    result = await triage_message(
        message(text),
        srv,
        screen_model=model,
        floods=DuplicateFloodDetector(),
        **kw,  # type: ignore[arg-type]
    )
    model.judge(result)
    return result


async def test_a_rule_hit_decides_without_any_model_call() -> None:
    model = Model()
    result = await run("<@1> <@2> <@3> <@4> look at this", model, server(TriageMode.SCREEN))
    assert result.decided_by_rule
    assert model.screen_calls == 0 and model.policy_calls == []
    assert result.model_calls == 0
    assert result.outcome == "rule"
    (record,) = result.records
    assert record.policy == RULES_POLICY and record.violation and record.rule_ids == ("mention-flood",)


async def test_a_rule_referral_skips_the_screen_and_asks_every_policy() -> None:
    model = Model()
    result = await run("join the airdrop", model, server(TriageMode.SCREEN))
    assert model.screen_calls == 0
    assert [name for name, _ in model.policy_calls] == [p.name for p in POLICIES]
    assert result.records[0].policy == RULES_POLICY and not result.records[0].violation


async def test_the_screen_calls_once_and_then_asks_only_the_named_policies() -> None:
    model = Model(screen_answers=[["harassment", "violent-threats"]])
    result = await run("you're dead meat, loser", model, server(TriageMode.SCREEN))
    assert model.screen_calls == 1
    assert model.policy_calls == [("harassment", Effort.MEDIUM), ("violent-threats", Effort.MEDIUM)]
    assert result.model_calls == 3
    assert result.outcome is None  # the per-policy verdicts settle it
    assert result.records[0].policy == SCREEN_POLICY


async def test_a_screened_out_message_has_no_per_policy_calls_and_its_case_says_so() -> None:
    model = Model(screen_answers=[[]])
    result = await run("see you all tomorrow", model, server(TriageMode.SCREEN))
    assert result.screened_out and result.outcome == "screened"
    assert model.screen_calls == 1 and model.policy_calls == []
    (record,) = result.records
    assert record.policy == SCREEN_POLICY and not record.violation
    assert record.rationale.startswith("Screened out by screen v1: no policy may apply.")


async def test_a_screen_naming_nothing_it_recognises_means_every_policy_is_judged() -> None:
    model = Model(screen_answers=[["toxicity"]])
    result = await run("hmm", model, server(TriageMode.SCREEN))
    assert result.screen is not None and result.screen.outcome is ScreenOutcome.ALL
    assert len(model.policy_calls) == 8


async def test_triage_off_asks_every_policy_and_never_screens() -> None:
    model = Model()
    result = await run("hello", model, server(TriageMode.OFF))
    assert model.screen_calls == 0 and len(model.policy_calls) == 8
    assert result.records == () and not result.plan.shed


async def test_shedding_moves_chat_to_the_screen_and_says_it_was_shed() -> None:
    model = Model(screen_answers=[[]])
    result = await run("hello", model, server(TriageMode.OFF), shedding=True)
    assert result.plan.shed and result.plan.triage is TriageMode.SCREEN
    assert model.screen_calls == 1 and model.policy_calls == []


async def test_shedding_to_low_effort_keeps_every_policy() -> None:
    model = Model()
    result = await run("hello", model, server(TriageMode.OFF), shedding=True, shed_mode=ShedMode.LOW_EFFORT)
    assert result.plan.shed
    assert {effort for _, effort in model.policy_calls} == {Effort.LOW} and len(model.policy_calls) == 8


async def test_appeals_keep_their_effort_under_shedding_skip_rules_and_the_screen() -> None:
    model = Model()
    appeal_server = server(TriageMode.SCREEN, effort=Effort.HIGH)
    result = await run("<@1> <@2> <@3> <@4>", model, appeal_server, kind=WorkKind.APPEAL, shedding=True)
    assert not result.plan.shed and result.rules is None
    assert model.screen_calls == 0
    assert model.policy_calls == [(p.name, Effort.HIGH) for p in POLICIES]


async def test_a_screen_that_does_not_fit_is_recorded_and_every_policy_judged() -> None:
    model = Model()
    srv = server(TriageMode.SCREEN, num_ctx=2048)
    assert srv.screen is None and "does not fit num_ctx 2048" in srv.screen_unavailable
    result = await run("hello", model, srv)
    assert model.screen_calls == 0 and len(model.policy_calls) == 8
    assert result.records[0].rationale.startswith("Every policy judged: the screening prompt for 8 policies")


async def test_without_a_rule_set_no_rule_is_checked() -> None:
    srv = build_server_triage(
        mode=TriageMode.OFF,
        effort=Effort.LOW,
        policies=POLICIES,
        rule_set=None,
        lists=LISTS,
        template=TEMPLATE,
        budget=ContextBudget(8192),
    )
    result = await run("<@1> <@2> <@3> <@4> <@5> <@6> <@7> <@8> <@9> <@10> <@11>", Model(), srv)
    assert result.rules is None and len(result.policies) == 8
