"""The core's ports: what it needs from a model and from a platform, as small Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.classifier.prompt import ClassificationRequest
from bot.domain import Case, Effect, EffectOutcome, EffectResult, Message, ServerSettings, Verdict
from bot.store.sqlite import LivePolicy, QueueItem


class Classifier(Protocol):
    """Judges one message against one policy."""

    async def classify(self, request: ClassificationRequest) -> Verdict: ...


class EffectSink(Protocol):
    """A platform adapter's side of an effect: carry it out and say what happened.

    An adapter that cannot do an effect returns UNSUPPORTED; it never pretends.
    """

    platform: str

    async def execute(self, effect: Effect, case: Case) -> EffectResult: ...


class ModerationStore(Protocol):
    """What the pipeline needs of persistence; SqliteStore is the embedded implementation."""

    async def enqueue(self, message: Message) -> int | None: ...

    async def open_queue_items(self) -> list[QueueItem]: ...

    async def get_settings(self, server_id: str) -> ServerSettings | None: ...

    async def live_policies(self, server_id: str) -> list[LivePolicy]: ...

    async def record_decision(
        self, queue_id: int, case: Case, effects: Sequence[tuple[Effect, EffectOutcome]]
    ) -> None: ...

    async def set_effect_outcome(
        self, case_id: str, seq: int, outcome: EffectOutcome, detail: str = "", finish_queue_id: int | None = None
    ) -> None: ...

    async def finish_queue_item(self, queue_id: int) -> None: ...

    async def cases_with_unfinished_effects(self) -> list[str]: ...

    async def get_case(self, case_id: str) -> Case | None: ...
