"""The screen's answer: schema, parsing, and mapping what it names to the server's policies."""

from __future__ import annotations

import pytest

from bot.domain import Case, CaseStatus, Effort, primary_verdict
from bot.triage.screen_answer import (
    SCREEN_SCHEMA,
    MalformedScreenAnswer,
    ScreenAnswer,
    parse_screen_answer,
)
from bot.triage.screen_verdict import SCREEN_POLICY, ScreenOutcome, judge_every_policy, resolve_answer
from bot.triage.screening import ContextBudget, load_screen_template, prepare_screen, template_path
from tests.triage.helpers import POLICY_DIR, library_policies, message

SCREEN = prepare_screen(load_screen_template(template_path(POLICY_DIR)), library_policies(), ContextBudget(8192))
ALL = SCREEN.policy_names


def answer(policies: list[str], rule_ids: list[str] | None = None, rationale: str = "r") -> ScreenAnswer:
    return ScreenAnswer(policies=policies, rule_ids=rule_ids or [], rationale=rationale)


def test_the_schema_is_derived_from_the_answer_model() -> None:
    assert SCREEN_SCHEMA == {
        "type": "object",
        "properties": {
            "policies": {"type": "array", "items": {"type": "string"}},
            "rule_ids": {"type": "array", "items": {"type": "string"}},
            "rationale": {"type": "string"},
        },
        "required": ["policies", "rule_ids", "rationale"],
        "additionalProperties": False,
    }
    assert set(SCREEN_SCHEMA["properties"]) == set(ScreenAnswer.model_fields)


def test_parsing_accepts_fences_and_forgotten_rule_ids() -> None:
    parsed = parse_screen_answer('```json\n{"policies": ["harassment"], "rationale": "insult", "extra": 1}\n```')
    assert parsed == answer(["harassment"], [], "insult")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty answer"),
        ("   ", "empty answer"),
        (None, "empty answer"),
        ("harassment", "not JSON"),
        ('{"policies": "harassment", "rationale": "x"}', "not the screen's schema: policies: Input should be a valid"),
        ('{"policies": []}', "not the screen's schema: rationale: Field required"),
        ("[]", "not the screen's schema"),
    ],
)
def test_unusable_answers_are_refused_with_the_reason(content: str | None, problem: str) -> None:
    with pytest.raises(MalformedScreenAnswer, match=problem):
        parse_screen_answer(content)


def test_named_policies_are_judged_in_the_servers_order() -> None:
    verdict = resolve_answer(SCREEN, answer(["spam-scams", "harassment"], ["SP2.a", "HB1.a"], "Bait and an insult."))
    assert verdict.outcome is ScreenOutcome.SELECTED
    assert verdict.policies == ("harassment", "spam-scams")
    assert verdict.rule_ids == ("SP2.a", "HB1.a")
    assert verdict.unrecognised == ()
    assert (verdict.template, verdict.template_version, verdict.effort) == ("screen", 1, Effort.LOW)


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        (["Harassment"], ("harassment",)),
        (["Spam and scams (SP)"], ("spam-scams",)),
        (["spam and scams"], ("spam-scams",)),
        (["spam-scams: Spam and scams"], ("spam-scams",)),
        (["`hate-speech`"], ("hate-speech",)),
        (["HS1.a"], ("hate-speech",)),  # a rule id in place of a name
        (["SH"], ("self-harm",)),  # a rule prefix
        (["VT9.z"], ("violent-threats",)),  # an id it made up, with a real prefix
        (["harassment", "made-up-policy"], ("harassment",)),
    ],
)
def test_names_are_matched_leniently(named: list[str], expected: tuple[str, ...]) -> None:
    verdict = resolve_answer(SCREEN, answer(named))
    assert verdict.outcome is ScreenOutcome.SELECTED
    assert verdict.policies == expected


def test_rule_ids_alone_name_their_policies_and_made_up_ids_are_not_kept_as_rules() -> None:
    verdict = resolve_answer(SCREEN, answer([], ["SX2.b", "PI9.q"]))
    assert verdict.policies == ("personal-info", "sexual-content")
    assert verdict.rule_ids == ("SX2.b",)


def test_naming_nothing_screens_the_message_out() -> None:
    for nothing in ([], ["none"], ["None", "n/a"]):
        verdict = resolve_answer(SCREEN, answer(nothing, [], "Small talk."))
        assert verdict.outcome is ScreenOutcome.CLEAR
        assert verdict.policies == ()
        assert verdict.screened_out


def test_naming_only_unknown_things_means_every_policy_is_judged() -> None:
    verdict = resolve_answer(SCREEN, answer(["toxicity", "bullying"], ["T1"], "Rude."))
    assert verdict.outcome is ScreenOutcome.ALL
    assert verdict.policies == ALL
    assert verdict.unrecognised == ("toxicity", "bullying", "T1")
    assert verdict.rationale.startswith("the screen named nothing it recognises (toxicity, bullying, T1). Rude.")


def test_a_screened_out_case_records_why_no_policy_was_asked() -> None:
    verdict = resolve_answer(SCREEN, answer([], [], "Small talk about the weather.")).model_copy(
        update={"model": "gpt-oss-safeguard:20b", "calls": 1, "latency_ms": 310.0, "reasoning": "nothing here"}
    )
    record = verdict.as_verdict()
    assert record.policy == SCREEN_POLICY and record.policy_version == 1
    assert not record.violation
    assert record.rationale == "Screened out by screen v1: no policy may apply. Small talk about the weather."
    assert (record.model, record.latency_ms, record.reasoning) == ("gpt-oss-safeguard:20b", 310.0, "nothing here")
    case = Case(id="C1", message=message("nice weather"), status=CaseStatus.CLEAN, verdicts=(record,))
    assert not case.violation and case.rule_ids == ()
    assert primary_verdict(case.verdicts) == record


def test_selected_and_fallback_records_say_what_was_judged() -> None:
    selected = resolve_answer(SCREEN, answer(["harassment"], ["HB1.a"], "An insult.")).as_verdict()
    assert selected.rationale == "Screen screen v1 named harassment: An insult."
    assert selected.rule_ids == ("HB1.a",) and not selected.violation
    fallback = judge_every_policy(SCREEN, ALL, "the screen's answer could not be used: not JSON")
    assert fallback.outcome is ScreenOutcome.ALL and fallback.policies == ALL
    assert fallback.as_verdict().rationale == "Every policy judged: the screen's answer could not be used: not JSON"


def test_a_long_rationale_is_kept_short() -> None:
    verdict = resolve_answer(SCREEN, answer([], [], "word " * 500))
    assert len(verdict.rationale) <= 500
