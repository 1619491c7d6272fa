"""What the core needs of persistence, as small Protocols; `bot.store.sqlite` is one implementation.

Everything a server owns is keyed by (platform, server id): a console server "g1" and a
Discord guild "g1" share nothing. Repositories speak in domain types, never in SQL.

A call on a repository outside a unit of work is its own transaction. Calls made on the
repositories a unit of work hands out (`async with store.transaction() as tx:`) commit
together when the block ends, and none of them does if it raises. A second store (for
example PostgreSQL, for several bot processes) implements these Protocols in `bot/store/`
and passes the contract suite in tests/store_contract/; nothing in `bot/workflow/` changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from bot.domain import (
    Appeal,
    AppealStatus,
    AuthorHistory,
    AuthorNotice,
    Case,
    CaseStatus,
    DecisionAction,
    Effect,
    EffectOutcome,
    EffectRecord,
    FlagJoins,
    Frozen,
    HumanDecision,
    Message,
    Mode,
    Policy,
    ServerSettings,
    UtcDatetime,
    Verdict,
)
from bot.store.intake import IntakeOutcome

Stage = Literal["review", "appeal"]

# Cases a moderator still has to look at: an edit or a deletion of their message is noted
# on them, and their flag post is updated.
AWAITING_A_PERSON = frozenset({CaseStatus.OPEN, CaseStatus.NEEDS_REVIEW, CaseStatus.APPEALED})
# Cases whose text is the evidence of a violation: a deletion by the author does not purge
# it (retention does, on the server's schedule), or deleting abuse would erase the case.
KEPT_AS_EVIDENCE = AWAITING_A_PERSON | {CaseStatus.CONFIRMED, CaseStatus.UPHELD}

# Authors named beside a raid's flag: enough for moderators to act on, bounded for the post.
MAX_JOINED_AUTHORS = 100


class DuplicateDecision(Exception):
    """A case's review (or its appeal) was already decided: a decision is made once per stage."""


class DuplicateAppeal(Exception):
    """The case already has an appeal: a case is appealed once."""


class RunnerLockHeld(Exception):
    """Another bot process runs on this database: one bot process per database."""


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class QueueItem:
    """One revision of one message waiting in the queue (state pending) or for its effects (acting)."""

    id: int
    message: Message
    state: str
    case_id: str | None
    revision: int = 1
    enqueued_at: datetime | None = None
    # A newer revision of the same message was accepted since: this one is not judged.
    superseded: bool = False


@dataclass(frozen=True)
class Intake:
    """What became of one delivered message."""

    outcome: IntakeOutcome
    queue_id: int | None = None
    revision: int | None = None
    # Cases awaiting a person about earlier revisions: each got an EDITED note, and those
    # with a flag post an UPDATE_FLAG intent to carry out.
    noted_cases: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        """Recorded (to judge now, later, or never for a stale revision): the platform may acknowledge it."""
        return self.outcome in (IntakeOutcome.QUEUED, IntakeOutcome.HELD, IntakeOutcome.STALE)


@dataclass(frozen=True)
class Deletion:
    """What a message's deletion by its author changed."""

    cancelled: int  # queued revisions that will not be judged
    purged: int  # cases whose text was removed
    # Flagged cases about it: they keep their text as evidence and note the deletion; those
    # awaiting a person with a flag post also got an UPDATE_FLAG intent.
    noted_cases: tuple[str, ...] = ()


class WorkKind(StrEnum):
    """Interactive work: queued ahead of the bulk of messages, its result posted when it arrives."""

    SECOND_OPINION = "second_opinion"  # an appeal's high-effort second opinion
    PREVIEW = "preview"  # a draft policy judged against recent messages


@dataclass(frozen=True)
class WorkItem:
    id: int
    kind: WorkKind
    platform: str
    server_id: str
    subject: str  # what it is about ("appeal 12"): the same work is never queued twice at once
    payload: Mapping[str, Any]
    attempts: int  # unexpected failures so far (a model outage is not one)
    created_at: datetime


@dataclass(frozen=True)
class QueueBacklog:
    """Messages accepted and not yet finished, and when the oldest of them was accepted (metrics)."""

    depth: int
    oldest_enqueued_at: datetime | None


@dataclass(frozen=True)
class LivePolicy:
    """The newest version of a policy, with the switches that say how it runs."""

    policy: Policy
    enabled: bool
    mode: Mode | None


