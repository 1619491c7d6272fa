"""The hostile corpus: what an attacker sends, for any test to run through its own path.

`tests/data/hostile/corpus.jsonl` holds one case a line: `name`, `kind`, `why`, and either
`value` or `build` (a recipe for inputs too big to store: long texts, deep nesting).
Kinds:
- `text`: a chat message's text (may hold lone surrogates and NUL, as platform JSON can);
- `id`: an identifier (message, author, channel id) an attacker controls;
- `line`: one raw line of `modbot run` / `modbot replay` input, valid or not.

    from tests.helpers_hostile import hostile, hostile_texts
    @pytest.mark.parametrize("case", hostile_texts(), ids=lambda c: c.name)
    def test_x(case): ...
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CORPUS = Path(__file__).resolve().parent / "data" / "hostile" / "corpus.jsonl"
Kind = Literal["text", "id", "line"]


@dataclass(frozen=True)
class HostileCase:
    name: str
    kind: Kind
    why: str
    value: str

    def __repr__(self) -> str:  # pytest ids and failure messages: never megabytes of input
        return f"HostileCase({self.name!r}, {len(self.value):,} chars)"


def deeply_nested_json(depth: int) -> str:
    """A JSON text nested `depth` deep: `[[[...]]]`. Valid JSON; parsers that recurse crash."""
    return "[" * depth + "]" * depth


def _build(recipe: dict[str, Any]) -> str:
    if "nested" in recipe:
        return deeply_nested_json(int(recipe["nested"]))
    unit = str(recipe["repeat"])
    body = (unit * (int(recipe["chars"]) // len(unit) + 1))[: int(recipe["chars"])]
    text = str(recipe.get("prefix", "")) + body + str(recipe.get("then", ""))
    if "and_repeat" in recipe:
        text += (unit * (int(recipe["and_repeat"]) // len(unit) + 1))[: int(recipe["and_repeat"])]
    return text


@functools.cache
def hostile() -> tuple[HostileCase, ...]:
    cases = []
    with CORPUS.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            value = _build(row["build"]) if "build" in row else row["value"]
            cases.append(HostileCase(row["name"], row["kind"], row["why"], value))
    return tuple(cases)


def hostile_of(kind: Kind) -> tuple[HostileCase, ...]:
    return tuple(c for c in hostile() if c.kind == kind)


def hostile_texts() -> tuple[HostileCase, ...]:
    return hostile_of("text")


def hostile_ids() -> tuple[HostileCase, ...]:
    return hostile_of("id")


def hostile_lines() -> tuple[HostileCase, ...]:
    return hostile_of("line")


def hostile_case(name: str) -> HostileCase:
    return next(c for c in hostile() if c.name == name)
