"""Review of flagged cases: a moderator confirms (optionally deleting or timing out) or dismisses, once."""

from __future__ import annotations

import sqlite3
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
    Mode,
    utcnow,
)
from bot.effect_runner import carry_out
from bot.ports import EffectSink
from bot.store import SqliteStore
from bot.workflow import escalation
from bot.workflow._acting import add_intents
from bot.workflow.actors import Actor, require_moderator, settings_or_default
from bot.workflow.decisions import (
    HumanDecision,
    decisions_for,
    explain_conflict,
    first_decision,
    insert_decision,
    refuse_if_decided,
)
from bot.workflow.errors import NotFound, Refused
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


async def load_case(store: SqliteStore, case_id: str) -> Case:
    case = await store.get_case(case_id)
    if case is None:
        raise NotFound(f"no case {case_id!r}: check the id against the list of open cases")
    return case


def check_note(note: str) -> str:
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise Refused(f"the note is {len(note)} characters; the limit is {MAX_NOTE_CHARS}: shorten it")
    return note


class Reviews:
    def __init__(self, store: SqliteStore, sinks: Mapping[str, EffectSink], clock: Clock = utcnow) -> None:
        self.store = store
        self.sinks = dict(sinks)
        self.clock = clock

    async def open_cases(self, platform: str, server_id: str, actor: Actor, limit: int = 50) -> list[Case]:
        """Flagged cases awaiting a moderator, oldest first."""
        settings = await settings_or_default(self.store, platform, server_id)
        require_moderator(actor, settings, "list cases")
        found: list[Case] = []
        async for case in self.store.iter_cases(
            "c.server_id = ? AND c.status IN (?, ?)", (server_id, *(s.value for s in REVIEWABLE))
        ):
            found.append(case)
            if len(found) >= limit:
                break
        return found

    async def show(self, case_id: str, actor: Actor) -> tuple[Case, list[HumanDecision]]:
        """A case with its verdicts (and the model's reasoning), effects and human decisions."""
        case = await load_case(self.store, case_id)
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
        case = await load_case(self.store, case_id)
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        require_moderator(actor, settings, f"{action.value} cases")
        now = self.clock()
        at = now.isoformat()
        status = CaseStatus.CONFIRMED if action is DecisionAction.CONFIRM else CaseStatus.DISMISSED
        notes: list[str] = []
        strikes: int | None = None
        try:
            async with self.store.transaction() as conn:
                await refuse_if_decided(conn, case_id, "review")
                case = await load_case(self.store, case_id)  # as of this transaction
                if case.status not in REVIEWABLE:
                    raise Refused(_not_reviewable(case))
                decision_id = await insert_decision(conn, case_id, case.message.server_id, action, actor.id, note, at)
                await conn.execute(
                    "UPDATE cases SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                    (status.value, actor.id, at, case_id),
                )
                wanted: list[Effect] = []
                if action is DecisionAction.CONFIRM:
                    wanted, notes = _requested(case, actor, delete, timeout_minutes)
                    ladder = settings.strike_ladder
                    if ladder.enabled:
                        strikes = await escalation.count_strikes(
                            conn, case.message.server_id, case.message.author.id, now, ladder.window_days
                        )
                        step = escalation.step_for(ladder, strikes)
                        if step is not None:
                            wanted += escalation.strike_effects(
                                step, strikes, ladder, shadow=settings.mode is Mode.SHADOW
                            )
                records = await add_intents(conn, case_id, escalation.merge(wanted), at)
        except sqlite3.IntegrityError as exc:
            raise await explain_conflict(self.store, case_id, "review", exc) from exc
        decided = await load_case(self.store, case_id)
        done = await carry_out(self.store, self.sinks, decided, records)
        decision = await first_decision(self.store.connection, case_id, "review")
        assert decision is not None and decision.id == decision_id
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