class PolicyContent(Frozen):
    """What one version of a policy is made of: the model's text and how its notices read."""

    name: str
    text: str
    description: str = ""
    sensitive: bool = False
    author_notice: AuthorNotice = AuthorNotice.REMOVAL
    notice_text: str = ""

    @classmethod
    def of(cls, policy: Policy) -> PolicyContent:
        return cls(
            name=policy.name,
            text=policy.text,
            description=policy.description,
            sensitive=policy.sensitive,
            author_notice=policy.author_notice,
            notice_text=policy.notice_text,
        )

    def same_as(self, policy: Policy) -> bool:
        return self == PolicyContent.of(policy).model_copy(update={"description": self.description})


class Draft(Frozen):
    """A previewed policy text that is not live until applied."""

    id: int
    platform: str
    server_id: str
    content: PolicyContent
    base_version: int  # the live version it was previewed against; 0 for a new policy
    author: str
    summary: dict[str, int]  # the preview's counts (no message text)
    created_at: UtcDatetime
    applied_by: str | None = None
    applied_at: UtcDatetime | None = None
    applied_version: int | None = None

    @property
    def name(self) -> str:
        return self.content.name


class AuditEntry(Frozen):
    """One change to a server's policies or settings, or a self-review: who, when, from what to what."""

    platform: str
    server_id: str
    actor: str
    action: str
    subject: str
    before: str | None = None
    after: str | None = None
    at: UtcDatetime


class HealthState(Frozen):
    failing_since: UtcDatetime | None = None
    healthy_since: UtcDatetime | None = None
    last_problem: str = ""


@dataclass(frozen=True)
class DigestCounts:
    """A server's activity over a period, as the daily digest reports it."""

    messages: int = 0
    flagged: int = 0
    # (policy, rule ids) of each violating first-pass verdict
    violations: tuple[tuple[str, tuple[str, ...]], ...] = ()
    decisions: Mapping[str, int] = field(default_factory=dict)  # action -> count
    appeals_filed: int = 0
    # milliseconds of each model call (reused verdicts excluded)
    latencies_ms: tuple[float, ...] = ()


@dataclass(frozen=True)
class CaseQuery:
    """Which cases of one server to list: no SQL crosses this boundary, only these fields."""

    platform: str
    server_id: str
    statuses: Collection[CaseStatus] | None = None
    text_retained: bool | None = None  # True: only cases whose text retention has not purged
    author_id: str | None = None  # only this author's cases
    newest_first: bool = False
    limit: int = 50


# What an erased member's id becomes wherever a record is kept: never a platform's id.
ERASED_MEMBER = "(erased)"


@dataclass(frozen=True)
class MemberRecords:
    """What the store holds about one member's messages in one server, for a data-subject request."""

    cases: tuple[Case, ...] = ()  # cases of the member's messages, with verdicts and effects, oldest first
    appeals: tuple[Appeal, ...] = ()  # the member's appeals, with second opinions
    decisions: tuple[HumanDecision, ...] = ()  # moderators' decisions on those cases
    queued: tuple[Message, ...] = ()  # the member's messages accepted but not judged yet


@dataclass(frozen=True)
class ErasureCounts:
    """What an erasure changed: texts removed, ids replaced; the decisions themselves are kept."""

    cases: int = 0
    appeals: int = 0
    decisions: int = 0  # decisions on the member's cases kept, their notes cleared
    queued: int = 0


# ---------------------------------------------------------------- repositories


