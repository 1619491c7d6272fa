from __future__ import annotations

import pytest

from bot.classifier import MalformedAnswer, parse_answer

GOOD = '{"violation": 1, "policy_category": "HB1.a", "rule_ids": ["HB1.a"], "confidence": "high", "rationale": "r"}'


def test_valid_answer() -> None:
    a = parse_answer(GOOD)
    assert (a.violation, a.policy_category, a.rule_ids, a.confidence) == (1, "HB1.a", ["HB1.a"], "high")


def test_safe_answer_with_null_category() -> None:
    a = parse_answer('{"violation": 0, "policy_category": null, "rule_ids": [], "confidence": "low", "rationale": ""}')
    assert a.violation == 0 and a.policy_category is None


def test_code_fence_and_bool_flag_are_tolerated() -> None:
    a = parse_answer("```json\n" + GOOD.replace('"violation": 1', '"violation": true') + "\n```")
    assert a.violation == 1


def test_category_fills_missing_rule_ids() -> None:
    a = parse_answer(
        '{"violation": 1, "policy_category": "SP1.a", "rule_ids": [], "confidence": "medium", "rationale": "x"}'
    )
    assert a.rule_ids == ["SP1.a"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("I think this is fine", "not JSON"),
        (
            '{"violation": 2, "policy_category": null, "rule_ids": [], "confidence": "high", "rationale": ""}',
            "violation",
        ),
        (
            '{"violation": 1, "policy_category": "X", "rule_ids": [], "confidence": "very", "rationale": ""}',
            "confidence",
        ),
        ('{"violation": 1, "rule_ids": [], "confidence": "high", "rationale": ""}', "policy_category"),
        ('["violation", 1]', "schema"),
    ],
)
def test_malformed_answers_are_refused_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(MalformedAnswer, match=why):
        parse_answer(raw)
