"""The screen's answer: its pydantic model, the JSON schema derived from it, and parsing."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class ScreenAnswer(BaseModel):
    """What the screening template asks for. Extra keys are ignored; wrong ones are not."""

    model_config = ConfigDict(extra="ignore")

    policies: list[str]
    rule_ids: list[str]
    rationale: str

    @model_validator(mode="before")
    @classmethod
    def _rule_ids_may_be_left_out(cls, data: Any) -> Any:
        # The policy names are what matter; a small model that forgets the rule ids has
        # still answered. The schema sent to the server keeps them required.
        if isinstance(data, dict) and "rule_ids" not in data:
            return {**data, "rule_ids": []}
        return data


def _without_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_titles(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_without_titles(v) for v in node]
    return node


def screen_answer_schema() -> dict[str, Any]:
    """The JSON schema for the server's grammar, derived from ScreenAnswer: one definition."""
    schema: dict[str, Any] = _without_titles(ScreenAnswer.model_json_schema())
    schema.pop("description", None)  # the class docstring is for readers, not for the grammar
    schema["additionalProperties"] = False
    return schema


SCREEN_SCHEMA: dict[str, Any] = screen_answer_schema()


class MalformedScreenAnswer(ValueError):
    """The screen's output is not JSON, or not the screen's schema."""


def parse_screen_answer(content: str | None) -> ScreenAnswer:
    if not content or not content.strip():
        raise MalformedScreenAnswer("empty answer (the reasoning may have used the whole output budget)")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedScreenAnswer(f"not JSON: {exc.msg} at character {exc.pos}") from exc
    try:
        return ScreenAnswer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
        raise MalformedScreenAnswer(f"not the screen's schema: {problems}") from exc
