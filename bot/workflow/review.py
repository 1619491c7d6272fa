"""Review of flagged cases: a moderator confirms (optionally deleting or timing out) or dismisses, once."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain import (
    Case,
    CaseStatus,
    DecisionAction,
    Effect,
    EffectKind,
    EffectOutcome,
    EffectRecord,
    Frozen,
    HumanDecision,
    Mode,
    utcnow,
)
from bot.effect_runner import carry_out, policy_briefs, support_only
from bot.platforms import PlatformRouter
from bot.ports import EffectSink
from bot.sanitise import valid_text
from bot.store.ports import CaseQuery, DuplicateDecision, ModerationStore
from bot.workflow import escalation
from bot.workflow.actors import Actor, require_moderator, require_same_server, settings_for, settings_or_default
from bot.workflow.decisions import (
    decision_follow_ups,
    decisions_for,
    explain_conflict,
    load_case,
    refuse_if_decided,
    self_review,
    self_review_entry,
)
from bot.workflow.errors import Refused
from bot.workflow.ports import Clock

REVIEWABLE = (CaseStatus.OPEN, CaseStatus.NEEDS_REVIEW)
MAX_NOTE_CHARS = 1000


class DecisionOutcome(Frozen):
    """A recorded decision, the case as it now stands, and the effects it caused."""

    case: Case
    decision: HumanDecision
    effects: tuple[EffectRecord, ...] = ()
    strikes: int | None = None  # the author's strikes in the ladder's window (ladder on only)
    notes: tuple[str, ...] = ()  # what could not be done, in words


def check_note(note: str) -> str:
    # From a platform's modal or the command line: may hold lone surrogates or NUL, which
    # neither the store nor pydantic's length check accept.
    note = valid_text(note).strip()
    if len(note) > MAX_NOTE_CHARS:
        raise Refused(f"the note is {len(note)} characters; the limit is {MAX_NOTE_CHARS}: shorten it")
    return note


async def case_for(store: ModerationStore, case_id: str, actor: Actor) -> Case:
    """The case, if it belongs to the server where the actor acts."""
    case = await load_case(store, case_id)
    require_same_server(actor, case)
    return case


class Reviews:
    def __init__(
        self, store: ModerationStore, sinks: Mapping[str, EffectSink] | PlatformRouter, clock: Clock = utcnow
    ) -> None:
        self.store = store
        self.sinks = PlatformRouter.of(sinks)
        self.clock = clock

    async def open_cases(self, actor: Actor, limit: int = 50) -> list[Case]:
        """Flagged cases awaiting a moderator in the actor's server, oldest first."""
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "list cases")
        return await self.store.cases.find(
            CaseQuery(platform=settings.platform, server_id=settings.server_id, statuses=REVIEWABLE, limit=limit)
        )

    async def show(self, case_id: str, actor: Actor) -> tuple[Case, list[HumanDecision]]:
        """A case with its verdicts (and the model's reasoning), effects and human decisions."""
        case = await case_for(self.store, case_id, actor)
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        require_moderator(actor, settings, "see cases")
        return case, await decisions_for(self.store, case_id)

    async def confirm(
        self,
        case_id: str,
        actor: Actor,
        *,
        delete: bool = False,
        timeout_minutes: int | None = None,
        note: str = "",
    ) -> DecisionOutcome:
        if timeout_minutes is not None and not 1 <= timeout_minutes <= 40320:
            raise Refused(f"timeout of {timeout_minutes} minutes is out of range: give 1 to 40320 (28 days)")
        return await self._decide(case_id, actor, DecisionAction.CONFIRM, note, delete, timeout_minutes)

    async def dismiss(self, case_id: str, actor: Actor, *, note: str = "") -> DecisionOutcome:
        return await self._decide(case_id, actor, DecisionAction.DISMISS, note, False, None)

    async def _decide(
        self,
        case_id: str,
        actor: Actor,
        action: DecisionAction,
        note: str,
        delete: bool,
        timeout_minutes: int | None,
    ) -> DecisionOutcome:
        note = check_note(note)
        case = await case_for(self.store, case_id, actor)
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        require_moderator(actor, settings, f"{action.value} cases")
        own = self_review(actor, case, settings, f"{action.value}")
        now = self.clock()
        status = CaseStatus.CONFIRMED if action is DecisionAction.CONFIRM else CaseStatus.DISMISSED
        notes: list[str] = []
        strikes: int | None = None
        msg = case.message
        try:
            async with self.store.transaction() as tx:
                await refuse_if_decided(tx, case_id, "review")
                case = await load_case(tx, case_id)  # as of this transaction
                if case.status not in REVIEWABLE:
                    raise Refused(_not_reviewable(case))
                decision = await tx.decisions.add(case_id, action, actor.id, note, now, self_review=own)
                await tx.cases.set_status(case_id, status, actor.id, now)
                wanted: list[Effect] = []
                if action is DecisionAction.CONFIRM:
                    wanted, notes = _requested(case, actor, delete, timeout_minutes)
                    ladder = settings.strike_ladder
                    # A case flagged only for support (self-harm) is never a strike.
                    if ladder.enabled and not support_only(case.verdicts, await policy_briefs(tx, case)):
                        since = now - escalation.window(ladder)
                        strikes = await tx.cases.count_strikes(msg.platform, msg.server_id, msg.author.id, since)
                        step = escalation.step_for(ladder, strikes)
                        if step is not None:
                            wanted += escalation.strike_effects(
                                step, strikes, ladder, shadow=settings.mode is Mode.SHADOW
                            )
                wanted = escalation.merge(wanted)
                decided = case.model_copy(update={"status": status, "decided_by": actor.id, "decided_at": now})
                wanted += decision_follow_ups(decided, settings, actor, action, wanted, note)
                records = await tx.effects.add_intents(case_id, wanted)
                if own:
                    await tx.audit.add(self_review_entry(actor, case, action, decision))
        except DuplicateDecision as exc:
            raise await explain_conflict(self.store, case_id, "review", exc) from exc
        decided = await load_case(self.store, case_id)
        done = await carry_out(self.store, self.sinks, decided, records)
        return DecisionOutcome(
            case=await load_case(self.store, case_id),
            decision=decision,
            effects=tuple(done),
            strikes=strikes,
            notes=tuple(notes),
        )


def _requested(case: Case, actor: Actor, delete: bool, timeout_minutes: int | None) -> tuple[list[Effect], list[str]]:
    effects: list[Effect] = []
    notes: list[str] = []
    reason = f"confirmed by moderator {actor.id}"
    if delete:
        if any(r.effect.kind is EffectKind.DELETE and r.outcome is EffectOutcome.DONE for r in case.effects):
            notes.append("the message was already deleted")
        else:
            effects.append(Effect(kind=EffectKind.DELETE, reason=reason, requested_by=actor.id))
    if timeout_minutes is not None:
        effects.append(
            Effect(kind=EffectKind.TIMEOUT, reason=reason, timeout_minutes=timeout_minutes, requested_by=actor.id)
        )
    return effects, notes


def _not_reviewable(case: Case) -> str:
    if case.status is CaseStatus.APPEALED:
        return f"case {case.id} is under appeal: decide the appeal instead (uphold or overturn)"
    if case.status in (CaseStatus.UPHELD, CaseStatus.OVERTURNED):
        return f"case {case.id} is closed: its appeal was {case.status.value}"
    return f"case {case.id} is {case.status.value}, not flagged: only open cases (or ones needing review) are reviewed"
