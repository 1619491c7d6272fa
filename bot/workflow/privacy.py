"""Data-subject requests: one member's data in a server, exported for them, or erased.

A server admin answers a member's request (the operator, who holds the database file,
may answer it for every server of a platform). The export is everything stored about the
member: their messages and what was decided about them, the notes moderators wrote, their
appeals, and what their id did as a moderator; it leaves out who the moderators were, as
that is other people's data. Erasure removes the member's words and id and keeps every
decision, so that a server can still show what it did and why (rule ids, labels, effects);
what the id did as a moderator is kept (accountability) and said in the result.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from bot.domain import Appeal, Case, EffectRecord, Frozen, HumanDecision, Message, Verdict, utcnow
from bot.store.ports import ERASED_MEMBER, AuditEntry, ErasureCounts, MemberRecords, ModerationStore
from bot.workflow.actors import Actor, require_admin, settings_for
from bot.workflow.errors import Refused
from bot.workflow.ports import Clock

__all__ = ["Erasure", "MemberData", "MemberDataRequests"]

MAX_USER_ID_CHARS = 200


class MemberData(Frozen):
    """One member's data in one server, as JSON for the member (the export of a data-subject request)."""

    platform: str
    server_id: str
    user_id: str
    messages: tuple[dict[str, Any], ...] = ()
    waiting_to_be_judged: tuple[dict[str, Any], ...] = ()
    as_moderator: dict[str, Any] = Field(default_factory=dict)
    named_in_settings: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.messages or self.waiting_to_be_judged or any(self.as_moderator.values()) or self.named_in_settings
        )


class Erasure(Frozen):
    """What an erasure did in one server, and what it kept on purpose."""

    platform: str
    server_id: str
    erased: ErasureCounts
    # Records of what the id did as a moderator or admin: kept, counted here.
    kept_decisions_taken: int = 0
    kept_changes_made: int = 0
    named_in_settings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        e = self.erased
        out = [
            f"{self.platform} server {self.server_id}: erased the member's words and id from {e.cases} case(s),"
            f" {e.appeals} appeal(s) and {e.queued} message(s) waiting to be judged; {e.decisions} decision(s)"
            " on their cases kept without their notes"
        ]
        if self.kept_decisions_taken or self.kept_changes_made:
            out.append(
                f"  kept: {self.kept_decisions_taken} decision(s) and {self.kept_changes_made} change(s) this id made"
                " as a moderator or admin (the server's accountability record)"
            )
        for setting in self.named_in_settings:
            out.append(
                f"  kept: the id is in the setting {setting}; remove it with `modbot settings set` if it should go"
            )
        return out


class MemberDataRequests:
    def __init__(self, store: ModerationStore, clock: Clock = utcnow) -> None:
        self.store = store
        self.clock = clock

    async def servers_holding(self, platform: str, user_id: str) -> list[str]:
        """Servers of the platform with data of this id: for the operator, who holds the database file."""
        return await self.store.privacy.member_servers(platform, _checked(user_id))

    async def export(self, actor: Actor, user_id: str) -> MemberData:
        """Everything stored about the member in the actor's server (admins only)."""
        user_id = _checked(user_id)
        settings = await settings_for(self.store, actor)
        require_admin(actor, settings, "export a member's data")
        records = await self.store.privacy.member_records(settings.platform, settings.server_id, user_id)
        taken = [
            d
            for d in await self.store.decisions.for_server(settings.platform, settings.server_id)
            if d.moderator_id == user_id
        ]
        changes = [
            e for e in await self.store.audit.for_server(settings.platform, settings.server_id) if e.actor == user_id
        ]
        return MemberData(
            platform=settings.platform,
            server_id=settings.server_id,
            user_id=user_id,
            messages=tuple(_message_record(case, records) for case in records.cases),
            waiting_to_be_judged=tuple(_waiting(m) for m in records.queued),
            as_moderator={
                "decisions": [
                    {"case_id": d.case_id, "action": d.action.value, "at": d.at.isoformat(), "note": d.note}
                    for d in taken
                ],
                "changes": [{"action": e.action, "subject": e.subject, "at": e.at.isoformat()} for e in changes],
            },
            named_in_settings=_named_in(settings.model_dump(), user_id),
        )

    async def erase(self, actor: Actor, user_id: str) -> Erasure:
        """Erase the member's words and id in the actor's server (admins only); the decisions stay.

        The erasure is in the server's audit log, without the id it erased.
        """
        user_id = _checked(user_id)
        settings = await settings_for(self.store, actor)
        require_admin(actor, settings, "erase a member's data")
        at = self.clock()
        async with self.store.transaction() as tx:
            counts = await tx.privacy.erase_member(settings.platform, settings.server_id, user_id, at)
            await tx.audit.add(
                AuditEntry(
                    platform=settings.platform,
                    server_id=settings.server_id,
                    actor=actor.id,
                    action="privacy.erase",
                    subject="member",
                    after=json.dumps(
                        {"cases": counts.cases, "appeals": counts.appeals, "queued": counts.queued}, sort_keys=True
                    ),
                    at=at,
                )
            )
        await self.store.privacy.scrub_free_space()
        taken = [
            d
            for d in await self.store.decisions.for_server(settings.platform, settings.server_id)
            if d.moderator_id == user_id
        ]
        changes = [
            e for e in await self.store.audit.for_server(settings.platform, settings.server_id) if e.actor == user_id
        ]
        return Erasure(
            platform=settings.platform,
            server_id=settings.server_id,
            erased=counts,
            kept_decisions_taken=len(taken),
            kept_changes_made=len(changes),
            named_in_settings=_named_in(settings.model_dump(), user_id),
        )


