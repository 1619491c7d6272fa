"""The model's answer: one pydantic model gives both the JSON schema sent to the server and the parser."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class ModelAnswer(BaseModel):
    """The JSON the policy asks for. Extra keys are ignored; missing or wrong ones are not."""

    # The schema says no other keys, so that a server enforcing it (strict json_schema, a
    # llama.cpp grammar) never lets the model wander; the parser still tolerates extras
    # from a server that does not enforce it.
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})

    violation: Literal[0, 1]
    policy_category: str | None
    rule_ids: list[str]
    confidence: Literal["low", "medium", "high"]
    rationale: str

    @field_validator("violation", mode="before")
    @classmethod
    def _bool_is_a_flag(cls, value: object) -> object:
        return int(value) if isinstance(value, bool) else value


class _UntitledSchema(GenerateJsonSchema):
    """Pydantic's schema without titles and the docstring: written for developers, not for the server."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def generate(self, schema: Any, mode: Any = "validation") -> JsonSchemaValue:
        generated = super().generate(schema, mode)
        generated.pop("title", None)
        generated.pop("description", None)
        return generated


# The answer's shape, sent as Ollama's `format` or an OpenAI-compatible `response_format`,
# so the server constrains the final answer. Derived from ModelAnswer: one definition.
VERDICT_SCHEMA: dict[str, Any] = ModelAnswer.model_json_schema(schema_generator=_UntitledSchema)


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
        # strict=False: a raw newline or tab inside the rationale is still an unambiguous
        # answer (llama.cpp's JSON grammar lets the model write one); asking again for it
        # would cost a whole model call.
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise MalformedAnswer(f"not JSON: {exc.msg} at character {exc.pos}") from exc
    except RecursionError as exc:  # JSON nested thousands deep: no verdict is shaped like that
        raise MalformedAnswer("not JSON: nested too deeply") from exc
    try:
        answer = ModelAnswer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
        raise MalformedAnswer(f"not the verdict schema: {problems}") from exc
    # A violation that names its category but lists no rules still cites that rule.
    if answer.violation and not answer.rule_ids and answer.policy_category:
        answer = answer.model_copy(update={"rule_ids": [answer.policy_category]})
    return answer