class CaseRepository(Protocol):
    async def get(self, case_id: str) -> Case | None: ...

    async def get_many(self, case_ids: Sequence[str]) -> list[Case]: ...

    async def for_message(self, platform: str, server_id: str, message_id: str) -> Case | None: ...

    async def find(self, query: CaseQuery) -> list[Case]: ...

    def every(self) -> AsyncIterator[Case]:
        """Every case of every server, oldest first, a page at a time (exports)."""
        ...

    async def set_status(
        self, case_id: str, status: CaseStatus, decided_by: str | None = None, at: datetime | None = None
    ) -> None: ...

    async def count_strikes(self, platform: str, server_id: str, author_id: str, since: datetime) -> int:
        """Cases by the author created since, confirmed or upheld, that count as strikes.

        A case whose flagging verdicts all come from policies with a SUPPORT notice (self-harm)
        is never a strike.
        """
        ...

    async def author_history(
        self, platform: str, server_id: str, author_id: str, since: datetime, exclude_case_id: str | None = None
    ) -> AuthorHistory:
        """Cases flagged since (not clean, not skipped), and how many of those were confirmed or upheld."""
        ...

    async def flag_joins(self, case_id: str, max_authors: int = MAX_JOINED_AUTHORS) -> FlagJoins:
        """Repeats that joined this case's flag (`Case.joined_case_id`): how many, and their
        distinct authors in the order they first joined, at most `max_authors`."""
        ...

    async def servers_with_text(self) -> list[tuple[str, str]]:
        """Servers holding message text or an appeal statement retention has not removed yet."""
        ...

    async def purge_text(self, platform: str, server_id: str, created_before: datetime, at: datetime) -> int:
        """Remove the text of the server's cases created before the cutoff, and every copy of it.

        The copies: verdicts' rationale, reasoning and raw output (second opinions too), the
        appeal statement, effects' reasons. Statements of appeals filed before the cutoff go
        too, whenever their case was purged. Rule ids, statuses and decisions stay. Returns
        how many cases lost their text; the removed content is unrecoverable from storage.
        """
        ...


class EffectRepository(Protocol):
    async def add_intents(self, case_id: str, effects: Sequence[Effect]) -> list[EffectRecord]:
        """Record effects after the case's last one: pending, or shadow for a shadow effect."""
        ...

    async def claim(self, case_id: str, seq: int) -> bool:
        """Mark a pending effect started; False if it was not pending (another worker has it)."""
        ...

    async def set_outcome(
        self,
        case_id: str,
        seq: int,
        outcome: EffectOutcome,
        detail: str = "",
        finish_queue_id: int | None = None,
        reference: str | None = None,
    ) -> None:
        """Record an effect's result; with finish_queue_id, also complete that queue item."""
        ...


class AppealRepository(Protocol):
    async def add(self, case_id: str, author_id: str, statement: str, at: datetime) -> Appeal:
        """Record an appeal; raises DuplicateAppeal when the case has one."""
        ...

    async def for_case(self, case_id: str) -> Appeal | None: ...

    async def pending(self, platform: str, server_id: str) -> list[Appeal]:
        """The server's appeals awaiting a decision, oldest first."""
        ...

    async def decide(self, appeal_id: int, status: AppealStatus, decided_by: str, note: str, at: datetime) -> None: ...

    async def add_second_opinion(self, appeal_id: int, case_id: str, verdicts: Sequence[Verdict]) -> None: ...


class DecisionRepository(Protocol):
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
        """Record a human decision; raises DuplicateDecision when its stage was decided already."""
        ...

    async def first(self, case_id: str, stage: Stage) -> HumanDecision | None: ...

    async def for_case(self, case_id: str) -> list[HumanDecision]: ...

    async def for_server(self, platform: str, server_id: str) -> list[HumanDecision]: ...

    async def every(self) -> list[HumanDecision]: ...


class PolicyRepository(Protocol):
    async def add_version(self, platform: str, server_id: str, content: PolicyContent, author: str) -> Policy:
        """Store the next version (never an overwrite); a new policy starts enabled."""
        ...

    async def versions(self, platform: str, server_id: str, name: str) -> list[Policy]: ...

    async def live(self, platform: str, server_id: str) -> list[LivePolicy]: ...

    async def set_switches(
        self, platform: str, server_id: str, name: str, enabled: bool, mode: Mode | None
    ) -> None: ...

    async def add_draft(
        self,
        platform: str,
        server_id: str,
        content: PolicyContent,
        base_version: int,
        author: str,
        summary: Mapping[str, int],
        at: datetime,
    ) -> Draft: ...

    async def get_draft(self, platform: str, server_id: str, draft_id: int) -> Draft | None: ...

    async def mark_draft_applied(self, draft_id: int, applied_by: str, version: int, at: datetime) -> None: ...


class SettingsRepository(Protocol):
    async def get(self, platform: str, server_id: str) -> ServerSettings | None: ...

    async def put(self, settings: ServerSettings, at: datetime) -> None: ...

    async def every(self) -> list[ServerSettings]: ...


