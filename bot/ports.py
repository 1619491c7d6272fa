"""The core's ports: what it needs from a model and from a platform, as small Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.classifier.prompt import ClassificationRequest
from bot.domain import (
    Case,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    Message,
    Policy,
    ServerSettings,
    Verdict,
)
from bot.notices import Notice
from bot.store.sqlite import LivePolicy, QueueItem


class Classifier(Protocol):
    """Judges one message against one policy."""

    async def classify(self, request: ClassificationRequest) -> Verdict: ...


class EffectSink(Protocol):
    """A platform adapter's side of an effect: carry it out and say what happened.

    `supported_effects` is what this platform can do with this process's configuration
    (Slack cannot time out; it deletes only with an admin user token). Settings that ask
    for anything else are refused before a message is judged. An effect the sink cannot
    do at run time is returned UNSUPPORTED: it never pretends. A result may carry a
    platform reference (the flag post), stored with the effect for later updates.
    """

    platform: str

    @property
    def supported_effects(self) -> frozenset[EffectKind]: ...

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult: ...


class ModChannel(Protocol):
    """Posts a notice that belongs to no single case's effects (appeals, reminders, digests, health).

    Returns what happened; an adapter without a mod channel for the server says UNSUPPORTED.
    """

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult: ...


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
        self,
        case_id: str,
        seq: int,
        outcome: EffectOutcome,
        detail: str = "",
        finish_queue_id: int | None = None,
        reference: str | None = None,
    ) -> None: ...

    async def policy_versions(self, server_id: str, name: str) -> list[Policy]: ...

    async def finish_queue_item(self, queue_id: int) -> None: ...

    async def cases_with_unfinished_effects(self) -> list[str]: ...

    async def get_case(self, case_id: str) -> Case | None: ...
