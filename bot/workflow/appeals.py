"""Appeals: the author appeals once, the model gives a second opinion at high effort, a moderator decides."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.classifier import ClassificationRequest
from bot.domain import (
    AppealStatus,
    Case,
    CaseStatus,
    DecisionAction,
    Effect,
    EffectKind,
    EffectOutcome,
    Effort,
    Mode,
    Policy,
    VerdictStatus,
    utcnow,
)
from bot.effect_runner import carry_out
from bot.notices import AppealFiled, AppealView
from bot.ports import Classifier, EffectSink
from bot.store import SqliteStore
from bot.store.sqlite import verdict_from_row
from bot.workflow import escalation
from bot.workflow._acting import add_intents
from bot.workflow.actors import Actor, require_moderator, settings_or_default
from bot.workflow.decisions import (
    decisions_for,
    explain_conflict,
    first_decision,
    insert_decision,
    refuse_if_decided,
)
from bot.workflow.errors import NotAuthorised, NotFound, Refused
from bot.workflow.ports import Clock, ModChannel
from bot.workflow.review import DecisionOutcome, check_note, load_case

log = logging.getLogger(__name__)

MAX_STATEMENT_CHARS = 1000
# Only a case that holds something against the author can be appealed.
APPEALABLE = (CaseStatus.OPEN, CaseStatus.NEEDS_REVIEW, CaseStatus.CONFIRMED)

_VERDICT_COLUMNS = (
    "policy, policy_version, status, violation, policy_category, rule_ids, confidence, rationale, reasoning,"
    " raw_output, model, effort, latency_ms, prompt_tokens, completion_tokens, reused"
)


class Appeals:
    def __init__(
        self,
        store: SqliteStore,
        classifier: Classifier,
        sinks: Mapping[str, EffectSink],
        mod_channel: ModChannel | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.sinks = dict(sinks)
        self.mod_channel = mod_channel
        self.clock = clock

    # ------------------------------------------------------------ filing

    async def file(self, case_id: str, actor: Actor, statement: str) -> AppealView:
        """Record the author's appeal, ask the model again at high effort, and tell the moderators."""
        statement = statement.strip()
        if not statement:
            raise Refused("the appeal needs a statement: say why the decision is wrong (up to 1,000 characters)")
        if len(statement) > MAX_STATEMENT_CHARS:
            raise Refused(
                f"the statement is {len(statement)} characters; the limit is {MAX_STATEMENT_CHARS}: shorten it"
            )
        case = await load_case(self.store, case_id)
        if actor.id != case.message.author.id:
            raise NotAuthorised(f"{actor.id} may not appeal case {case_id}: only the author of the message may")
        at = self.clock().isoformat()
        try:
            async with self.store.transaction() as conn:
                async with conn.execute("SELECT created_at FROM appeals WHERE case_id = ?", (case_id,)) as cur:
                    earlier = await cur.fetchone()
                if earlier is not None:
                    raise _appealed_before(case_id, earlier[0])
                case = await load_case(self.store, case_id)
                if case.status not in APPEALABLE:
                    raise Refused(
                        f"case {case_id} is {case.status.value}: only a flagged or confirmed case can be appealed"
                    )
                await conn.execute(
                    "INSERT INTO appeals (case_id, author_id, statement, status, created_at)"
                    " VALUES (?, ?, ?, 'pending', ?)",
                    (case_id, actor.id, statement, at),
                )
                await conn.execute("UPDATE cases SET status = ? WHERE id = ?", (CaseStatus.APPEALED.value, case_id))
        except sqlite3.IntegrityError as exc:  # a concurrent appeal won the unique index
            row = await self.store.fetchone("SELECT created_at FROM appeals WHERE case_id = ?", (case_id,))
            raise _appealed_before(case_id, row[0] if row else at) from exc
        view = await self._second_opinion(case_id)
        await self._tell_moderators(case, view)
        return view

    async def second_opinion(self, case_id: str, actor: Actor) -> AppealView:
        """Ask the model again if the second opinion is missing (the model was down when the appeal came)."""
        case = await load_case(self.store, case_id)
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        require_moderator(actor, settings, "request a second opinion")
        return await self._second_opinion(case_id)

    async def _second_opinion(self, case_id: str) -> AppealView:
        view = await self._view(case_id)
        if view.second_opinion or view.appeal_status is not AppealStatus.PENDING:
            return view
        case = await load_case(self.store, case_id)
        if view.text is None:
            return view.model_copy(update={"second_opinion_error": "the message text is no longer retained"})
        policies = await self._policies_judged(case)
        try:
            verdicts = [
                await self.classifier.classify(
                    ClassificationRequest(policy, case.message, Effort.HIGH, (), appeal_statement=view.statement)
                )
                for policy in policies
            ]
        except Exception as exc:  # the appeal stands; the second opinion can be asked for again
            log.warning("second opinion for case %s failed: %s", case_id, type(exc).__name__)
            return view.model_copy(update={"second_opinion_error": f"{type(exc).__name__}: {exc}"[:300]})
        await self.store.add_verdicts(case_id, verdicts, view.appeal_id)
        return await self._view(case_id)

    async def _policies_judged(self, case: Case) -> list[Policy]:
        """The policy versions that flagged the case (every one that judged it, if none flagged)."""
        judged = [v for v in case.verdicts if v.violation or v.status is VerdictStatus.NEEDS_REVIEW]
        judged = judged or list(case.verdicts)
        server = case.message.server_id
        found: list[Policy] = []
        for verdict in judged:
            versions = await self.store.policy_versions(server, verdict.policy)
            match = next((p for p in versions if p.version == verdict.policy_version), None)
            if match is not None:
                found.append(match)
        if not found:  # decided without a usable verdict: judge by what is live now
            found = [lp.policy for lp in await self.store.live_policies(server) if lp.enabled]
        return found

    async def _tell_moderators(self, case: Case, view: AppealView) -> None:
        if self.mod_channel is None:
            return
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        try:
            await self.mod_channel.post(settings, AppealFiled(appeal=view))
        except Exception as exc:  # the appeal is recorded; the reminder job will bring it up again
            log.warning("could not post appeal of case %s to the mod channel: %s", case.id, type(exc).__name__)

    # ------------------------------------------------------------ reading

    async def view(self, case_id: str, actor: Actor) -> AppealView:
        """The appeal with everything needed to decide it: for moderators and for the author."""
        case = await load_case(self.store, case_id)
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        if actor.id != case.message.author.id:
            require_moderator(actor, settings, "see appeals")
        return await self._view(case_id)

    async def waiting(self, platform: str, server_id: str, actor: Actor) -> list[AppealView]:
        settings = await settings_or_default(self.store, platform, server_id)
        require_moderator(actor, settings, "list appeals")
        rows = await self.store.fetchall(
            "SELECT a.case_id FROM appeals a JOIN cases c ON c.id = a.case_id"
            " WHERE c.server_id = ? AND a.status = 'pending' ORDER BY a.created_at",
            (server_id,),
        )
        return [await self._view(r[0]) for r in rows]

    async def _view(self, case_id: str) -> AppealView:
        case = await load_case(self.store, case_id)
        row = await self.store.fetchone(
            "SELECT id, statement, status, decided_by, note, created_at, decided_at FROM appeals WHERE case_id = ?",
            (case_id,),
        )
        if row is None:
            raise NotFound(f"case {case_id} has no appeal")
        opinion = await self.store.fetchall(
            f"SELECT {_VERDICT_COLUMNS} FROM verdicts WHERE appeal_id = ? ORDER BY id", (row[0],)
        )
        text_row = await self.store.fetchone("SELECT text FROM cases WHERE id = ?", (case_id,))
        return AppealView(
            case_id=case.id,
            server_id=case.message.server_id,
            channel_id=case.message.channel_id,
            message_id=case.message.message_id,
            author_id=case.message.author.id,
            text=text_row[0] if text_row else None,
            case_status=case.status,
            original=case.verdicts,
            appeal_id=row[0],
            statement=row[1],
            appeal_status=AppealStatus(row[2]),
            second_opinion=tuple(verdict_from_row(v) for v in opinion),
            filed_at=datetime.fromisoformat(row[5]),
            decided_by=row[3],
            decided_at=datetime.fromisoformat(row[6]) if row[6] else None,
            note=row[4],
        )

    # ------------------------------------------------------------ deciding

    async def uphold(self, case_id: str, actor: Actor, *, note: str = "") -> DecisionOutcome:
        return await self._decide(case_id, actor, DecisionAction.UPHOLD, note)

    async def overturn(self, case_id: str, actor: Actor, *, note: str = "") -> DecisionOutcome:
        """Overturn: the case is a false positive; a running timeout is lifted; the author is told."""
        return await self._decide(case_id, actor, DecisionAction.OVERTURN, note)

    async def _decide(self, case_id: str, actor: Actor, action: DecisionAction, note: str) -> DecisionOutcome:
        note = check_note(note)
        case = await load_case(self.store, case_id)
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        require_moderator(actor, settings, "decide appeals")
        now = self.clock()
        at = now.isoformat()
        upheld = action is DecisionAction.UPHOLD
        notes: list[str] = []
        strikes: int | None = None
        try:
            async with self.store.transaction() as conn:
                await refuse_if_decided(conn, case_id, "appeal")
                async with conn.execute("SELECT id, status FROM appeals WHERE case_id = ?", (case_id,)) as cur:
                    appeal = await cur.fetchone()
                if appeal is None:
                    raise NotFound(f"case {case_id} has no appeal to decide")
                case = await load_case(self.store, case_id)
                decision_id = await insert_decision(conn, case_id, case.message.server_id, action, actor.id, note, at)
                outcome = AppealStatus.UPHELD if upheld else AppealStatus.OVERTURNED
                await conn.execute(
                    "UPDATE appeals SET status = ?, decided_by = ?, note = ?, decided_at = ? WHERE id = ?",
                    (outcome.value, actor.id, note, at, appeal[0]),
                )
                await conn.execute(
                    "UPDATE cases SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                    (CaseStatus(outcome.value).value, actor.id, at, case_id),
                )
                effects: list[Effect] = []
                if upheld:
                    # An appeal decided before any review is the case's first confirmation: a strike.
                    ladder = settings.strike_ladder
                    reviewed = await first_decision(conn, case_id, "review")
                    if ladder.enabled and reviewed is None:
                        strikes = await escalation.count_strikes(
                            conn, case.message.server_id, case.message.author.id, now, ladder.window_days
                        )
                        step = escalation.step_for(ladder, strikes)
                        if step is not None:
                            effects += escalation.strike_effects(
                                step, strikes, ladder, shadow=settings.mode is Mode.SHADOW
                            )
                else:
                    lifts, notes = _reversals(case, now, actor)
                    effects += lifts
                effects = escalation.merge(effects)
                effects.append(
                    Effect(
                        kind=EffectKind.NOTIFY_APPEAL_OUTCOME,
                        reason=note,
                        requested_by=actor.id,
                        appeal_outcome="upheld" if upheld else "overturned",
                    )
                )
                records = await add_intents(conn, case_id, effects, at)
        except sqlite3.IntegrityError as exc:
            raise await explain_conflict(self.store, case_id, "appeal", exc) from exc
        decided = await load_case(self.store, case_id)
        done = await carry_out(self.store, self.sinks, decided, records)
        decision = next(d for d in await decisions_for(self.store, case_id) if d.id == decision_id)
        return DecisionOutcome(
            case=await load_case(self.store, case_id),
            decision=decision,
            effects=tuple(done),
            strikes=strikes,
            notes=tuple(notes),
        )


