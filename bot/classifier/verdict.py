"""Parsing the model's final answer into a validated verdict."""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class ModelAnswer(BaseModel):
    """The JSON the policy asks for. Extra keys are ignored; missing or wrong ones are not."""

    model_config = ConfigDict(extra="ignore")

    violation: Literal[0, 1]
    policy_category: str | None
    rule_ids: list[str]
    confidence: Literal["low", "medium", "high"]
    rationale: str

    @field_validator("violation", mode="before")
    @classmethod
    def _bool_is_a_flag(cls, value: object) -> object:
        return int(value) if isinstance(value, bool) else value


class MalformedAnswer(ValueError):
    """The model's output is not JSON, or not the verdict schema."""


def parse_answer(content: str | None) -> ModelAnswer:
    if not content or not content.strip():
        raise MalformedAnswer("empty answer (the reasoning may have used the whole output budget)")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedAnswer(f"not JSON: {exc.msg} at character {exc.pos}") from exc
    try:
        answer = ModelAnswer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
        raise MalformedAnswer(f"not the verdict schema: {problems}") from exc
    # A violation that names its category but lists no rules still cites that rule.
    if answer.violation and not answer.rule_ids and answer.policy_category:
        answer = answer.model_copy(update={"rule_ids": [answer.policy_category]})
    return answer
