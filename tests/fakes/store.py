"""The store's ports in memory: one fake of each repository, held honest by tests/store_contract/.

A unit of work copies the state when it begins and puts the copy back if its block raises,
so a refused operation leaves nothing behind, as SQLite's rollback does. Writes outside a
unit of work wait for one in progress, as they do on SQLite's single connection.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bot.domain import (
    Appeal,
    AppealStatus,
    AuthorHistory,
    AuthorNotice,
    Case,
    CaseNote,
    CaseNoteKind,
    CaseStatus,
    DecisionAction,
    Effect,
    EffectKind,
    EffectOutcome,
    EffectRecord,
    FlagJoins,
    HumanDecision,
    Message,
    Mode,
    Policy,
    ServerSettings,
    Verdict,
    VerdictStatus,
    utcnow,
)
from bot.store.intake import IntakeOutcome, KnownRevision, place, text_digest
from bot.store.ports import (
    AWAITING_A_PERSON,
    ERASED_MEMBER,
    KEPT_AS_EVIDENCE,
    MAX_JOINED_AUTHORS,
    AuditEntry,
    CaseQuery,
    Deletion,
    DigestCounts,
    Draft,
    DuplicateAppeal,
    DuplicateDecision,
    ErasureCounts,
    HealthState,
    Intake,
    LivePolicy,
    MemberRecords,
    PolicyContent,
    QueueBacklog,
    QueueItem,
    RunnerLockHeld,
    Stage,
    WorkItem,
    WorkKind,
)

Key = tuple[str, str]  # (platform, server id)
STRIKE_STATUSES = (CaseStatus.CONFIRMED, CaseStatus.UPHELD)


@dataclass
class _QueueRow:
    id: int
    message: Message | None
    key: tuple[str, str, str]
    state: str
    case_id: str | None = None
    revision: int = 1
    digest: str | None = None
    revised_at: datetime = field(default_factory=utcnow)
    not_before: datetime | None = None
    deleted_at: datetime | None = None
    enqueued_at: datetime = field(default_factory=utcnow)

    def known(self) -> KnownRevision:
        return KnownRevision(self.revision, self.digest, self.revised_at, deleted=self.deleted_at is not None)

    def newer_than(self, other: _QueueRow) -> bool:
        return (self.revised_at, self.revision) > (other.revised_at, other.revision)


@dataclass
class _WorkRow:
    item: WorkItem
    state: str = "pending"
    detail: str = ""


@dataclass
class _State:
    queue: dict[int, _QueueRow] = field(default_factory=dict)
    queue_keys: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)  # every revision's row
    notes: dict[str, list[CaseNote]] = field(default_factory=dict)
    work: dict[int, _WorkRow] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)  # insertion order is the rowid order
    effects: dict[str, list[EffectRecord]] = field(default_factory=dict)
    appeals: dict[int, Appeal] = field(default_factory=dict)
    decisions: list[HumanDecision] = field(default_factory=list)
    policies: dict[tuple[str, str, str], list[Policy]] = field(default_factory=dict)
    switches: dict[tuple[str, str, str], tuple[bool, Mode | None]] = field(default_factory=dict)
    drafts: dict[int, Draft] = field(default_factory=dict)
    settings: dict[Key, ServerSettings] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    reminders: dict[int, tuple[int, datetime]] = field(default_factory=dict)
    digests: dict[tuple[str, str, str], str] = field(default_factory=dict)
    health: HealthState = field(default_factory=HealthState)
    alerts: dict[Key, datetime] = field(default_factory=dict)
    next_id: Counter[str] = field(default_factory=Counter)

    def new_id(self, kind: str) -> int:
        self.next_id[kind] += 1
        return self.next_id[kind]


class _Db:
    def __init__(self, store: FakeStore, in_transaction: bool) -> None:
        self.store = store
        self.in_transaction = in_transaction

    @property
    def state(self) -> _State:
        return self.store._state

    def now(self) -> datetime:
        return self.store.now()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[_State]:
        if self.in_transaction:
            yield self.state
            return
        async with self.store._lock:
            yield self.state


class _Repositories:
    def __init__(self, db: _Db) -> None:
        self.cases = FakeCases(db)
        self.effects = FakeEffects(db)
        self.appeals = FakeAppeals(db)
        self.decisions = FakeDecisions(db)
        self.policies = FakePolicies(db)
        self.settings = FakeSettings(db)
        self.audit = FakeAudit(db)
        self.jobs = FakeJobMemory(db)
        self.statistics = FakeStatistics(db)
        self.work = FakeWork(db)
        self.privacy = FakePrivacy(db)


class FakeStore(_Repositories):
    """The whole ModerationStore in memory."""

    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self.now = now
        self._state = _State()
        self._lock = asyncio.Lock()
        self.closed = False
        self.runner: str | None = None  # who holds the runner lock
        super().__init__(_Db(self, False))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Repositories]:
        async with self._lock:
            saved = copy.deepcopy(self._state)
            try:
                yield _Repositories(_Db(self, True))
            except BaseException:
                self._state = saved
                raise

    async def close(self) -> None:
        self.closed = True

    async def size_bytes(self) -> int:
        return 0

    def describe(self) -> Mapping[str, Any]:
        return {"kind": "memory"}

    async def take_runner_lock(self, who: str) -> None:
        if self.runner is not None:
            raise RunnerLockHeld(f"another modbot process is already running ({self.runner})")
        self.runner = who

    async def forget_clean_reasoning(self, decided_before: datetime, limit: int) -> int:
        async with self._lock:
            cleared = 0
            for case_id, case in list(self._state.cases.items()):
                if case.status is not CaseStatus.CLEAN or case.created_at >= decided_before:
                    continue
                kept = [v for v in case.verdicts if v.reasoning or v.raw_output is not None]
                if kept and cleared < limit:
                    verdicts = tuple(v.model_copy(update={"reasoning": "", "raw_output": None}) for v in case.verdicts)
                    self._state.cases[case_id] = case.model_copy(update={"verdicts": verdicts})
                    cleared += len(kept)
            return cleared

    async def reclaim_space(self, max_pages: int) -> int:
        return 0

    # ------------------------------------------------------------ intake

    async def intake(
        self, message: Message, *, hold_until: datetime | None = None, flag_update: Effect | None = None
    ) -> Intake:
        async with self._lock:
            state = self._state
            rows = [state.queue[i] for i in state.queue_keys.get(message.key, [])]
            digest = text_digest(message.text)
            where = place([r.known() for r in rows], message, digest)
            if where.revision is None:
                return Intake(where.outcome)
            outcome, row_state, held = where.outcome, "pending", None
            body: Message | None = message
            if outcome is IntakeOutcome.STALE:
                row_state, body = "superseded", None
            elif where.revision > 1 and hold_until is not None:
                outcome, held = IntakeOutcome.HELD, hold_until
            queue_id = state.new_id("queue")
            state.queue[queue_id] = _QueueRow(
                queue_id,
                body,
                message.key,
                row_state,
                revision=where.revision,
                digest=digest,
                revised_at=message.revised_at,
                not_before=held,
                enqueued_at=self.now(),
            )
            state.queue_keys.setdefault(message.key, []).append(queue_id)
            noted: tuple[str, ...] = ()
            if where.revision > 1 and outcome is not IntakeOutcome.STALE:
                noted = self._note(message.key, CaseNoteKind.EDITED, where.revision, AWAITING_A_PERSON, flag_update)
            return Intake(outcome, queue_id, where.revision, noted)

    def _note(
        self,
        key: tuple[str, str, str],
        kind: CaseNoteKind,
        revision: int | None,
        statuses: Collection[CaseStatus],
        flag_update: Effect | None,
    ) -> tuple[str, ...]:
        state, at = self._state, self.now()
        found = sorted(
            (c for c in state.cases.values() if c.message.key == key and c.status in statuses), key=lambda c: c.revision
        )
        for case in found:
            state.notes.setdefault(case.id, []).append(CaseNote(kind=kind, revision=revision, at=at))
            records = state.effects.setdefault(case.id, [])
            flagged = any(r.effect.kind is EffectKind.FLAG and r.reference is not None for r in records)
            if flag_update is not None and case.status in AWAITING_A_PERSON and flagged:
                records.append(
                    EffectRecord(
                        id=len(records) + 1,
                        case_id=case.id,
                        effect=flag_update,
                        outcome=EffectOutcome.PENDING,
                        updated_at=at,
                    )
                )
        return tuple(c.id for c in found)

    async def enqueue(self, message: Message) -> int | None:
        taken = await self.intake(message)
        return taken.queue_id if taken.outcome in (IntakeOutcome.QUEUED, IntakeOutcome.HELD) else None

    async def waiting_page(self, now: datetime, exclude: Collection[int], limit: int) -> list[QueueItem]:
        state = self._state
        page: list[QueueItem] = []
        for row in state.queue.values():
            if len(page) >= limit:
                break
            if row.state not in ("pending", "acting") or row.id in exclude or row.message is None:
                continue
            if row.not_before is not None and row.not_before > now:
                continue
            newer = any(
                other.newer_than(row) and other.state != "superseded"
                for other in (state.queue[i] for i in state.queue_keys[row.key])
            )
            page.append(
                QueueItem(
                    row.id,
                    row.message,
                    row.state,
                    row.case_id,
                    revision=row.revision,
                    enqueued_at=row.enqueued_at,
                    superseded=row.state == "pending" and newer,
                )
            )
        return page

    async def open_queue_items(self) -> list[QueueItem]:
        return await self.waiting_page(datetime.max.replace(tzinfo=UTC), (), 1 << 62)

    async def queue_state(self, platform: str, server_id: str, message_id: str) -> str | None:
        rows = [self._state.queue[i] for i in self._state.queue_keys.get((platform, server_id, message_id), [])]
        return max(rows, key=lambda r: (r.revised_at, r.revision)).state if rows else None

    async def queue_counts(self) -> dict[str, int]:
        return dict(Counter(row.state for row in self._state.queue.values()))

    async def queue_backlog(self) -> QueueBacklog:
        waiting = [row for row in self._state.queue.values() if row.state in ("pending", "acting")]
        return QueueBacklog(depth=len(waiting), oldest_enqueued_at=waiting[0].enqueued_at if waiting else None)

    async def supersede(self, queue_id: int) -> None:
        async with self._lock:
            row = self._state.queue[queue_id]
            if row.state == "pending":
                row.state, row.message = "superseded", None

    async def record_decision(self, queue_id: int, case: Case, effects: Sequence[tuple[Effect, EffectOutcome]]) -> bool:
        async with self._lock:
            row = self._state.queue[queue_id]
            if row.state != "pending":
                return False  # cancelled while it was judged
            if case.id in self._state.cases:
                raise KeyError(f"case {case.id} exists")
            self._state.cases[case.id] = case.model_copy(update={"effects": (), "notes": ()})
            at = self.now()
            self._state.effects[case.id] = [
                EffectRecord(id=seq, case_id=case.id, effect=e, outcome=o, updated_at=at)
                for seq, (e, o) in enumerate(effects, start=1)
            ]
            acting = any(o is EffectOutcome.PENDING for _, o in effects)
            row.state, row.case_id = ("acting" if acting else "done"), case.id
            if not acting:
                row.message = None
            return True

    async def message_deleted(
        self, platform: str, server_id: str, message_id: str, at: datetime, flag_update: Effect | None = None
    ) -> Deletion:
        key = (platform, server_id, message_id)
        async with self._lock:
            state = self._state
            rows = [state.queue[i] for i in state.queue_keys.get(key, [])]
            cancelled = 0
            for row in rows:
                if row.state == "pending":
                    row.state, row.message = "cancelled", None
                    cancelled += 1
                row.deleted_at = row.deleted_at or at
            if not rows:
                queue_id = state.new_id("queue")
                state.queue[queue_id] = _QueueRow(
                    queue_id, None, key, "cancelled", revised_at=at, deleted_at=at, enqueued_at=at
                )
                state.queue_keys[key] = [queue_id]
            purged = 0
            for case_id, case in list(state.cases.items()):
                if case.message.key == key and case.text_purged_at is None and case.status not in KEPT_AS_EVIDENCE:
                    state.cases[case_id] = case.model_copy(
                        update={"message": case.message.model_copy(update={"text": ""}), "text_purged_at": at}
                    )
                    purged += 1
            noted = self._note(key, CaseNoteKind.DELETED, None, KEPT_AS_EVIDENCE, flag_update)
            return Deletion(cancelled=cancelled, purged=purged, noted_cases=noted)

    async def server_removed(self, platform: str, server_id: str, at: datetime) -> int:
        async with self._lock:
            dropped = 0
            for row in self._state.queue.values():
                if row.key[:2] == (platform, server_id) and row.state in ("pending", "acting"):
                    row.state, row.message = "cancelled", None
                    dropped += 1
            for case_id, records in self._state.effects.items():
                case = self._state.cases.get(case_id)
                if case is None or (case.message.platform, case.message.server_id) != (platform, server_id):
                    continue
                for i, r in enumerate(records):
                    if r.outcome is EffectOutcome.PENDING:
                        records[i] = r.model_copy(
                            update={
                                "outcome": EffectOutcome.FAILED,
                                "detail": "not carried out: the bot left the server",
                            }
                        )
            for work in self._state.work.values():
                if (work.item.platform, work.item.server_id) == (platform, server_id) and work.state == "pending":
                    work.state, work.detail = "cancelled", "the bot left the server"
                    dropped += 1
            return dropped

    async def finish_queue_item(self, queue_id: int) -> None:
        async with self._lock:
            row = self._state.queue[queue_id]
            if row.state != "cancelled":
                row.state, row.message = "done", None

    async def cases_with_unfinished_effects(self) -> list[str]:
        done_cases = {row.case_id for row in self._state.queue.values() if row.state == "done"}
        return sorted(
            case_id
            for case_id, records in self._state.effects.items()
            if case_id in done_cases
            and any(r.outcome in (EffectOutcome.PENDING, EffectOutcome.STARTED) for r in records)
        )


def _with_effects(state: _State, case: Case) -> Case:
    return case.model_copy(
        update={"effects": tuple(state.effects.get(case.id, ())), "notes": tuple(state.notes.get(case.id, ()))}
    )


def _flagging(verdict: Verdict) -> bool:
    return verdict.violation or verdict.status is VerdictStatus.NEEDS_REVIEW


class FakeCases:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def get(self, case_id: str) -> Case | None:
        case = self._db.state.cases.get(case_id)
        return _with_effects(self._db.state, case) if case else None

    async def get_many(self, case_ids: Sequence[str]) -> list[Case]:
        wanted = set(case_ids)
        return [_with_effects(self._db.state, c) for c in self._db.state.cases.values() if c.id in wanted]

    async def for_message(self, platform: str, server_id: str, message_id: str) -> Case | None:
        found = [c for c in self._db.state.cases.values() if c.message.key == (platform, server_id, message_id)]
        return _with_effects(self._db.state, max(found, key=lambda c: c.revision)) if found else None

    async def find(self, query: CaseQuery) -> list[Case]:
        found = [
            c
            for c in self._db.state.cases.values()
            if (c.message.platform, c.message.server_id) == (query.platform, query.server_id)
            and (query.statuses is None or c.status in query.statuses)
            and (query.text_retained is None or (c.text_purged_at is None) == query.text_retained)
            and (query.author_id is None or c.message.author.id == query.author_id)
        ]
        if query.newest_first:
            order = {case_id: i for i, case_id in enumerate(self._db.state.cases)}
            found.sort(key=lambda c: (c.created_at, order[c.id]), reverse=True)
        return [_with_effects(self._db.state, c) for c in found[: query.limit]]

    async def every(self) -> AsyncIterator[Case]:
        for case in list(self._db.state.cases.values()):
            yield _with_effects(self._db.state, case)

    async def set_status(
        self, case_id: str, status: CaseStatus, decided_by: str | None = None, at: datetime | None = None
    ) -> None:
        async with self._db.writing() as state:
            case = state.cases[case_id]
            update: dict[str, Any] = {"status": status}
            if decided_by is not None:
                update |= {"decided_by": decided_by, "decided_at": at or self._db.now()}
            state.cases[case_id] = case.model_copy(update=update)

    async def count_strikes(self, platform: str, server_id: str, author_id: str, since: datetime) -> int:
        state = self._db.state

        def support_only(case: Case) -> bool:
            flagging = [v for v in case.verdicts if _flagging(v)]
            notices = [
                next(
                    (
                        p.author_notice
                        for p in state.policies.get((platform, server_id, v.policy), [])
                        if p.version == v.policy_version
                    ),
                    AuthorNotice.REMOVAL,
                )
                for v in flagging
            ]
            return bool(flagging) and all(n is AuthorNotice.SUPPORT for n in notices)

        return sum(
            1
            for c in state.cases.values()
            if (c.message.platform, c.message.server_id, c.message.author.id) == (platform, server_id, author_id)
            and c.created_at >= since
            and c.status in STRIKE_STATUSES
            and not support_only(c)
        )

    async def author_history(
        self, platform: str, server_id: str, author_id: str, since: datetime, exclude_case_id: str | None = None
    ) -> AuthorHistory:
        flagged = [
            c
            for c in self._db.state.cases.values()
            if (c.message.platform, c.message.server_id, c.message.author.id) == (platform, server_id, author_id)
            and c.created_at >= since
            and c.status not in (CaseStatus.CLEAN, CaseStatus.SKIPPED)
            and c.id != exclude_case_id
        ]
        days = max(0, round((self._db.now() - since).total_seconds() / 86400))
        return AuthorHistory(days=days, cases=len(flagged), confirmed=sum(c.status in STRIKE_STATUSES for c in flagged))

    async def flag_joins(self, case_id: str, max_authors: int = MAX_JOINED_AUTHORS) -> FlagJoins:
        joined = [c for c in self._db.state.cases.values() if c.joined_case_id == case_id]
        authors = tuple(dict.fromkeys(c.message.author.id for c in joined))[:max_authors]
        return FlagJoins(count=len(joined), author_ids=authors)

    async def servers_with_text(self) -> list[tuple[str, str]]:
        state = self._db.state
        with_text = {(c.message.platform, c.message.server_id) for c in state.cases.values() if not c.text_purged_at}
        stated = {
            (state.cases[a.case_id].message.platform, state.cases[a.case_id].message.server_id)
            for a in state.appeals.values()
            if a.statement
        }
        return sorted(with_text | stated)

    async def purge_text(self, platform: str, server_id: str, created_before: datetime, at: datetime) -> int:
        async with self._db.writing() as state:
            purged = 0
            for case_id, c in list(state.cases.items()):
                if (c.message.platform, c.message.server_id) != (platform, server_id):
                    continue
                if c.text_purged_at is None and c.created_at < created_before:
                    state.cases[case_id] = c.model_copy(
                        update={
                            "message": c.message.model_copy(update={"text": ""}),
                            "text_purged_at": at,
                            "verdicts": tuple(_redacted(v) for v in c.verdicts),
                        }
                    )
                    state.effects[case_id] = [
                        r.model_copy(update={"effect": r.effect.model_copy(update={"reason": ""})})
                        for r in state.effects.get(case_id, [])
                    ]
                    for appeal_id, a in list(state.appeals.items()):
                        if a.case_id == case_id:
                            state.appeals[appeal_id] = a.model_copy(
                                update={
                                    "statement": "",
                                    "second_opinion": tuple(_redacted(v) for v in a.second_opinion),
                                }
                            )
                    purged += 1
            for appeal_id, a in list(state.appeals.items()):
                c = state.cases[a.case_id]
                if (c.message.platform, c.message.server_id) == (platform, server_id) and a.created_at < created_before:
                    state.appeals[appeal_id] = a.model_copy(update={"statement": ""})
            return purged


def _redacted(verdict: Verdict) -> Verdict:
    """A verdict without the words that may quote the message: its rule ids and decision stay."""
    return verdict.model_copy(update={"rationale": "", "reasoning": "", "raw_output": None})


class FakeEffects:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add_intents(self, case_id: str, effects: Sequence[Effect]) -> list[EffectRecord]:
        async with self._db.writing() as state:
            records = state.effects.setdefault(case_id, [])
            at = self._db.now()
            added = [
                EffectRecord(
                    id=len(records) + i,
                    case_id=case_id,
                    effect=e,
                    outcome=EffectOutcome.SHADOW if e.shadow else EffectOutcome.PENDING,
                    updated_at=at,
                )
                for i, e in enumerate(effects, start=1)
            ]
            records.extend(added)
            return added

    async def claim(self, case_id: str, seq: int) -> bool:
        async with self._db.writing() as state:
            records = state.effects.get(case_id, [])
            for i, r in enumerate(records):
                if r.id == seq and r.outcome is EffectOutcome.PENDING:
                    records[i] = r.model_copy(update={"outcome": EffectOutcome.STARTED, "updated_at": self._db.now()})
                    return True
            return False

    async def set_outcome(
        self,
        case_id: str,
        seq: int,
        outcome: EffectOutcome,
        detail: str = "",
        finish_queue_id: int | None = None,
        reference: str | None = None,
    ) -> None:
        async with self._db.writing() as state:
            records = state.effects.get(case_id, [])
            for i, r in enumerate(records):
                if r.id == seq:
                    records[i] = r.model_copy(
                        update={
                            "outcome": outcome,
                            "detail": detail,
                            "reference": reference or r.reference,
                            "updated_at": self._db.now(),
                        }
                    )
            if finish_queue_id is not None:
                row = state.queue[finish_queue_id]
                if row.state != "cancelled":
                    row.state, row.message = "done", None


class FakeAppeals:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add(self, case_id: str, author_id: str, statement: str, at: datetime) -> Appeal:
        async with self._db.writing() as state:
            if any(a.case_id == case_id for a in state.appeals.values()):
                raise DuplicateAppeal(f"case {case_id} already has an appeal")
            appeal = Appeal(
                id=state.new_id("appeal"), case_id=case_id, author_id=author_id, statement=statement, created_at=at
            )
            state.appeals[appeal.id] = appeal
            return appeal

    async def for_case(self, case_id: str) -> Appeal | None:
        return next((a for a in self._db.state.appeals.values() if a.case_id == case_id), None)

    async def pending(self, platform: str, server_id: str) -> list[Appeal]:
        cases = self._db.state.cases
        found = [
            a
            for a in self._db.state.appeals.values()
            if a.status is AppealStatus.PENDING
            and (cases[a.case_id].message.platform, cases[a.case_id].message.server_id) == (platform, server_id)
        ]
        return sorted(found, key=lambda a: (a.created_at, a.id))

    async def decide(self, appeal_id: int, status: AppealStatus, decided_by: str, note: str, at: datetime) -> None:
        async with self._db.writing() as state:
            state.appeals[appeal_id] = state.appeals[appeal_id].model_copy(
                update={"status": status, "decided_by": decided_by, "note": note, "decided_at": at}
            )

    async def add_second_opinion(self, appeal_id: int, case_id: str, verdicts: Sequence[Verdict]) -> None:
        async with self._db.writing() as state:
            appeal = state.appeals[appeal_id]
            state.appeals[appeal_id] = appeal.model_copy(update={"second_opinion": (*appeal.second_opinion, *verdicts)})


def _stage_actions(stage: Stage) -> tuple[DecisionAction, DecisionAction]:
    if stage == "review":
        return (DecisionAction.CONFIRM, DecisionAction.DISMISS)
    return (DecisionAction.UPHOLD, DecisionAction.OVERTURN)


class FakeDecisions:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add(
        self,
        case_id: str,
        action: DecisionAction,
        moderator_id: str,
        note: str,
        at: datetime,
        *,
        self_review: bool = False,
    ) -> HumanDecision:
        async with self._db.writing() as state:
            if any(d.case_id == case_id and d.action.stage == action.stage for d in state.decisions):
                raise DuplicateDecision(f"case {case_id} already has a decision for this stage")
            case = state.cases[case_id]
            decision = HumanDecision(
                id=state.new_id("decision"),
                case_id=case_id,
                platform=case.message.platform,
                server_id=case.message.server_id,
                action=action,
                violation=action.violation,
                moderator_id=moderator_id,
                note=note,
                at=at,
                self_review=self_review,
            )
            state.decisions.append(decision)
            return decision

    async def first(self, case_id: str, stage: Stage) -> HumanDecision | None:
        actions = _stage_actions(stage)
        return next((d for d in self._db.state.decisions if d.case_id == case_id and d.action in actions), None)

    async def for_case(self, case_id: str) -> list[HumanDecision]:
        return [d for d in self._db.state.decisions if d.case_id == case_id]

    async def for_server(self, platform: str, server_id: str) -> list[HumanDecision]:
        return [d for d in self._db.state.decisions if (d.platform, d.server_id) == (platform, server_id)]

    async def every(self) -> list[HumanDecision]:
        return list(self._db.state.decisions)


class FakePolicies:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add_version(self, platform: str, server_id: str, content: PolicyContent, author: str) -> Policy:
        async with self._db.writing() as state:
            versions = state.policies.setdefault((platform, server_id, content.name), [])
            policy = Policy(
                platform=platform,
                server_id=server_id,
                version=len(versions) + 1,
                author=author,
                created_at=self._db.now(),
                **content.model_dump(),
            )
            versions.append(policy)
            state.switches.setdefault((platform, server_id, content.name), (True, None))
            return policy

    async def versions(self, platform: str, server_id: str, name: str) -> list[Policy]:
        return list(self._db.state.policies.get((platform, server_id, name), []))

    async def live(self, platform: str, server_id: str) -> list[LivePolicy]:
        found = []
        for (p, s, name), versions in sorted(self._db.state.policies.items()):
            if (p, s) != (platform, server_id) or not versions:
                continue
            enabled, mode = self._db.state.switches[(p, s, name)]
            found.append(LivePolicy(versions[-1].model_copy(update={"enabled": enabled}), enabled, mode))
        return found

    async def set_switches(self, platform: str, server_id: str, name: str, enabled: bool, mode: Mode | None) -> None:
        async with self._db.writing() as state:
            if (platform, server_id, name) in state.switches:
                state.switches[(platform, server_id, name)] = (enabled, mode)

    async def add_draft(
        self,
        platform: str,
        server_id: str,
        content: PolicyContent,
        base_version: int,
        author: str,
        summary: Mapping[str, int],
        at: datetime,
    ) -> Draft:
        async with self._db.writing() as state:
            draft = Draft(
                id=state.new_id("draft"),
                platform=platform,
                server_id=server_id,
                content=content,
                base_version=base_version,
                author=author,
                summary=dict(summary),
                created_at=at,
            )
            state.drafts[draft.id] = draft
            return draft

    async def get_draft(self, platform: str, server_id: str, draft_id: int) -> Draft | None:
        draft = self._db.state.drafts.get(draft_id)
        return draft if draft is not None and (draft.platform, draft.server_id) == (platform, server_id) else None

    async def mark_draft_applied(self, draft_id: int, applied_by: str, version: int, at: datetime) -> None:
        async with self._db.writing() as state:
            state.drafts[draft_id] = state.drafts[draft_id].model_copy(
                update={"applied_by": applied_by, "applied_version": version, "applied_at": at}
            )


class FakeSettings:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def get(self, platform: str, server_id: str) -> ServerSettings | None:
        return self._db.state.settings.get((platform, server_id))

    async def put(self, settings: ServerSettings, at: datetime) -> None:
        async with self._db.writing() as state:
            state.settings[(settings.platform, settings.server_id)] = settings

    async def every(self) -> list[ServerSettings]:
        return [s for _, s in sorted(self._db.state.settings.items())]


class FakeAudit:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add(self, entry: AuditEntry) -> None:
        async with self._db.writing() as state:
            state.audit.append(entry)

    async def for_server(self, platform: str, server_id: str) -> list[AuditEntry]:
        return [e for e in self._db.state.audit if (e.platform, e.server_id) == (platform, server_id)]


class FakeJobMemory:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def appeals_to_remind(
        self, platform: str, server_id: str, filed_before: datetime, reminded_before: datetime
    ) -> list[Appeal]:
        state = self._db.state
        due = []
        for appeal in await FakeAppeals(self._db).pending(platform, server_id):
            reminded = state.reminders.get(appeal.id)
            if appeal.created_at <= filed_before and (reminded is None or reminded[1] <= reminded_before):
                due.append(appeal.model_copy(update={"second_opinion": ()}))
        return due

    async def mark_reminded(self, appeal_ids: Sequence[int], at: datetime) -> None:
        async with self._db.writing() as state:
            for appeal_id in appeal_ids:
                count = state.reminders.get(appeal_id, (0, at))[0]
                state.reminders[appeal_id] = (count + 1, at)

    async def claim_digest(self, platform: str, server_id: str, day: str, at: datetime) -> bool:
        async with self._db.writing() as state:
            if (platform, server_id, day) in state.digests:
                return False
            state.digests[(platform, server_id, day)] = "claimed"
            return True

    async def set_digest_outcome(self, platform: str, server_id: str, day: str, outcome: str) -> None:
        async with self._db.writing() as state:
            if (platform, server_id, day) in state.digests:
                state.digests[(platform, server_id, day)] = outcome

    async def health(self) -> HealthState:
        return self._db.state.health

    async def save_health(self, state: HealthState, at: datetime) -> None:
        async with self._db.writing() as current:
            current.health = state

    async def alerted_servers(self) -> set[tuple[str, str]]:
        return set(self._db.state.alerts)

    async def mark_alerted(self, platform: str, server_id: str, at: datetime) -> None:
        async with self._db.writing() as state:
            state.alerts.setdefault((platform, server_id), at)

    async def clear_alert(self, platform: str, server_id: str) -> None:
        async with self._db.writing() as state:
            state.alerts.pop((platform, server_id), None)


class FakeStatistics:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def digest_counts(self, platform: str, server_id: str, start: datetime, end: datetime) -> DigestCounts:
        state = self._db.state
        in_span = [
            c
            for c in state.cases.values()
            if (c.message.platform, c.message.server_id) == (platform, server_id) and start <= c.created_at < end
        ]
        decisions = Counter(
            d.action.value
            for d in state.decisions
            if (d.platform, d.server_id) == (platform, server_id) and start <= d.at < end
        )
        span_ids = {
            c.id for c in state.cases.values() if (c.message.platform, c.message.server_id) == (platform, server_id)
        }
        filed = sum(1 for a in state.appeals.values() if a.case_id in span_ids and start <= a.created_at < end)
        # The fake keeps no verdict times: a verdict is as old as its case, a second opinion as its appeal.
        opinions = [
            v
            for a in state.appeals.values()
            if a.case_id in span_ids and start <= a.created_at < end
            for v in a.second_opinion
        ]
        judged = [v for c in in_span for v in c.verdicts] + opinions
        latencies = tuple(v.latency_ms for v in judged if not v.reused and v.latency_ms > 0)
        return DigestCounts(
            messages=len(in_span),
            flagged=sum(c.violation for c in in_span),
            violations=tuple((v.policy, v.rule_ids) for c in in_span for v in c.verdicts if v.violation),
            decisions=dict(decisions),
            appeals_filed=filed,
            latencies_ms=latencies,
        )


class FakeWork:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add(
        self, kind: WorkKind, platform: str, server_id: str, subject: str, payload: Mapping[str, Any], at: datetime
    ) -> int | None:
        async with self._db.writing() as state:
            if any(
                w.state == "pending" and (w.item.kind, w.item.subject) == (kind, subject) for w in state.work.values()
            ):
                return None
            work_id = state.new_id("work")
            state.work[work_id] = _WorkRow(
                WorkItem(work_id, kind, platform, server_id, subject, dict(payload), attempts=0, created_at=at)
            )
            return work_id

    async def waiting(self, exclude: Collection[int], limit: int) -> list[WorkItem]:
        pending = [w.item for w in self._db.state.work.values() if w.state == "pending" and w.item.id not in exclude]
        return pending[:limit]

    async def pending(self, kind: WorkKind, subject: str) -> bool:
        return any(
            w.state == "pending" and (w.item.kind, w.item.subject) == (kind, subject)
            for w in self._db.state.work.values()
        )

    async def record_failure(self, work_id: int, detail: str, at: datetime) -> int:
        async with self._db.writing() as state:
            row = state.work[work_id]
            row.item = replace(row.item, attempts=row.item.attempts + 1)
            row.detail = detail
            return row.item.attempts

    async def finish(self, work_id: int, state: str, detail: str, at: datetime) -> None:
        async with self._db.writing() as current:
            row = current.work[work_id]
            if row.state == "pending":
                row.state, row.detail, row.item = state, detail, replace(row.item, payload={})

    async def counts(self) -> dict[str, int]:
        return dict(Counter(w.state for w in self._db.state.work.values()))


class FakePrivacy:
    def __init__(self, db: _Db) -> None:
        self._db = db

    def _cases_of(self, state: _State, platform: str, server_id: str, user_id: str) -> list[Case]:
        return [
            c
            for c in state.cases.values()
            if (c.message.platform, c.message.server_id, c.message.author.id) == (platform, server_id, user_id)
        ]

    async def member_servers(self, platform: str, user_id: str) -> list[str]:
        state = self._db.state
        found = {
            c.message.server_id
            for c in state.cases.values()
            if (c.message.platform, c.message.author.id) == (platform, user_id)
        }
        found |= {
            row.message.server_id
            for row in state.queue.values()
            if row.message is not None and (row.message.platform, row.message.author.id) == (platform, user_id)
        }
        found |= {d.server_id for d in state.decisions if (d.platform, d.moderator_id) == (platform, user_id)}
        found |= {e.server_id for e in state.audit if (e.platform, e.actor) == (platform, user_id)}
        return sorted(found)

    async def member_records(self, platform: str, server_id: str, user_id: str) -> MemberRecords:
        state = self._db.state
        cases = sorted(self._cases_of(state, platform, server_id, user_id), key=lambda c: c.created_at)
        ids = {c.id for c in cases}
        return MemberRecords(
            cases=tuple(_with_effects(state, c) for c in cases),
            appeals=tuple(a for a in state.appeals.values() if a.case_id in ids and a.author_id == user_id),
            decisions=tuple(d for d in state.decisions if d.case_id in ids),
            queued=tuple(
                row.message
                for row in state.queue.values()
                if row.message is not None
                and row.case_id is None
                and (row.message.platform, row.message.server_id, row.message.author.id)
                == (platform, server_id, user_id)
            ),
        )

    async def erase_member(self, platform: str, server_id: str, user_id: str, at: datetime) -> ErasureCounts:
        async with self._db.writing() as state:
            cases = self._cases_of(state, platform, server_id, user_id)
            ids = {c.id for c in cases}
            for c in cases:
                state.cases[c.id] = c.model_copy(
                    update={
                        "message": _anonymous(c.message),
                        "text_purged_at": c.text_purged_at or at,
                        "verdicts": tuple(_redacted(v) for v in c.verdicts),
                    }
                )
                state.effects[c.id] = [
                    r.model_copy(
                        update={
                            "effect": r.effect.model_copy(update={"reason": ""}),
                            "detail": r.detail.replace(user_id, ERASED_MEMBER),
                            "reference": None
                            if r.effect.kind in (EffectKind.NOTIFY_AUTHOR, EffectKind.NOTIFY_APPEAL_OUTCOME)
                            else r.reference,
                        }
                    )
                    for r in state.effects.get(c.id, [])
                ]
            appeals = 0
            for appeal_id, a in list(state.appeals.items()):
                if a.case_id in ids:
                    state.appeals[appeal_id] = a.model_copy(
                        update={
                            "author_id": ERASED_MEMBER,
                            "statement": "",
                            "note": "",
                            "second_opinion": tuple(_redacted(v) for v in a.second_opinion),
                        }
                    )
                    appeals += 1
            decisions = 0
            for i, d in enumerate(state.decisions):
                if d.case_id in ids:
                    state.decisions[i] = d.model_copy(update={"note": ""})
                    decisions += 1
            queued = 0
            for row in state.queue.values():
                m = row.message
                if m is not None and (m.platform, m.server_id, m.author.id) == (platform, server_id, user_id):
                    row.message = _anonymous(m)
                    queued += row.case_id is None
            return ErasureCounts(cases=len(cases), appeals=appeals, decisions=decisions, queued=queued)

    async def scrub_free_space(self) -> None:
        return None


def _anonymous(message: Message) -> Message:
    author = message.author.model_copy(update={"id": ERASED_MEMBER, "name": "", "roles": ()})
    return message.model_copy(update={"text": "", "author": author, "attachments": ()})
