"""Triage's records are ordinary verdicts: the store keeps them as it keeps a policy's, no migration."""

from __future__ import annotations

from bot.domain import Case, CaseStatus, EffectKind, EffectOutcome, ServerSettings
from bot.effects import decide_effects
from bot.store.sqlite import SqliteStore
from bot.triage.config import MentionFloodRule, RuleSet
from bot.triage.flood import DuplicateFloodDetector
from bot.triage.lists import load_rule_lists
from bot.triage.rules import RULES_POLICY, CompiledRules
from bot.triage.screen_answer import ScreenAnswer
from bot.triage.screen_verdict import resolve_answer
from bot.triage.screening import ContextBudget, load_screen_template, prepare_screen, template_path
from tests.triage.helpers import LISTS_DIR, POLICY_DIR, library_policies, message


async def test_a_rule_decided_case_and_a_screened_out_case_survive_the_store(store: SqliteStore) -> None:
    flood = message("<@1> <@2> <@3>", message_id="flood")
    rules = CompiledRules(RuleSet(version=7, rules=(MentionFloodRule(max_mentions=2),)), load_rule_lists(LISTS_DIR))
    rule_verdict = rules.check(flood, DuplicateFloodDetector()).verdict()
    assert rule_verdict is not None
    effects = decide_effects([rule_verdict], ServerSettings(platform="discord", server_id="s1"))
    queue_id = await store.enqueue(flood)
    assert queue_id is not None
    decided = Case(id="RULE1", message=flood, status=CaseStatus.OPEN, verdicts=(rule_verdict,))
    await store.record_decision(queue_id, decided, [(e, EffectOutcome.PENDING) for e in effects])
    stored = await store.cases.get("RULE1")
    assert stored is not None
    assert stored.verdicts == (rule_verdict,)
    assert stored.verdicts[0].policy == RULES_POLICY and stored.verdicts[0].policy_version == 7
    assert [r.effect.kind for r in stored.effects] == [EffectKind.FLAG]
    assert stored.rule_ids == ("mention-flood",)

    quiet = message("see you tomorrow", message_id="quiet")
    screen = prepare_screen(load_screen_template(template_path(POLICY_DIR)), library_policies(), ContextBudget(8192))
    screened = resolve_answer(screen, ScreenAnswer(policies=[], rule_ids=[], rationale="Small talk.")).as_verdict()
    queue_id = await store.enqueue(quiet)
    assert queue_id is not None
    await store.record_decision(
        queue_id, Case(id="SCR1", message=quiet, status=CaseStatus.CLEAN, verdicts=(screened,)), []
    )
    stored = await store.cases.get("SCR1")
    assert stored is not None and stored.verdicts == (screened,)
    assert stored.verdicts[0].rationale.startswith("Screened out by screen v1")
