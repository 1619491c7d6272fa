"""Appeals: the author appeals once, the model gives a second opinion at high effort, a moderator decides.

Filing returns at once with the appeal recorded: the second opinion (a high-effort model
call that can outlast any interaction window) is queued work, run by the bot's workers
ahead of the bulk of messages, and posted to the mod channel when it arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Literal

from bot.classifier import ClassificationRequest, ModelUnavailable
from bot.domain import (
    Appeal,
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
    Verdict,
    VerdictStatus,
    utcnow,
)
from bot.effect_runner import carry_out, policy_briefs, support_only
from bot.notices import AppealFiled, AppealView, SecondOpinion
from bot.observability.logs import bound_case
from bot.platforms import PlatformRouter
from bot.ports import Classifier, EffectSink, ModChannel
from bot.sanitise import valid_text
from bot.store.ports import CaseQuery, DuplicateAppeal, DuplicateDecision, ModerationStore, WorkItem, WorkKind
from bot.workflow import escalation
from bot.workflow.actors import Actor, require_moderator, require_same_server, settings_for, settings_or_default
from bot.workflow.decisions import (
    decision_follow_ups,
    explain_conflict,
    load_case,
    refuse_if_decided,
    self_review,
    self_review_entry,
)
from bot.workflow.errors import NotAuthorised, NotFound, Refused
from bot.workflow.ports import Clock
from bot.workflow.review import DecisionOutcome, case_for, check_note

log = logging.getLogger(__name__)

MAX_STATEMENT_CHARS = 1000
# Only a case that holds something against the author can be appealed.
APPEALABLE = (CaseStatus.OPEN, CaseStatus.NEEDS_REVIEW, CaseStatus.CONFIRMED)

AppealEvent = Literal["filed", "upheld", "overturned"]
# Told of each appeal filed and decided, once it is recorded (the app's metrics).
AppealObserver = Callable[[AppealEvent], None]


class Appeals:
    def __init__(
        self,
        store: ModerationStore,
        classifier: Classifier,
        sinks: Mapping[str, EffectSink] | PlatformRouter,
        mod_channel: ModChannel | None = None,
        clock: Clock = utcnow,
        *,
        observe: AppealObserver | None = None,
        on_work: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.sinks = PlatformRouter.of(sinks)
        self.mod_channel = mod_channel
        self.clock = clock
        self.observe = observe
        # Called once a second opinion is queued: the pipeline's workers look for it at once.
        self.on_work = on_work

    # ------------------------------------------------------------ filing

    async def file(self, case_id: str, actor: Actor, statement: str) -> AppealView:
        """Record the author's appeal and queue its second opinion; tell the moderators. Returns at once.

        The second opinion runs as queued work (a model outage only delays it) and reaches
        the mod channel as a SecondOpinion notice. From a surface with no server (a DM
        button) the case's server is the one; only the author of the message may appeal,
        wherever they act from.
        """
        # From a DM's modal: lone surrogates or NUL would fail the store, not the member.
        statement = valid_text(statement).strip()
        if not statement:
            raise Refused("the appeal needs a statement: say why the decision is wrong (up to 1,000 characters)")
        if len(statement) > MAX_STATEMENT_CHARS:
            raise Refused(
                f"the statement is {len(statement)} characters; the limit is {MAX_STATEMENT_CHARS}: shorten it"
            )
        case = await load_case(self.store, case_id)
        require_same_server(actor, case, allow_no_server=True)
        if actor.id != case.message.author.id:
            raise NotAuthorised(f"{actor.id} may not appeal case {case_id}: only the author of the message may")
        at = self.clock()
        try:
            async with self.store.transaction() as tx:
                earlier = await tx.appeals.for_case(case_id)
                if earlier is not None:
                    raise _appealed_before(case_id, earlier.created_at)
                case = await load_case(tx, case_id)
                if case.status not in APPEALABLE:
                    raise Refused(
                        f"case {case_id} is {case.status.value}: only a flagged or confirmed case can be appealed"
                    )
                appeal = await tx.appeals.add(case_id, actor.id, statement, at)
                await tx.cases.set_status(case_id, CaseStatus.APPEALED)
                # In the same transaction: an appeal is never recorded without its second opinion queued.
                msg = case.message
                await tx.work.add(
                    WorkKind.SECOND_OPINION,
                    msg.platform,
                    msg.server_id,
                    _subject(appeal.id),
                    {"case_id": case_id},
                    at,
                )
        except DuplicateAppeal as exc:  # a concurrent appeal won
            found = await self.store.appeals.for_case(case_id)
            raise _appealed_before(case_id, found.created_at if found else at) from exc
        if self.observe is not None:
            self.observe("filed")
        if self.on_work is not None:
            self.on_work()
        with bound_case(case):
            view = await self._view(case_id)
            await self._tell_moderators(case, AppealFiled(appeal=view))
        return view

    async def complete_second_opinion(self, case_id: str) -> None:
        """The queued second opinion: ask the model at high effort, store it, post it to the mod channel.

        ModelUnavailable is raised, not kept: the work stays queued until the model answers.
        Nothing happens when the appeal has its second opinion already (a moderator asked for
        it) or was decided meanwhile.
        """
        view = await self._view(case_id)
        if view.second_opinion or view.appeal_status is not AppealStatus.PENDING:
            return
        case = await load_case(self.store, case_id)
        with bound_case(case):
            if view.text is None:
                error = "the message text is no longer retained"
                await self._tell_moderators(
                    case, SecondOpinion(appeal=view.model_copy(update={"second_opinion_error": error}))
                )
                return
            try:
                verdicts = await self._ask_model(case, view.statement)
            except ModelUnavailable:
                raise  # not a failure of this appeal: it waits in the queue for the model
            except Exception as exc:
                log.warning("second opinion for case %s failed: %s", case_id, type(exc).__name__)
                raise
            async with self.store.transaction() as tx:
                stored = await tx.appeals.for_case(case_id)
                if stored is None or stored.second_opinion or stored.status is not AppealStatus.PENDING:
                    return  # given meanwhile (a moderator asked), or decided: never stored twice
                await tx.appeals.add_second_opinion(view.appeal_id, case_id, verdicts)
            await self._tell_moderators(case, SecondOpinion(appeal=await self._view(case_id)))

    async def second_opinion_failed(self, case_id: str, problem: str) -> None:
        """The queued second opinion failed for good: the moderators learn why, and may ask again."""
        case = await load_case(self.store, case_id)
        with bound_case(case):
            view = await self._view(case_id)
            await self._tell_moderators(
                case, SecondOpinion(appeal=view.model_copy(update={"second_opinion_error": problem}))
            )

    async def second_opinion(self, case_id: str, actor: Actor) -> AppealView:
        """Ask the model again if the second opinion is missing (the model was down when the appeal came)."""
        case = await case_for(self.store, case_id, actor)
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        require_moderator(actor, settings, "request a second opinion")
        with bound_case(case):
            return await self._second_opinion(case_id)

    async def _second_opinion(self, case_id: str) -> AppealView:
        view = await self._view(case_id)
        if view.second_opinion or view.appeal_status is not AppealStatus.PENDING:
            return view
        case = await load_case(self.store, case_id)
        if view.text is None:
            return view.model_copy(update={"second_opinion_error": "the message text is no longer retained"})
        try:
            verdicts = await self._ask_model(case, view.statement)
        except Exception as exc:  # the appeal stands; the second opinion can be asked for again
            log.warning("second opinion for case %s failed: %s", case_id, type(exc).__name__)
            return view.model_copy(update={"second_opinion_error": f"{type(exc).__name__}: {exc}"[:300]})
        await self.store.appeals.add_second_opinion(view.appeal_id, case_id, verdicts)
        return await self._view(case_id)

    async def _ask_model(self, case: Case, statement: str) -> list[Verdict]:
        policies = await self._policies_judged(case)
        return [
            await self.classifier.classify(
                ClassificationRequest(policy, case.message, Effort.HIGH, (), appeal_statement=statement)
            )
            for policy in policies
        ]

    async def _policies_judged(self, case: Case) -> list[Policy]:
        """The policy versions that flagged the case (every one that judged it, if none flagged)."""
        judged = [v for v in case.verdicts if v.violation or v.status is VerdictStatus.NEEDS_REVIEW]
        judged = judged or list(case.verdicts)
        msg = case.message
        found: list[Policy] = []
        for verdict in judged:
            versions = await self.store.policies.versions(msg.platform, msg.server_id, verdict.policy)
            match = next((p for p in versions if p.version == verdict.policy_version), None)
            if match is not None:
                found.append(match)
        if not found:  # decided without a usable verdict: judge by what is live now
            found = [lp.policy for lp in await self.store.policies.live(msg.platform, msg.server_id) if lp.enabled]
        return found

    async def _tell_moderators(self, case: Case, notice: AppealFiled | SecondOpinion) -> None:
        if self.mod_channel is None:
            return
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        try:
            await self.mod_channel.post(settings, notice)
        except Exception as exc:  # the appeal is recorded; the reminder job will bring it up again
            log.warning("could not post appeal of case %s to the mod channel: %s", case.id, type(exc).__name__)

    # ------------------------------------------------------------ reading

    async def view(self, case_id: str, actor: Actor) -> AppealView:
        """The appeal with everything needed to decide it: for moderators and for the author."""
        case = await load_case(self.store, case_id)
        require_same_server(actor, case, allow_no_server=actor.id == case.message.author.id)
        if actor.id != case.message.author.id:
            settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
            require_moderator(actor, settings, "see appeals")
        return await self._view(case_id)

    async def appealable(self, actor: Actor, limit: int = 10) -> list[Case]:
        """The actor's own recent cases in the server where they act, that they may appeal, newest first.

        Only cases the author was told about or acted upon (a notice, even one their closed
        DMs refused; a deletion; a time-out): a flag moderators have not acted on stays
        theirs. Never a case flagged only for support (its notice offers help, not an appeal).
        """
        platform, server_id = actor.where()
        query = CaseQuery(
            platform=platform,
            server_id=server_id,
            author_id=actor.id,
            statuses=APPEALABLE,
            newest_first=True,
            limit=max(limit * 5, 50),  # some are left out below
        )
        found: list[Case] = []
        for case in await self.store.cases.find(query):
            if not _author_knows(case) or support_only(case.verdicts, await policy_briefs(self.store, case)):
                continue
            found.append(case)
            if len(found) == limit:
                break
        return found

    async def waiting(self, actor: Actor) -> list[AppealView]:
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "list appeals")
        appeals = await self.store.appeals.pending(settings.platform, settings.server_id)
        return [await self._view(a.case_id) for a in appeals]

    async def _view(self, case_id: str) -> AppealView:
        case = await load_case(self.store, case_id)
        appeal = await self.store.appeals.for_case(case_id)
        if appeal is None:
            raise NotFound(f"case {case_id} has no appeal")
        view = appeal_view(case, appeal)
        if not view.second_opinion and await self.store.work.pending(WorkKind.SECOND_OPINION, _subject(appeal.id)):
            view = view.model_copy(update={"second_opinion_queued": True})
        return view

    # ------------------------------------------------------------ deciding

    async def uphold(self, case_id: str, actor: Actor, *, note: str = "") -> DecisionOutcome:
        return await self._decide(case_id, actor, DecisionAction.UPHOLD, note)

    async def overturn(self, case_id: str, actor: Actor, *, note: str = "") -> DecisionOutcome:
        """Overturn: the case is a false positive; a running timeout is lifted; the author is told."""
        return await self._decide(case_id, actor, DecisionAction.OVERTURN, note)

    async def _decide(self, case_id: str, actor: Actor, action: DecisionAction, note: str) -> DecisionOutcome:
        note = check_note(note)
        case = await case_for(self.store, case_id, actor)
        settings = await settings_or_default(self.store, case.message.platform, case.message.server_id)
        require_moderator(actor, settings, "decide appeals")
        own = self_review(actor, case, settings, f"{action.value} the appeal of")
        now = self.clock()
        upheld = action is DecisionAction.UPHOLD
        notes: list[str] = []
        strikes: int | None = None
        msg = case.message
        try:
            async with self.store.transaction() as tx:
                await refuse_if_decided(tx, case_id, "appeal")
                appeal = await tx.appeals.for_case(case_id)
                if appeal is None:
                    raise NotFound(f"case {case_id} has no appeal to decide")
                case = await load_case(tx, case_id)
                decision = await tx.decisions.add(case_id, action, actor.id, note, now, self_review=own)
                outcome = AppealStatus.UPHELD if upheld else AppealStatus.OVERTURNED
                await tx.appeals.decide(appeal.id, outcome, actor.id, note, now)
                status = CaseStatus(outcome.value)
                await tx.cases.set_status(case_id, status, actor.id, now)
                effects: list[Effect] = []
                if upheld:
                    # An appeal decided before any review is the case's first confirmation: a strike
                    # (unless the case was flagged only for support: never a strike).
                    ladder = settings.strike_ladder
                    reviewed = await tx.decisions.first(case_id, "review")
                    support = support_only(case.verdicts, await policy_briefs(tx, case))
                    if ladder.enabled and reviewed is None and not support:
                        since = now - escalation.window(ladder)
                        strikes = await tx.cases.count_strikes(msg.platform, msg.server_id, msg.author.id, since)
                        step = escalation.step_for(ladder, strikes)
                        if step is not None:
                            effects += escalation.strike_effects(
                                step, strikes, ladder, shadow=settings.mode is Mode.SHADOW
                            )
                else:
                    lifts, notes = _reversals(case, now, actor)
                    effects += lifts
                effects = escalation.merge(effects)
                decided = case.model_copy(update={"status": status, "decided_by": actor.id, "decided_at": now})
                effects += decision_follow_ups(decided, settings, actor, action, effects, note)
                effects.append(
                    Effect(
                        kind=EffectKind.NOTIFY_APPEAL_OUTCOME,
                        reason=note,
                        requested_by=actor.id,
                        appeal_outcome="upheld" if upheld else "overturned",
                    )
                )
                records = await tx.effects.add_intents(case_id, effects)
                if own:
                    await tx.audit.add(self_review_entry(actor, case, action, decision))
        except DuplicateDecision as exc:
            raise await explain_conflict(self.store, case_id, "appeal", exc) from exc
        if self.observe is not None:
            self.observe("upheld" if upheld else "overturned")
        decided_case = await load_case(self.store, case_id)
        done = await carry_out(self.store, self.sinks, decided_case, records)
        return DecisionOutcome(
            case=await load_case(self.store, case_id),
            decision=decision,
            effects=tuple(done),
            strikes=strikes,
            notes=tuple(notes),
        )


def appeal_view(case: Case, appeal: Appeal) -> AppealView:
    return AppealView(
        case_id=case.id,
        server_id=case.message.server_id,
        channel_id=case.message.channel_id,
        message_id=case.message.message_id,
        author_id=case.message.author.id,
        text=None if case.text_purged_at else case.message.text,
        case_status=case.status,
        original=case.verdicts,
        appeal_id=appeal.id,
        statement=appeal.statement,
        appeal_status=appeal.status,
        second_opinion=appeal.second_opinion,
        filed_at=appeal.created_at,
        decided_by=appeal.decided_by,
        decided_at=appeal.decided_at,
        note=appeal.note,
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


class SecondOpinions:
    """The pipeline's handler of queued second opinions (bootstrap registers it)."""

    def __init__(self, appeals: Appeals) -> None:
        self.appeals = appeals

    async def run(self, item: WorkItem) -> None:
        await self.appeals.complete_second_opinion(str(item.payload["case_id"]))

    async def give_up(self, item: WorkItem, problem: str) -> None:
        await self.appeals.second_opinion_failed(
            str(item.payload["case_id"]), f"{problem}; `appeal second-opinion` asks again"
        )


def _subject(appeal_id: int) -> str:
    return f"appeal {appeal_id}"


def _author_knows(case: Case) -> bool:
    """Whether the author was told of the case (or tried to be) or saw something done to their message."""
    for record in case.effects:
        kind, outcome = record.effect.kind, record.outcome
        if kind is EffectKind.NOTIFY_AUTHOR and outcome in (EffectOutcome.DONE, EffectOutcome.FAILED):
            return True
        if kind in (EffectKind.DELETE, EffectKind.TIMEOUT) and outcome is EffectOutcome.DONE:
            return True
    return False


def _appealed_before(case_id: str, filed_at: datetime) -> Refused:
    return Refused(f"case {case_id} was already appealed at {filed_at:%Y-%m-%d %H:%M} UTC; a case can be appealed once")


__all__ = ["MAX_STATEMENT_CHARS", "Appeals", "SecondOpinions", "appeal_view"]