def _checked(user_id: str) -> str:
    user_id = user_id.strip()
    if not user_id:
        raise Refused("give the member's id (--user): their platform user id, as in the bot's messages")
    if user_id == ERASED_MEMBER:
        raise Refused(f"{ERASED_MEMBER} is what erased ids became: there is no one behind it to export or erase")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise Refused(f"a user id is at most {MAX_USER_ID_CHARS} characters")
    return user_id


def _named_in(settings: dict[str, Any], user_id: str) -> tuple[str, ...]:
    return tuple(
        name for name, value in sorted(settings.items()) if isinstance(value, list | tuple) and user_id in value
    )


def _verdict(v: Verdict) -> dict[str, Any]:
    return {
        "policy": v.policy,
        "policy_version": v.policy_version,
        "status": v.status.value,
        "violation": v.violation,
        "rule_ids": list(v.rule_ids),
        "confidence": v.confidence.value,
        "rationale": v.rationale,
        "reasoning": v.reasoning,
        "model_output": v.raw_output,
        "model": v.model,
    }


def _effect(r: EffectRecord) -> dict[str, Any]:
    # The reason and detail are left out: they repeat the rationale or name moderators.
    return {
        "kind": r.effect.kind.value,
        "outcome": r.outcome.value,
        "timeout_minutes": r.effect.timeout_minutes,
        "at": r.updated_at.isoformat(),
    }


def _decision(d: HumanDecision) -> dict[str, Any]:
    # Who decided is the moderator's data, not the member's: a moderator's identity is not disclosed.
    return {"action": d.action.value, "violation": d.violation, "at": d.at.isoformat(), "note": d.note}


def _appeal(a: Appeal) -> dict[str, Any]:
    return {
        "statement": a.statement or None,
        "status": a.status.value,
        "filed_at": a.created_at.isoformat(),
        "decided_at": a.decided_at.isoformat() if a.decided_at else None,
        "note": a.note,
        "second_opinion": [_verdict(v) for v in a.second_opinion],
    }


def _message_record(case: Case, records: MemberRecords) -> dict[str, Any]:
    msg = case.message
    appeal = next((a for a in records.appeals if a.case_id == case.id), None)
    return {
        "case_id": case.id,
        "channel_id": msg.channel_id,
        "thread_of_channel_id": msg.parent_channel_id,
        "message_id": msg.message_id,
        "sent_at": msg.sent_at.isoformat(),
        "edited_at": msg.edited_at.isoformat() if msg.edited_at else None,
        "text": None if case.text_purged_at else msg.text,
        "text_removed_at": case.text_purged_at.isoformat() if case.text_purged_at else None,
        "attachments": [a.name for a in msg.attachments],
        "name_shown": msg.author.name,
        "roles": list(msg.author.roles),
        "status": case.status.value,
        "judged_at": case.created_at.isoformat(),
        "skipped_reason": case.skipped_reason,
        "verdicts": [_verdict(v) for v in case.verdicts],
        "actions": [_effect(r) for r in case.effects],
        "moderator_decisions": [_decision(d) for d in records.decisions if d.case_id == case.id],
        "appeal": _appeal(appeal) if appeal else None,
    }


def _waiting(message: Message) -> dict[str, Any]:
    return {
        "channel_id": message.channel_id,
        "message_id": message.message_id,
        "sent_at": message.sent_at.isoformat(),
        "text": message.text,
        "attachments": [a.name for a in message.attachments],
    }
