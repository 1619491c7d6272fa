"""Human decisions as labelled examples: the text where retained, the policy, the model's verdict, the label."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bot.domain import Appeal, Case, HumanDecision, primary_verdict
from bot.store.ports import ModerationStore
from bot.workflow.actors import Actor, require_moderator, settings_for


class Labels:
    def __init__(self, store: ModerationStore) -> None:
        self.store = store

    async def export(self, actor: Actor) -> AsyncIterator[dict[str, Any]]:
        """The labels of the actor's server, oldest first."""
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "export labels")
        decisions = await self.store.decisions.for_server(settings.platform, settings.server_id)
        async for record in self._records(decisions):
            yield record

    async def export_every_server(self) -> AsyncIterator[dict[str, Any]]:
        """Every server's labels: for the operator who holds the database file (`modbot export --labels`)."""
        async for record in self._records(await self.store.decisions.every()):
            yield record

    async def _records(self, decisions: list[HumanDecision]) -> AsyncIterator[dict[str, Any]]:
        cases: dict[str, Case] = {}
        for decision in decisions:
            if decision.case_id not in cases:
                found = await self.store.cases.get(decision.case_id)
                if found is None:  # cannot happen: a decision is about a case
                    continue
                cases[decision.case_id] = found
            appeal = await self.store.appeals.for_case(decision.case_id) if decision.action.stage == "appeal" else None
            yield label_record(cases[decision.case_id], decision, appeal)


def label_record(case: Case, decision: HumanDecision, appeal: Appeal | None) -> dict[str, Any]:
    """One label. Author ids are left out: labels need no identity.

    Once retention has purged the case, the label keeps the rule ids and the decisions but
    no words that may quote the message: no text, rationale, reasoning or appeal statement.
    """
    main = primary_verdict(case.verdicts)
    purged = case.text_purged_at is not None
    record: dict[str, Any] = {
        "decision_id": decision.id,
        "case_id": case.id,
        "platform": case.message.platform,
        "server_id": case.message.server_id,
        "channel_id": case.message.channel_id,
        "message_id": case.message.message_id,
        "text": None if purged else case.message.text,
        "text_purged_at": case.text_purged_at.isoformat() if case.text_purged_at else None,
        "policy": main.policy if main else None,
        "policy_version": main.policy_version if main else None,
        "model_verdict": main.summary() if main else None,
        "verdicts": [v.summary() for v in case.verdicts],
        "label": {
            "action": decision.action.value,
            "violation": decision.violation,
            "moderator_id": decision.moderator_id,
            "note": decision.note,
            "at": decision.at.isoformat(),
            "self_review": decision.self_review,
        },
    }
    if appeal is not None:
        record["appeal"] = {
            "statement": None if purged or not appeal.statement else appeal.statement,
            "second_opinion": [v.summary() for v in appeal.second_opinion],
        }
    return record
