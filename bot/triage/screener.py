"""One screen of one message: the call, one retry of an unusable answer, and the fallbacks.

Backend-neutral: a model backend implements `ScreenModel.complete` for a ScreenRequest
(the chat messages, the schema and the effort), exactly as it makes a per-policy call
but with these messages. Whatever goes wrong short of the server being unavailable,
the answer is "judge every policy": the screen only ever saves calls, never a check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.domain import Message
from bot.triage.screen_answer import MalformedScreenAnswer, ScreenAnswer, parse_screen_answer
from bot.triage.screen_verdict import ScreenVerdict, judge_every_policy, resolve_answer
from bot.triage.screening import PreparedScreen, ScreenDoesNotFit, ScreenRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScreenCompletion:
    """What the backend got back for one screen call."""

    content: str
    reasoning: str = ""
    model: str = ""
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ScreenModel(Protocol):
    """The screen's port on a model backend.

    Send `request.messages` with `request.schema` as the answer's format and
    `request.effort` as the reasoning effort; return the final answer and the counters.
    Raise the backend's ModelUnavailable when the server cannot answer now (the message
    stays queued), as for a per-policy call.
    """

    async def complete(self, request: ScreenRequest) -> ScreenCompletion: ...


async def screen_message(
    model: ScreenModel, screen: PreparedScreen, message: Message, context: Sequence[Message] = ()
) -> ScreenVerdict:
    """Ask the screen which policies may apply; retry an unusable answer once, then judge them all."""
    try:
        request = screen.request(message, context)
    except ScreenDoesNotFit as exc:
        return judge_every_policy(screen, screen.policy_names, str(exc))
    completions: list[ScreenCompletion] = []
    answer: ScreenAnswer | None = None
    problem = ""
    for _attempt in range(2):
        completion = await model.complete(request)
        completions.append(completion)
        try:
            answer = parse_screen_answer(completion.content)
            break
        except MalformedScreenAnswer as exc:
            problem = str(exc)
            log.warning("screen: unusable answer (%s)", problem)
    last = completions[-1]
    verdict = (
        resolve_answer(screen, answer)
        if answer is not None
        else judge_every_policy(screen, screen.policy_names, f"the screen's answer could not be used: {problem}")
    )
    return verdict.model_copy(
        update={
            "model": last.model,
            "calls": len(completions),
            "latency_ms": sum(c.latency_ms for c in completions),
            "prompt_tokens": sum(c.prompt_tokens for c in completions),
            "completion_tokens": sum(c.completion_tokens for c in completions),
            "reasoning": last.reasoning,
            "raw_output": last.content,
        }
    )
