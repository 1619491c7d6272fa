"""The core's ports: what it needs from a model and from a platform, as small Protocols."""

from __future__ import annotations

from typing import Protocol

from bot.classifier.prompt import ClassificationRequest
from bot.domain import Case, Effect, EffectResult, Verdict


class Classifier(Protocol):
    """Judges one message against one policy."""

    async def classify(self, request: ClassificationRequest) -> Verdict: ...


class EffectSink(Protocol):
    """A platform adapter's side of an effect: carry it out and say what happened.

    An adapter that cannot do an effect returns UNSUPPORTED; it never pretends.
    """

    platform: str

    async def execute(self, effect: Effect, case: Case) -> EffectResult: ...
