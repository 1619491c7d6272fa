"""One definition of the verdict: the schema the servers get is derived from the model that parses the answer."""

from __future__ import annotations

import json
import typing

from bot.classifier import VERDICT_SCHEMA, ModelAnswer, parse_answer


def _walk(node: object) -> typing.Iterator[dict[str, object]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_field_of_the_answer_is_in_the_schema_and_required() -> None:
    fields = list(ModelAnswer.model_fields)
    assert list(VERDICT_SCHEMA["properties"]) == fields
    assert VERDICT_SCHEMA["required"] == fields
    assert VERDICT_SCHEMA["type"] == "object"
    # Strict json_schema servers (vLLM, OpenAI) need both of these.
    assert VERDICT_SCHEMA["additionalProperties"] is False


def test_the_literals_of_the_answer_are_the_enums_of_the_schema() -> None:
    for name, field in ModelAnswer.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal:
            assert VERDICT_SCHEMA["properties"][name]["enum"] == list(typing.get_args(field.annotation)), name
    assert VERDICT_SCHEMA["properties"]["violation"]["enum"] == [0, 1]
    assert VERDICT_SCHEMA["properties"]["confidence"]["enum"] == ["low", "medium", "high"]


def test_the_schema_carries_no_developer_text() -> None:
    # Titles and the docstring would be sent to every server on every call for nothing.
    for node in _walk(VERDICT_SCHEMA):
        assert "title" not in node and "description" not in node


def test_an_answer_in_the_schema_parses_and_one_outside_it_does_not() -> None:
    answer = {"violation": 1, "policy_category": None, "rule_ids": ["H1.a"], "confidence": "low", "rationale": "r"}
    assert parse_answer(json.dumps(answer)).rule_ids == ["H1.a"]
    answer["confidence"] = "certain"
    try:
        parse_answer(json.dumps(answer))
    except ValueError as exc:
        assert "confidence" in str(exc)
    else:
        raise AssertionError("an answer outside the schema parsed")


def test_json_nested_thousands_deep_is_a_malformed_answer_not_a_crash() -> None:
    try:
        parse_answer("[" * 100_000 + "]" * 100_000)
    except ValueError as exc:
        assert "not JSON" in str(exc)
    else:
        raise AssertionError("deep nesting parsed")


def test_a_raw_newline_inside_the_rationale_is_still_an_answer() -> None:
    # Seen from llama-cpp-python's server: its JSON grammar lets the model write one.
    answer = parse_answer(
        '{"violation": 0, "policy_category": null, "rule_ids": [], "confidence": "low",'
        ' "rationale": "fine.\n\tNo rule applies."}'
    )
    assert answer.rationale == "fine.\n\tNo rule applies."
