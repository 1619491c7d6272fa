"""Human decisions on cases (confirm, dismiss, uphold, overturn): recorded once per stage, each a label.

What every decision shares, whichever surface it came from: the server's tenancy and
self-review rules, and the effects that carry the decision to the flag post and the author.
"""

from __future__ import annotations

from bot.domain import (
    Case,
    ConfirmNotice,
    DecisionAction,
    Effect,
    EffectKind,
    EffectOutcome,
    HumanDecision,
    ServerSettings,
    primary_verdict,
)
from bot.store.ports import AuditEntry, ModerationStore, Repositories, Stage
from bot.workflow.actors import Actor, is_admin
from bot.workflow.errors import AlreadyDecided, NotAuthorised, NotFound

__all__ = ["HumanDecision", "decisions_for", "load_case"]

# Effects that notify the author; one of them is enough for a case.
_AUTHOR_NOTICES = (EffectKind.NOTIFY_AUTHOR,)
_ACTIONS = (EffectKind.DELETE, EffectKind.TIMEOUT)
_PAST = {
    DecisionAction.CONFIRM: "confirmed",
    DecisionAction.DISMISS: "dismissed",
    DecisionAction.UPHOLD: "upheld on appeal",
    DecisionAction.OVERTURN: "overturned on appeal",
}


async def load_case(repos: Repositories, case_id: str) -> Case:
    case = await repos.cases.get(case_id)
    if case is None:
        raise NotFound(f"no case {case_id!r}: check the id against the list of open cases")
    return case


async def decisions_for(repos: Repositories, case_id: str) -> list[HumanDecision]:
    return await repos.decisions.for_case(case_id)


def already_decided(first: HumanDecision) -> AlreadyDecided:
    what = "the review" if first.action.stage == "review" else "the appeal"
    return AlreadyDecided(first.case_id, first.action.value, first.moderator_id, first.at, what)


async def refuse_if_decided(repos: Repositories, case_id: str, stage: Stage) -> None:
    first = await repos.decisions.first(case_id, stage)
    if first is not None:
        raise already_decided(first)


async def explain_conflict(store: ModerationStore, case_id: str, stage: Stage, exc: Exception) -> Exception:
    """After the store refused a second decision: who decided first (or the error itself)."""
    first = await store.decisions.first(case_id, stage)
    return already_decided(first) if first is not None else exc


def self_review(actor: Actor, case: Case, settings: ServerSettings, what: str) -> bool:
    """True when an admin decides about their own message; a moderator who is not an admin may not.

    A server with a single moderator is never stuck: its admin can decide, and the audit says so.
    """
    if actor.id != case.message.author.id:
        return False
    if is_admin(actor, settings):
        return True
    raise NotAuthorised(
        f"{actor.id} may not {what} case {case.id}: it is about their own message. Another moderator "
        "decides it, or a server admin (the audit marks an admin's decision on their own message)."
    )


def self_review_entry(actor: Actor, case: Case, action: DecisionAction, decision: HumanDecision) -> AuditEntry:
    return AuditEntry(
        platform=case.message.platform,
        server_id=case.message.server_id,
        actor=actor.id,
        action="case.self_review",
        subject=f"case:{case.id}",
        before=case.status.value,
        after=action.value,
        at=decision.at,
    )


def decision_follow_ups(
    case: Case, settings: ServerSettings, actor: Actor, action: DecisionAction, wanted: list[Effect], note: str
) -> list[Effect]:
    """The effects that carry a decision to every surface, after those the moderator asked for.

    UPDATE_FLAG edits the flag post through its stored reference (who decided what, buttons
    disabled), wherever the decision was taken. NOTIFY_AUTHOR tells the author of a
    confirmation as the server's `notify_author_on_confirm` says, never twice.
    """
    decided_by = f"{_PAST[action]} by {actor.id}"
    follow: list[Effect] = []
    flagged = any(r.effect.kind is EffectKind.FLAG and r.reference for r in case.effects)
    if flagged:
        follow.append(Effect(kind=EffectKind.UPDATE_FLAG, reason=note or decided_by, requested_by=actor.id))
    if action is DecisionAction.CONFIRM and _tell_author(case, settings, wanted):
        main = primary_verdict(case.verdicts)
        follow.append(
            Effect(
                kind=EffectKind.NOTIFY_AUTHOR,
                policy=main.policy if main else None,
                rule_ids=case.rule_ids,
                reason=main.rationale if main and main.violation else decided_by,
                requested_by=actor.id,
            )
        )
    return follow


def _tell_author(case: Case, settings: ServerSettings, wanted: list[Effect]) -> bool:
    told = any(
        r.effect.kind in _AUTHOR_NOTICES and r.outcome in (EffectOutcome.DONE, EffectOutcome.PENDING)
        for r in case.effects
    )
    if told or any(e.kind in _AUTHOR_NOTICES for e in wanted):
        return False
    if settings.notify_author_on_confirm is ConfirmNotice.ALWAYS:
        return True
    acted = any(e.kind in _ACTIONS and not e.shadow for e in wanted)
    return settings.notify_author_on_confirm is ConfirmNotice.WITH_ACTION and acted