class AuditRepository(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...

    async def for_server(self, platform: str, server_id: str) -> list[AuditEntry]: ...


class JobMemory(Protocol):
    """What keeps the scheduled jobs from repeating themselves (reminders, digests, health alerts)."""

    async def appeals_to_remind(
        self, platform: str, server_id: str, filed_before: datetime, reminded_before: datetime
    ) -> list[Appeal]: ...

    async def mark_reminded(self, appeal_ids: Sequence[int], at: datetime) -> None: ...

    async def claim_digest(self, platform: str, server_id: str, day: str, at: datetime) -> bool:
        """True for the first claim of a server's digest for that day, False ever after."""
        ...

    async def set_digest_outcome(self, platform: str, server_id: str, day: str, outcome: str) -> None: ...

    async def health(self) -> HealthState: ...

    async def save_health(self, state: HealthState, at: datetime) -> None: ...

    async def alerted_servers(self) -> set[tuple[str, str]]: ...

    async def mark_alerted(self, platform: str, server_id: str, at: datetime) -> None: ...

    async def clear_alert(self, platform: str, server_id: str) -> None: ...


class PrivacyRepository(Protocol):
    """Data-subject requests: one member's records found, exported and erased."""

    async def member_servers(self, platform: str, user_id: str) -> list[str]:
        """Servers of the platform holding the member's messages, cases, appeals, decisions or changes."""
        ...

    async def member_records(self, platform: str, server_id: str, user_id: str) -> MemberRecords: ...

    async def erase_member(self, platform: str, server_id: str, user_id: str, at: datetime) -> ErasureCounts:
        """Remove the member's texts and replace their id by ERASED_MEMBER, in one server.

        Removed: message texts (also of messages still queued), attachment names, display
        names and roles, the model's rationale, reasoning and raw output, appeal statements,
        effect reasons, the notes of decisions on their cases and appeals, the address of DMs
        to them.
        Kept: every case, verdict (rule ids, confidence), effect and decision, with the
        author id replaced. What the id did as a moderator is kept (accountability).
        """
        ...

    async def scrub_free_space(self) -> None:
        """Make what was removed unrecoverable from storage (SQLite: empty the write-ahead log)."""
        ...


class StatisticsRepository(Protocol):
    async def digest_counts(self, platform: str, server_id: str, start: datetime, end: datetime) -> DigestCounts: ...


class WorkRepository(Protocol):
    """Interactive work (appeal second opinions, previews), durable until done."""

    async def add(
        self, kind: WorkKind, platform: str, server_id: str, subject: str, payload: Mapping[str, Any], at: datetime
    ) -> int | None:
        """Queue work; None when the same kind and subject is already waiting."""
        ...

    async def waiting(self, exclude: Collection[int], limit: int) -> list[WorkItem]:
        """Pending work, oldest first, leaving out the ids this process holds already."""
        ...

    async def pending(self, kind: WorkKind, subject: str) -> bool:
        """Whether that work is queued and not finished yet."""
        ...

    async def record_failure(self, work_id: int, detail: str, at: datetime) -> int:
        """Count an unexpected failure; returns the attempts so far."""
        ...

    async def finish(self, work_id: int, state: Literal["done", "failed"], detail: str, at: datetime) -> None: ...

    async def counts(self) -> dict[str, int]: ...


class Repositories(Protocol):
    """The repositories, each bound to one unit of work or each call its own transaction."""

    @property
    def cases(self) -> CaseRepository: ...

    @property
    def effects(self) -> EffectRepository: ...

    @property
    def appeals(self) -> AppealRepository: ...

    @property
    def decisions(self) -> DecisionRepository: ...

    @property
    def policies(self) -> PolicyRepository: ...

    @property
    def settings(self) -> SettingsRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def jobs(self) -> JobMemory: ...

    @property
    def statistics(self) -> StatisticsRepository: ...

    @property
    def work(self) -> WorkRepository: ...

    @property
    def privacy(self) -> PrivacyRepository: ...


class ModerationStore(Repositories, Protocol):
    """The whole store: the pipeline's durable intake, the repositories, and units of work."""

    def transaction(self) -> AbstractAsyncContextManager[Repositories]:
        """A unit of work: the repositories it yields commit together, or not at all."""
        ...

    async def close(self) -> None:
        """Finish the writes handed in, release the runner lock if held, and close."""
        ...

    async def take_runner_lock(self, who: str) -> None:
        """Be the only bot process on this store until close(); raises RunnerLockHeld if another is."""
        ...

    # ------------------------------------------------------------ the pipeline's intake

    async def intake(
        self, message: Message, *, hold_until: datetime | None = None, flag_update: Effect | None = None
    ) -> Intake:
        """Store one delivered revision of a message durably (bot.store.intake says where it stands).

        A new revision of an edited message is held until `hold_until` when given (edits
        faster than the per-author limit). Cases awaiting a person about earlier revisions
        get an EDITED note, and `flag_update` as an intent when they have a flag post.
        """
        ...

    async def enqueue(self, message: Message) -> int | None:
        """Store a message durably; its queue id, or None if it is not queued to be judged (seen before)."""
        ...

    async def waiting_page(self, now: datetime, exclude: Collection[int], limit: int) -> list[QueueItem]:
        """The oldest revisions waiting (pending and due, or acting), leaving out `exclude` (held in memory)."""
        ...

    async def open_queue_items(self) -> list[QueueItem]:
        """Every revision waiting, at once: for tests and small tools; the pipeline reads pages."""
        ...

    async def queue_state(self, platform: str, server_id: str, message_id: str) -> str | None:
        """The state of the message's latest revision."""
        ...

    async def queue_counts(self) -> dict[str, int]: ...

    async def supersede(self, queue_id: int) -> None:
        """A newer revision of the message came: this pending one is never judged."""
        ...

    async def record_decision(self, queue_id: int, case: Case, effects: Sequence[tuple[Effect, EffectOutcome]]) -> bool:
        """Write the case, its verdicts and effect intents, and advance the queue item, together.

        False (nothing written) when the item was cancelled meanwhile: the author deleted the
        message or the bot left the server while it was being judged.
        """
        ...

    async def message_deleted(
        self, platform: str, server_id: str, message_id: str, at: datetime, flag_update: Effect | None = None
    ) -> Deletion:
        """The author deleted the message: cancel its queued revisions, purge its text, note open cases.

        Later deliveries of the message (a replayed create or edit) are refused.
        """
        ...

    async def server_removed(self, platform: str, server_id: str, at: datetime) -> int:
        """The bot left the server (or the workspace uninstalled it): drop its queued work; returns how much."""
        ...

    async def queue_backlog(self) -> QueueBacklog:
        """How many revisions wait (held ones included, or being decided), and the oldest one's intake time.

        Read at every metrics scrape: its cost must follow the backlog, not the history.
        """
        ...

    async def finish_queue_item(self, queue_id: int) -> None: ...

    async def cases_with_unfinished_effects(self) -> list[str]:
        """Decided cases (queue item done) with an effect still pending or started."""
        ...

    async def size_bytes(self) -> int:
        """What the store takes on disk (0 in memory)."""
        ...

    async def forget_clean_reasoning(self, decided_before: datetime, limit: int) -> int:
        """Clear the model's reasoning and raw output of clean cases decided before the cutoff.

        Violations and cases a person reviewed keep theirs. At most `limit` verdicts a call.
        """
        ...

    async def reclaim_space(self, max_pages: int) -> int:
        """Give free pages back to the file system (after retention); returns how many."""
        ...

    def describe(self) -> Mapping[str, Any]:
        """Where the store keeps its data, for `modbot status`."""
        ...


__all__ = [
    "AWAITING_A_PERSON",
    "ERASED_MEMBER",
    "KEPT_AS_EVIDENCE",
    "AppealRepository",
    "AuditEntry",
    "AuditRepository",
    "CaseQuery",
    "CaseRepository",
    "DecisionRepository",
    "Deletion",
    "DigestCounts",
    "Draft",
    "DuplicateAppeal",
    "DuplicateDecision",
    "EffectRepository",
    "ErasureCounts",
    "HealthState",
    "Intake",
    "IntakeOutcome",
    "JobMemory",
    "LivePolicy",
    "MemberRecords",
    "ModerationStore",
    "PolicyContent",
    "PolicyRepository",
    "PrivacyRepository",
    "QueueBacklog",
    "QueueItem",
    "Repositories",
    "RunnerLockHeld",
    "SettingsRepository",
    "Stage",
    "StatisticsRepository",
    "WorkItem",
    "WorkKind",
    "WorkRepository",
]
