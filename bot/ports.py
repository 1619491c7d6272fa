"""The core's ports: what it needs from a model and from a platform, as small Protocols.

Persistence has its own ports in `bot.store.ports` (re-exported here as ModerationStore).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bot.domain import Effect, EffectContext, EffectKind, EffectResult, ServerSettings, Verdict
from bot.notices import Notice
from bot.store.ports import ModerationStore

if TYPE_CHECKING:
    # The model client's request type: only named here, so that a port does not load the client.
    from bot.classifier.prompt import ClassificationRequest


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


class ModelProbe(Protocol):
    """Asks the model server whether it can answer: None if so, else what is wrong."""

    async def check(self) -> str | None: ...


__all__ = ["Classifier", "EffectSink", "ModChannel", "ModelProbe", "ModerationStore"]
