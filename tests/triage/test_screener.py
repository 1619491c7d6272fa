"""One screen call through the ScreenModel port: once, a retry, and every fallback."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from bot.domain import Effort
from bot.triage.screen_verdict import ScreenOutcome
from bot.triage.screener import ScreenCompletion, screen_message
from bot.triage.screening import ContextBudget, ScreenRequest, load_screen_template, prepare_screen, template_path
from tests.triage.helpers import POLICY_DIR, library_policies, message

SCREEN = prepare_screen(load_screen_template(template_path(POLICY_DIR)), library_policies(), ContextBudget(8192))


class Unavailable(RuntimeError):
    pass


@dataclass
class ScriptedScreen:
    """A ScreenModel that answers from a script and records each request."""

    answers: list[str | Exception]
    requests: list[ScreenRequest] = field(default_factory=list)

    async def complete(self, request: ScreenRequest) -> ScreenCompletion:
        self.requests.append(request)
        reply = self.answers.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return ScreenCompletion(
            content=reply, reasoning="thinking", model="fake", latency_ms=100.0, prompt_tokens=900, completion_tokens=40
        )


def said(policies: list[str], rule_ids: list[str] | None = None) -> str:
    return json.dumps({"policies": policies, "rule_ids": rule_ids or [], "rationale": "because"})


async def test_the_screen_calls_once_and_passes_on_only_the_named_policies() -> None:
    model = ScriptedScreen([said(["harassment"], ["HB1.a"])])
    verdict = await screen_message(model, SCREEN, message("you absolute clown"))
    assert len(model.requests) == 1
    assert model.requests[0].effort is Effort.LOW
    assert verdict.outcome is ScreenOutcome.SELECTED
    assert verdict.policies == ("harassment",)
    assert (verdict.calls, verdict.latency_ms, verdict.prompt_tokens, verdict.model) == (1, 100.0, 900, "fake")


async def test_a_screened_out_message_names_no_policy_to_judge() -> None:
    verdict = await screen_message(ScriptedScreen([said([])]), SCREEN, message("see you tomorrow"))
    assert verdict.screened_out and verdict.policies == ()
    assert verdict.as_verdict().rationale.startswith("Screened out by screen v1")


async def test_an_unusable_answer_is_asked_again_once() -> None:
    model = ScriptedScreen(["I think harassment", said(["harassment"])])
    verdict = await screen_message(model, SCREEN, message("x"))
    assert len(model.requests) == 2
    assert verdict.outcome is ScreenOutcome.SELECTED
    assert (verdict.calls, verdict.latency_ms, verdict.prompt_tokens, verdict.completion_tokens) == (2, 200.0, 1800, 80)


async def test_two_unusable_answers_mean_every_policy_is_judged_and_the_output_is_kept() -> None:
    model = ScriptedScreen(["nope", ""])
    verdict = await screen_message(model, SCREEN, message("x"))
    assert verdict.outcome is ScreenOutcome.ALL
    assert verdict.policies == SCREEN.policy_names
    assert verdict.rationale.startswith("the screen's answer could not be used: empty answer")
    assert verdict.calls == 2 and verdict.raw_output == ""


async def test_a_message_that_does_not_fit_is_not_screened_and_every_policy_is_judged() -> None:
    small = prepare_screen(SCREEN.template, library_policies()[:2], ContextBudget(4600))
    model = ScriptedScreen([])
    verdict = await screen_message(model, small, message("字" * 4000))
    assert model.requests == []
    assert verdict.outcome is ScreenOutcome.ALL and verdict.calls == 0
    assert "every policy is judged instead" in verdict.rationale


async def test_an_unavailable_model_is_not_hidden_the_message_stays_queued() -> None:
    with pytest.raises(Unavailable):
        await screen_message(ScriptedScreen([Unavailable("down")]), SCREEN, message("x"))


async def test_context_goes_into_the_request() -> None:
    model = ScriptedScreen([said([])])
    earlier = message("the earlier line", message_id="m0", at=-5)
    await screen_message(model, SCREEN, message("and now", at=0), [earlier])
    user = model.requests[0].messages[1]["content"]
    assert json.loads(user[user.index("\n\n{") + 2 :])["context"][0]["text"] == "the earlier line"