def _reversals(case: Case, now: datetime, actor: Actor) -> tuple[list[Effect], list[str]]:
    """What an overturn can undo: timeouts still running are lifted; a deletion cannot be undone."""
    lifts: list[Effect] = []
    notes: list[str] = []
    for rec in case.effects:
        if rec.outcome is not EffectOutcome.DONE:
            continue
        if rec.effect.kind is EffectKind.TIMEOUT:
            ends = rec.updated_at + timedelta(minutes=rec.effect.timeout_minutes or 0)
            if ends > now:
                lifts.append(
                    Effect(
                        kind=EffectKind.LIFT_TIMEOUT,
                        reason=f"appeal overturned by moderator {actor.id}",
                        timeout_minutes=rec.effect.timeout_minutes,
                        requested_by=actor.id,
                    )
                )
            else:
                notes.append(f"the timeout (effect {rec.id}) had already ended")
        elif rec.effect.kind is EffectKind.DELETE:
            notes.append("the message was deleted and cannot be restored")
    return lifts[:1], notes


def _appealed_before(case_id: str, filed_at: str) -> Refused:
    when = datetime.fromisoformat(filed_at).strftime("%Y-%m-%d %H:%M UTC")
    return Refused(f"case {case_id} was already appealed at {when}; a case can be appealed once")


__all__ = ["MAX_STATEMENT_CHARS", "Appeals"]
