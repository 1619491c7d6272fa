"""The shadow-evaluation report of one server, for its moderators."""

from __future__ import annotations

from datetime import datetime

from bot.evaluation.shadow import ShadowReport, shadow_report
from bot.store.ports import ModerationStore
from bot.workflow.actors import Actor, require_moderator, settings_for


class Reports:
    def __init__(self, store: ModerationStore) -> None:
        self.store = store

    async def shadow(self, actor: Actor, since: datetime | None = None) -> ShadowReport:
        """The model's verdicts against the moderators' decisions in the actor's server."""
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "see the shadow evaluation")
        return await shadow_report(self.store, settings.platform, settings.server_id, since)
