"""The hostile corpus through every path this package owns: echoes, the judged view, keys, chunks."""

from __future__ import annotations

import json
import re

import pytest

from bot.sanitise import neutralise_control_tokens, safe_echo, safe_inline
from bot.text import prepare_for_judging
from bot.text._unicode import BIDI_CONTROL, DEFAULT_IGNORABLE
from tests.helpers_hostile import (
    HostileCase,
    deeply_nested_json,
    hostile,
    hostile_case,
    hostile_ids,
    hostile_lines,
    hostile_texts,
)

# What Discord and Slack parse into a ping, a labelled link or a code block, written from
# their documentation rather than from bot.sanitise.
PINGS = [
    re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE),
    re.compile(r"<@[!&]?\d+>"),
    re.compile(r"<[!@#][^>]*>"),
    re.compile(r"(?<![\w@\u200b])@\w"),
]
LABELLED_LINKS = [re.compile(r"<[a-z][a-z0-9+.-]*:[^>|]*\|", re.IGNORECASE), re.compile(r"\]\(")]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
LINE_BREAK = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
CONTROL_TOKEN = re.compile(r"<\|[^|]*\|>|<\|")

ECHOED = hostile_texts() + hostile_ids()


def test_the_corpus_holds_what_an_attacker_sends() -> None:
    names = [c.name for c in hostile()]
    assert len(names) == len(set(names))
    assert all(c.why.strip() for c in hostile())
    expected = {
        "lone-high-surrogate", "nul", "line-deep-nesting", "line-broken-json", "line-wrong-types",
        "harmony-start", "harmony-channel", "harmony-end", "chatml-im-start", "llama-inst", "ignore-the-policy",
        "discord-everyone", "discord-here", "discord-user", "discord-role", "slack-channel", "slack-here",
        "slack-subteam", "slack-user", "code-fence-breakout", "markdown-masked-link", "bidi-override",
        "zero-width-run", "cyrillic-lookalikes", "over-cap-60k", "id-newline-forgery",
    }  # fmt: skip
    assert expected <= set(names)
    assert any(len(c.value) > 40_000 for c in hostile_texts())


def test_built_inputs_are_built_not_stored() -> None:
    assert len(hostile_case("line-deep-nesting").value) == 200_000
    assert hostile_case("over-cap-60k").value.endswith("you worthless idiot, I will find you")
    with pytest.raises(RecursionError):
        json.loads(deeply_nested_json(100_000))  # why `run` must catch more than JSONDecodeError


def test_intake_lines_are_raw_lines() -> None:
    lines = {c.name: c.value for c in hostile_lines()}
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines["line-broken-json"])
    assert json.loads(lines["line-lone-surrogate"])["text"] == "bad \ud800"
    assert all("\n" not in value for value in lines.values())


@pytest.mark.parametrize("limit", [1, 40, 2_000])
@pytest.mark.parametrize("case", ECHOED, ids=lambda c: c.name)
def test_safe_echo_quotes_anything_harmlessly(case: HostileCase, limit: int) -> None:
    out = safe_echo(case.value, limit)
    out.encode("utf-8")  # no lone surrogate survives
    assert len(out) <= limit
    for pattern in (*PINGS, *LABELLED_LINKS, CONTROL, BIDI_CONTROL):
        assert not pattern.search(out), (pattern.pattern, out[:200])
    assert "```" not in out


@pytest.mark.parametrize("case", ECHOED, ids=lambda c: c.name)
def test_safe_inline_keeps_to_one_line(case: HostileCase) -> None:
    out = safe_inline(case.value, 300)
    assert not LINE_BREAK.search(out) and "\t" not in out
    assert len(out) <= 300
    for pattern in PINGS:
        assert not pattern.search(out)


@pytest.mark.parametrize("case", hostile_texts(), ids=lambda c: c.name)
def test_control_tokens_never_reach_the_model(case: HostileCase) -> None:
    assert not CONTROL_TOKEN.search(neutralise_control_tokens(case.value))
    judged = prepare_for_judging(case.value)
    for part in judged.parts:
        for text in (part.text, part.original or ""):
            text.encode("utf-8")
            assert not CONTROL_TOKEN.search(text)
            assert "[INST]" not in text and "<start_of_turn>" not in text
        assert not DEFAULT_IGNORABLE.search(part.text)
        assert not CONTROL.search(part.text)


@pytest.mark.parametrize("case", hostile_texts(), ids=lambda c: c.name)
def test_abuse_in_a_hostile_text_reaches_a_part(case: HostileCase) -> None:
    judged = prepare_for_judging(case.value)
    if "worthless idiot" in case.value:
        assert any("worthless idiot" in part.text for part in judged.parts)
    assert judged.keys.clean and judged.keys.violation
    assert "worthless" not in judged.record
