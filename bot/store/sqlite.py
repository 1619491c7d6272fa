"""The embedded store on aiosqlite: one WAL-mode file holds the bot's whole state.

It implements the Protocols of `bot.store.ports`; this is the only module with SQL in it
(besides the migrations).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

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
    utcnow,
)
from bot.store._group_commit import GroupCommit
from bot.store._migrations import migrate
from bot.store._runner_lock import RunnerLock
from bot.store._settings_rows import settings_from_row
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
    Stage,
    WorkItem,
    WorkKind,
)

Clock = Callable[[], datetime]

log = logging.getLogger(__name__)

# Re-exported for callers that built on the store module before the ports existed.
__all__ = ["LivePolicy", "QueueItem", "SqliteStore"]

_VERDICT_COLUMNS = (
    "policy, policy_version, status, violation, policy_category, rule_ids, confidence, rationale, reasoning,"
    " raw_output, model, effort, latency_ms, prompt_tokens, completion_tokens, reused"
)
# The verdict columns read with a clean case's reasoning from clean_reasoning while it is kept.
_VERDICT_WITH_REASONING = ", ".join(
    f"COALESCE(r.{c}, v.{c})" if c in ("reasoning", "raw_output") else f"v.{c}"
    for c in (name.strip() for name in _VERDICT_COLUMNS.split(","))
)
_DECISION_COLUMNS = "id, case_id, platform, server_id, action, violation, moderator_id, note, at, self_review"
_POLICY_COLUMNS = (
    "platform, server_id, name, version, text, description, author, created_at, sensitive, author_notice, notice_text"
)
_DRAFT_COLUMNS = (
    "id, platform, server_id, name, text, description, base_version, author, summary, created_at, applied_by,"
    " applied_at, applied_version, sensitive, author_notice, notice_text"
)
_APPEAL_COLUMNS = (
    "a.id, a.case_id, a.author_id, a.statement, a.status, a.decided_by, a.note, a.created_at, a.decided_at"
)
# A case counts as a strike once a person has said it violates.
_STRIKE_STATUSES = (CaseStatus.CONFIRMED.value, CaseStatus.UPHELD.value)
_FLAGGING = "(v.violation = 1 OR v.status = 'needs_review')"
# Cases purged per transaction by retention.
_PURGE_CHUNK = 500


# The file holds members' messages and ids: readable and writable by the bot's own user only.
PRIVATE_MODE = 0o600


def keep_private(path: Path) -> None:
    """Create the database file with mode 0600, and take group and other access off existing files.

    SQLite creates the -wal and -shm files with the main file's mode, so they follow it.
    A file made readable by others (by hand, or by an older modbot under umask 022) is
    narrowed and the change logged; a file this user cannot change is only warned about.
    """
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_MODE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if not mode & 0o077:
            continue
        try:
            file.chmod(PRIVATE_MODE)
        except OSError as exc:
            log.warning("%s is readable by others (mode %o) and cannot be narrowed: %s", file, mode, exc)
        else:
            log.warning(
                "%s was readable by others (mode %o); now %o, as the bot's data is private", file, mode, PRIVATE_MODE
            )


_AUTO_VACUUM_MODES = {0: "none", 1: "full", 2: "incremental"}
# A bot converts a file made before incremental auto-vacuum at start-up when it is at most
# this big: VACUUM rewrites the whole file (seconds for this size) and needs as much free
# disk again. A bigger file waits for `modbot db compact`, run when the operator chooses.
AUTO_CONVERT_MAX_BYTES = 256 * 1024 * 1024


def _at(value: datetime) -> str:
    return value.isoformat()


def _when(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


class _Db:
    """The connection as a repository uses it: bound to a unit of work, or a transaction per write."""

    def __init__(self, store: SqliteStore, conn: aiosqlite.Connection | None) -> None:
        self.store = store
        self._tx_conn = conn

    @property
    def in_transaction(self) -> bool:
        return self._tx_conn is not None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        return await self.store.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        return await self.store.fetchone(sql, params)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._tx_conn is not None:
            yield self._tx_conn
            return
        async with self.store.raw_transaction() as conn:
            yield conn


class _Repositories:
    """Every repository over one _Db (the store's, or a unit of work's)."""

    def __init__(self, db: _Db) -> None:
        self.cases = SqliteCases(db)
        self.effects = SqliteEffects(db)
        self.appeals = SqliteAppeals(db)
        self.decisions = SqliteDecisions(db)
        self.policies = SqlitePolicies(db)
        self.settings = SqliteSettings(db)
        self.audit = SqliteAudit(db)
        self.jobs = SqliteJobMemory(db)
        self.statistics = SqliteStatistics(db)
        self.work = SqliteWork(db)
        self.privacy = SqlitePrivacy(db)


class SqliteStore(_Repositories):
    """All reads and writes go through one connection; a lock keeps transactions whole."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, now: Clock) -> None:
        self._conn = conn
        self.path = path
        self.now = now
        self._tx_lock = asyncio.Lock()
        self._intake = GroupCommit(self.raw_transaction, self._write_intake)
        self._decisions = GroupCommit(self.raw_transaction, self._write_decisions)
        self._outcomes = GroupCommit(self.raw_transaction, self._write_outcomes)
        self._claims = GroupCommit(self.raw_transaction, self._write_claims)
        self._runner_lock: RunnerLock | None = None
        # 'incremental': free pages go back to the file system (reclaim_space); 'none' for a
        # file made before modbot turned it on, until it is converted (convert_to_incremental_vacuum).
        self.auto_vacuum = "none"
        # (platform, server, stored JSON) of settings rows whose repair was logged already.
        self.settings_repairs_logged: set[tuple[str, str, str]] = set()
        super().__init__(_Db(self, None))

    @classmethod
    async def open(
        cls, path: Path | str, now: Clock = utcnow, busy_timeout_ms: int = 10_000, *, runner: str | None = None
    ) -> SqliteStore:
        """Open (and migrate) the database; with `runner`, as the one bot process on it.

        The runner lock is taken before anything is migrated, so that a second bot (an
        upgraded one, say) never changes the schema under a running one. A runner also turns
        on incremental auto-vacuum in a small file made before it existed (see
        AUTO_CONVERT_MAX_BYTES); a larger one is left to `modbot db compact`.
        """
        path = Path(path)
        lock: RunnerLock | None = None
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            keep_private(path)
            if runner is not None:
                lock = RunnerLock.take(path, runner)
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # Only takes on a file with no table yet: a new file gives space back after
            # retention; an older one is converted by convert_to_incremental_vacuum.
            await conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            await conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a process crash (the promise we make); power loss
            # can lose the last transactions. FULL would fsync every commit.
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            # Deleted and overwritten content is zeroed in the file, so that text removed by
            # retention or erasure is gone from the disk too, not left in free space.
            await conn.execute("PRAGMA secure_delete = ON")
            await migrate(conn)
            async with conn.execute("PRAGMA auto_vacuum") as cur:
                mode = await cur.fetchone()
        except BaseException:
            await conn.close()
            if lock is not None:
                lock.release()
            raise
        store = cls(conn, path, now)
        store._runner_lock = lock
        store.auto_vacuum = _AUTO_VACUUM_MODES.get(int(mode[0]) if mode else 0, "none")
        if lock is not None and store.auto_vacuum == "none" and await store.size_bytes() <= AUTO_CONVERT_MAX_BYTES:
            log.info("turning on incremental auto-vacuum (rewrites the database file once)")
            await store.convert_to_incremental_vacuum()
        return store

    async def close(self) -> None:
        # Batches already handed to a group commit are written before the connection goes.
        for batch in (self._intake, self._decisions, self._outcomes, self._claims):
            await batch.wait_idle()
        await self._conn.close()
        if self._runner_lock is not None:
            self._runner_lock.release()
            self._runner_lock = None

    async def take_runner_lock(self, who: str) -> None:
        """Be the one bot process on this database, until close(); RunnerLockHeld if another one is."""
        if str(self.path) == ":memory:" or self._runner_lock is not None:
            return
        self._runner_lock = RunnerLock.take(self.path, who)

    async def convert_to_incremental_vacuum(self) -> bool:
        """Turn on incremental auto-vacuum in a file made before it was on: VACUUM rewrites the whole file.

        It needs the database to itself for as long as the rewrite takes, and free disk space
        as large as the file. False if it was on already.
        """
        if self.auto_vacuum == "incremental" or str(self.path) == ":memory:":
            return False
        async with self._tx_lock:
            await self._conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            await self._conn.execute("VACUUM")
            async with self._conn.execute("PRAGMA auto_vacuum") as cur:
                mode = await cur.fetchone()
        self.auto_vacuum = _AUTO_VACUUM_MODES.get(int(mode[0]) if mode else 0, "none")
        return self.auto_vacuum == "incremental"

    @property
    def connection(self) -> aiosqlite.Connection:
        return self._conn

    @asynccontextmanager
    async def raw_transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One SQLite transaction on the connection (for this module, migrations and tests)."""
        async with self._tx_lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def truncate_wal(self) -> None:
        """Copy the write-ahead log into the file and empty it: removed text leaves no old page behind there."""
        async with self._tx_lock:
            await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Repositories]:
        async with self.raw_transaction() as conn:
            yield _Repositories(_Db(self, conn))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        # Executed and read to the end in one call on the connection's thread. Executed and
        # fetched in two, a read left open between them holds a snapshot; a transaction
        # another task begins on this connection in that gap fails at once with "database
        # is locked" if another process wrote since (an admin command beside the bot).
        return list(await self._conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    def _ts(self) -> str:
        return self.now().isoformat()

    async def size_bytes(self) -> int:
        if str(self.path) == ":memory:":
            return 0
        files = [self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")]
        return sum(f.stat().st_size for f in files if f.exists())

    def describe(self) -> Mapping[str, Any]:
        return {"kind": "sqlite", "path": str(self.path), "auto_vacuum": self.auto_vacuum}

    # ------------------------------------------------------------ queue

    async def intake(
        self, message: Message, *, hold_until: datetime | None = None, flag_update: Effect | None = None
    ) -> Intake:
        return await self._intake.add((message, hold_until, flag_update))

    async def enqueue(self, message: Message) -> int | None:
        """Store a message durably. Returns its queue id, or None if it is not queued to be judged."""
        taken = await self.intake(message)
        return taken.queue_id if taken.outcome in (IntakeOutcome.QUEUED, IntakeOutcome.HELD) else None

    async def _write_intake(
        self, conn: aiosqlite.Connection, items: Sequence[tuple[Message, datetime | None, Effect | None]]
    ) -> list[Intake]:
        ts = self._ts()
        keys = list(dict.fromkeys(m.key for m, _, _ in items))
        known: dict[tuple[str, str, str], list[KnownRevision]] = {key: [] for key in keys}
        for start in range(0, len(keys), 300):
            chunk = keys[start : start + 300]
            async with conn.execute(
                "SELECT platform, server_id, message_id, revision, text_digest, revised_at, deleted_at FROM queue"
                f" WHERE (platform, server_id, message_id) IN (VALUES {','.join(['(?, ?, ?)'] * len(chunk))})",
                [part for key in chunk for part in key],
            ) as cur:
                for r in await cur.fetchall():
                    known[(r[0], r[1], r[2])].append(
                        KnownRevision(r[3], r[4], datetime.fromisoformat(r[5]), deleted=r[6] is not None)
                    )
        # Placed in order, so that an edit arriving in the same batch as its message follows it.
        placed: list[tuple[IntakeOutcome, tuple[str, str, str], int | None, Effect | None, str | None]] = []
        rows: list[tuple[Any, ...]] = []
        for message, hold_until, flag_update in items:
            digest = text_digest(message.text)
            where = place(known[message.key], message, digest)
            outcome, revision = where.outcome, where.revision
            body: str | None = None
            if revision is not None:
                state, held = "pending", None
                if outcome is IntakeOutcome.STALE:
                    state = "superseded"  # recorded so that a replay of it is a repeat; never judged
                else:
                    body = message.model_dump_json(exclude_defaults=True)
                    if revision > 1 and hold_until is not None:
                        outcome, held = IntakeOutcome.HELD, _at(hold_until)
                rows.append((*message.key, revision, digest, _at(message.revised_at), state, held, ts, ts))
                known[message.key].append(KnownRevision(revision, digest, message.revised_at))
            placed.append((outcome, message.key, revision, flag_update, body))
        async with conn.execute("SELECT COALESCE(MAX(id), 0) FROM queue") as cur:
            row = await cur.fetchone()
        before = int(row[0]) if row else 0
        await conn.executemany(
            "INSERT INTO queue (platform, server_id, message_id, revision, text_digest, revised_at,"
            " state, not_before, enqueued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        # Inside BEGIN IMMEDIATE nobody else writes: the rows above the old maximum are this batch's.
        async with conn.execute(
            "SELECT id, platform, server_id, message_id, revision FROM queue WHERE id > ?", (before,)
        ) as cur:
            ids = {(r[1], r[2], r[3], r[4]): int(r[0]) for r in await cur.fetchall()}
        await conn.executemany(
            "INSERT INTO queue_messages (queue_id, message) VALUES (?, ?)",
            [(ids[(*key, revision)], body) for _, key, revision, _, body in placed if body is not None],
        )
        results: list[Intake] = []
        for outcome, key, revision, flag_update, _ in placed:
            if revision is None:
                results.append(Intake(outcome))
                continue
            noted: tuple[str, ...] = ()
            if revision > 1 and outcome is not IntakeOutcome.STALE:
                noted = await _note_cases(conn, key, CaseNoteKind.EDITED, revision, AWAITING_A_PERSON, flag_update, ts)
            results.append(Intake(outcome, ids[(*key, revision)], revision, noted))
        return results

    async def waiting_page(self, now: datetime, exclude: Collection[int], limit: int) -> list[QueueItem]:
        rows = await self.fetchall(
            "SELECT q.id, m.message, q.state, q.case_id, q.revision, q.enqueued_at,"
            # A pending revision is superseded once a newer revision of the message was accepted.
            " q.state = 'pending' AND EXISTS (SELECT 1 FROM queue n WHERE n.platform = q.platform"
            " AND n.server_id = q.server_id AND n.message_id = q.message_id AND n.id != q.id"
            " AND n.state != 'superseded' AND (n.revised_at > q.revised_at"
            " OR (n.revised_at = q.revised_at AND n.revision > q.revision)))"
            " FROM queue q JOIN queue_messages m ON m.queue_id = q.id"
            " WHERE q.state IN ('pending', 'acting') AND (q.not_before IS NULL OR q.not_before <= ?)"
            " AND q.id NOT IN (SELECT value FROM json_each(?)) ORDER BY q.id LIMIT ?",
            (_at(now), json.dumps(sorted(exclude)), int(limit)),
        )
        return [_queue_item(r) for r in rows]

    async def open_queue_items(self) -> list[QueueItem]:
        return await self.waiting_page(datetime.max.replace(tzinfo=UTC), (), 1 << 62)

    async def queue_state(self, platform: str, server_id: str, message_id: str) -> str | None:
        row = await self.fetchone(
            "SELECT state FROM queue WHERE platform = ? AND server_id = ? AND message_id = ?"
            " ORDER BY revised_at DESC, revision DESC LIMIT 1",
            (platform, server_id, message_id),
        )
        return str(row[0]) if row else None

    async def queue_counts(self) -> dict[str, int]:
        rows = await self.fetchall("SELECT state, COUNT(*) FROM queue GROUP BY state")
        return {r[0]: int(r[1]) for r in rows}

    async def supersede(self, queue_id: int) -> None:
        async with self.raw_transaction() as conn:
            await conn.execute(
                "UPDATE queue SET state = 'superseded', updated_at = ? WHERE id = ? AND state = 'pending'",
                (self._ts(), queue_id),
            )
            await _forget_messages(conn, "queue_id = ?", (queue_id,))

    async def message_deleted(
        self, platform: str, server_id: str, message_id: str, at: datetime, flag_update: Effect | None = None
    ) -> Deletion:
        key = (platform, server_id, message_id)
        ts = _at(at)
        async with self.raw_transaction() as conn:
            cur = await conn.execute(
                "UPDATE queue SET state = 'cancelled', updated_at = ?"
                " WHERE platform = ? AND server_id = ? AND message_id = ? AND state = 'pending'",
                (ts, *key),
            )
            cancelled = cur.rowcount
            await cur.close()
            await _forget_messages(
                conn,
                "queue_id IN (SELECT id FROM queue WHERE platform = ? AND server_id = ? AND message_id = ?"
                " AND state = 'cancelled')",
                key,
            )
            cur = await conn.execute(
                "UPDATE queue SET deleted_at = ? WHERE platform = ? AND server_id = ? AND message_id = ?"
                " AND deleted_at IS NULL",
                (ts, *key),
            )
            marked = cur.rowcount
            await cur.close()
            if marked == 0:
                # Deleted before it was ever delivered (events arrive out of order): a tombstone
                # refuses the creation event when it comes.
                await conn.execute(
                    "INSERT INTO queue (platform, server_id, message_id, revision, text_digest, revised_at,"
                    " state, deleted_at, enqueued_at, updated_at) VALUES (?, ?, ?, 1, NULL, ?, 'cancelled', ?,"
                    " ?, ?) ON CONFLICT DO NOTHING",
                    (*key, ts, ts, ts, ts),
                )
            kept = [s.value for s in KEPT_AS_EVIDENCE]
            cur = await conn.execute(
                "UPDATE cases SET text = NULL, text_purged_at = ? WHERE platform = ? AND server_id = ?"
                f" AND message_id = ? AND text IS NOT NULL AND status NOT IN ({','.join('?' * len(kept))})",
                (ts, *key, *kept),
            )
            purged = cur.rowcount
            await cur.close()
            noted = await _note_cases(conn, key, CaseNoteKind.DELETED, None, KEPT_AS_EVIDENCE, flag_update, ts)
        return Deletion(cancelled=cancelled, purged=purged, noted_cases=noted)

    async def server_removed(self, platform: str, server_id: str, at: datetime) -> int:
        ts = _at(at)
        async with self.raw_transaction() as conn:
            await _forget_messages(
                conn,
                "queue_id IN (SELECT id FROM queue WHERE platform = ? AND server_id = ?"
                " AND state IN ('pending', 'acting'))",
                (platform, server_id),
            )
            cur = await conn.execute(
                "UPDATE queue SET state = 'cancelled', updated_at = ?"
                " WHERE platform = ? AND server_id = ? AND state IN ('pending', 'acting')",
                (ts, platform, server_id),
            )
            dropped = cur.rowcount
            await cur.close()
            # Effects still waiting can no longer be carried out there.
            await conn.execute(
                "UPDATE effects SET outcome = 'failed', detail = 'not carried out: the bot left the server',"
                " updated_at = ? WHERE outcome = 'pending' AND case_id IN (SELECT id FROM cases"
                " WHERE platform = ? AND server_id = ?)",
                (ts, platform, server_id),
            )
            cur = await conn.execute(
                "UPDATE work SET state = 'cancelled', payload = '{}', detail = 'the bot left the server',"
                " updated_at = ? WHERE platform = ? AND server_id = ? AND state = 'pending'",
                (ts, platform, server_id),
            )
            dropped += cur.rowcount
            await cur.close()
        return dropped

    async def queue_backlog(self) -> QueueBacklog:
        # Both aggregates come from the index of waiting rows alone (ids are in enqueue order),
        # so the cost follows the backlog, not the millions of done rows; then one row by key.
        row = await self.fetchone("SELECT COUNT(*), MIN(id) FROM queue WHERE state IN ('pending', 'acting')")
        depth, oldest_id = (int(row[0]), row[1]) if row else (0, None)
        if oldest_id is None:
            return QueueBacklog(depth=0, oldest_enqueued_at=None)
        oldest = await self.fetchone("SELECT enqueued_at FROM queue WHERE id = ?", (oldest_id,))
        return QueueBacklog(depth=depth, oldest_enqueued_at=datetime.fromisoformat(oldest[0]) if oldest else None)

    async def record_decision(self, queue_id: int, case: Case, effects: Sequence[tuple[Effect, EffectOutcome]]) -> bool:
        """Write the case, its verdicts and effect intents, and advance the queue item.

        With no effect left to execute the queue item is done in this same transaction.
        """
        return await self._decisions.add((queue_id, case, tuple(effects)))

    async def _write_decisions(
        self, conn: aiosqlite.Connection, items: Sequence[tuple[int, Case, tuple[tuple[Effect, EffectOutcome], ...]]]
    ) -> list[bool]:
        ts = self._ts()
        ids = [queue_id for queue_id, _, _ in items]
        async with conn.execute(
            "SELECT id FROM queue WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending'",
            (json.dumps(ids),),
        ) as cur:
            open_ids = {int(r[0]) for r in await cur.fetchall()}
        # Cancelled while it was judged (deleted by its author, the bot left the server):
        # the judgement is dropped with it.
        live = [item for item in items if item[0] in open_ids]
        await conn.executemany(
            "INSERT INTO cases (id, platform, server_id, channel_id, message_id, author_id, text, message,"
            " status, violation, skipped_reason, mode, created_at, judging_notes, joined_case_id, revision)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    case.id,
                    case.message.platform,
                    case.message.server_id,
                    case.message.channel_id,
                    case.message.message_id,
                    case.message.author.id,
                    case.message.text,
                    # Fields at their defaults are left out: a case row is the bulk of what stays.
                    case.message.model_copy(update={"text": ""}).model_dump_json(exclude_defaults=True),
                    case.status.value,
                    int(case.violation),
                    case.skipped_reason,
                    case.mode.value,
                    case.created_at.isoformat(),
                    case.judging_notes,
                    case.joined_case_id,
                    case.revision,
                )
                for _, case, _ in live
            ],
        )
        await _insert_verdicts(
            conn,
            [(case.id, v) for _, case, _ in live for v in case.verdicts],
            None,
            ts,
            reasoning_aside={case.id for _, case, _ in live if case.status is CaseStatus.CLEAN},
        )
        effect_rows = [
            (case.id, seq, effect.kind.value, effect.model_dump_json(), outcome.value, ts)
            for _, case, effects in live
            for seq, (effect, outcome) in enumerate(effects, start=1)
        ]
        if effect_rows:
            await conn.executemany(
                "INSERT INTO effects (case_id, seq, kind, effect, outcome, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                effect_rows,
            )
        acting = {
            queue_id: any(outcome is EffectOutcome.PENDING for _, outcome in effects) for queue_id, _, effects in live
        }
        await conn.executemany(
            "UPDATE queue SET state = ?, case_id = ?, updated_at = ? WHERE id = ?",
            [(("acting" if acting[queue_id] else "done"), case.id, ts, queue_id) for queue_id, case, _ in live],
        )
        # An item acting keeps its message until its effects are done (a restart resumes them).
        done = [queue_id for queue_id in acting if not acting[queue_id]]
        await _forget_messages(conn, "queue_id IN (SELECT value FROM json_each(?))", (json.dumps(done),))
        return [queue_id in open_ids for queue_id in ids]

    async def _write_outcomes(
        self, conn: aiosqlite.Connection, items: Sequence[tuple[str, int, EffectOutcome, str, int | None, str | None]]
    ) -> list[None]:
        await _write_outcomes(conn, items, self._ts())
        return [None] * len(items)

    async def _write_claims(self, conn: aiosqlite.Connection, items: Sequence[tuple[str, int]]) -> list[bool]:
        return [await _claim(conn, case_id, seq, self._ts()) for case_id, seq in items]

    async def cases_with_unfinished_effects(self) -> list[str]:
        rows = await self.fetchall(
            "SELECT DISTINCT e.case_id FROM effects e JOIN queue q ON q.case_id = e.case_id"
            " WHERE q.state = 'done' AND e.outcome IN ('pending', 'started') ORDER BY e.case_id"
        )
        return [r[0] for r in rows]

    async def finish_queue_item(self, queue_id: int) -> None:
        async with self.raw_transaction() as conn:
            await conn.execute(
                "UPDATE queue SET state = 'done', updated_at = ? WHERE id = ? AND state != 'cancelled'",
                (self._ts(), queue_id),
            )
            await _forget_messages(conn, "queue_id = ?", (queue_id,))

    # ------------------------------------------------------------ storage upkeep

    async def forget_clean_reasoning(self, decided_before: datetime, limit: int) -> int:
        async with self.raw_transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM clean_reasoning WHERE verdict_id IN (SELECT r.verdict_id FROM clean_reasoning r"
                " JOIN verdicts v ON v.id = r.verdict_id JOIN cases c ON c.id = v.case_id"
                " WHERE r.created_at < ? AND c.created_at < ? ORDER BY r.created_at LIMIT ?)",
                (_at(decided_before), _at(decided_before), int(limit)),
            )
            cleared = cur.rowcount
            await cur.close()
        return int(cleared)

    async def reclaim_space(self, max_pages: int) -> int:
        if str(self.path) == ":memory:":
            return 0
        before = await self.fetchone("PRAGMA freelist_count")
        # Not in a transaction: the pragma makes its own. With auto_vacuum NONE it does nothing.
        async with self._tx_lock:
            # As a script: sqlite3's execute() steps a statement without result columns once,
            # and this pragma frees one page per step. The script runs it to the end (and no
            # unfinished statement keeps a write transaction open behind it).
            await self._conn.executescript(f"PRAGMA incremental_vacuum({int(max_pages)});")
        after = await self.fetchone("PRAGMA freelist_count")
        return int(before[0] if before else 0) - int(after[0] if after else 0)


async def _forget_messages(conn: aiosqlite.Connection, where: str, params: Sequence[Any]) -> None:
    """A queued revision's message goes once nothing waits on it (its row stays, without text)."""
    await conn.execute(f"DELETE FROM queue_messages WHERE {where}", params)


async def _note_cases(
    conn: aiosqlite.Connection,
    key: tuple[str, str, str],
    kind: CaseNoteKind,
    revision: int | None,
    statuses: Collection[CaseStatus],
    flag_update: Effect | None,
    ts: str,
) -> tuple[str, ...]:
    """Note an edit or deletion on the message's cases in `statuses`; a flag update for those with a flag post."""
    wanted = [s.value for s in statuses]
    async with conn.execute(
        "SELECT id, status FROM cases WHERE platform = ? AND server_id = ? AND message_id = ?"
        f" AND status IN ({','.join('?' * len(wanted))}) ORDER BY revision",
        (*key, *wanted),
    ) as cur:
        rows = [(str(r[0]), CaseStatus(r[1])) for r in await cur.fetchall()]
    if not rows:
        return ()
    await conn.executemany(
        "INSERT INTO case_notes (case_id, kind, revision, at) VALUES (?, ?, ?, ?)",
        [(case_id, kind.value, revision, ts) for case_id, _ in rows],
    )
    if flag_update is not None:
        for case_id, status in rows:
            if status not in AWAITING_A_PERSON:
                continue
            async with conn.execute(
                "SELECT COALESCE(MAX(seq), 0), MAX(kind = 'flag' AND reference IS NOT NULL) FROM effects"
                " WHERE case_id = ?",
                (case_id,),
            ) as cur:
                last = await cur.fetchone()
            if last is None or not last[1]:
                continue  # no flag post to update
            await conn.execute(
                "INSERT INTO effects (case_id, seq, kind, effect, outcome, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (case_id, int(last[0]) + 1, flag_update.kind.value, flag_update.model_dump_json(), "pending", ts),
            )
    return tuple(case_id for case_id, _ in rows)


def _queue_item(r: Sequence[Any]) -> QueueItem:
    return QueueItem(
        id=int(r[0]),
        message=Message.model_validate_json(r[1]),
        state=str(r[2]),
        case_id=r[3],
        revision=int(r[4]),
        enqueued_at=datetime.fromisoformat(r[5]),
        superseded=bool(r[6]),
    )


async def _redact_copies_of_text(conn: aiosqlite.Connection, case_ids: Sequence[str]) -> None:
    """Remove what repeats or paraphrases the cases' message text; keep rule ids, statuses and decisions.

    The copies: the model's rationale, reasoning and raw output (first pass and second
    opinions), the appeal's statement, and each effect's reason (a flag's reason is the
    rationale). Adding a column that holds message text means adding it here.
    """
    marks = ",".join("?" * len(case_ids))
    await conn.execute(
        "UPDATE verdicts SET rationale = '', reasoning = '', raw_output = NULL"
        f" WHERE case_id IN ({marks}) AND (rationale != '' OR reasoning != '' OR raw_output IS NOT NULL)",
        case_ids,
    )
    # A clean verdict's reasoning, kept aside for a day; and the digest of the text, which
    # recognises a replayed event but is derived from the words.
    await conn.execute(
        f"DELETE FROM clean_reasoning WHERE verdict_id IN (SELECT id FROM verdicts WHERE case_id IN ({marks}))",
        case_ids,
    )
    await conn.execute(
        f"UPDATE queue SET text_digest = NULL WHERE case_id IN ({marks}) AND text_digest IS NOT NULL", case_ids
    )
    await conn.execute(f"UPDATE appeals SET statement = '' WHERE case_id IN ({marks}) AND statement != ''", case_ids)
    await conn.execute(
        "UPDATE effects SET effect = json_set(effect, '$.reason', '')"
        f" WHERE case_id IN ({marks}) AND json_extract(effect, '$.reason') != ''",
        case_ids,
    )


async def _claim(conn: aiosqlite.Connection, case_id: str, seq: int, ts: str) -> bool:
    cur = await conn.execute(
        "UPDATE effects SET outcome = 'started', updated_at = ? WHERE case_id = ? AND seq = ? AND outcome = 'pending'",
        (ts, case_id, seq),
    )
    claimed = cur.rowcount == 1
    await cur.close()
    return claimed


async def _write_outcomes(
    conn: aiosqlite.Connection,
    items: Sequence[tuple[str, int, EffectOutcome, str, int | None, str | None]],
    ts: str,
) -> None:
    await conn.executemany(
        "UPDATE effects SET outcome = ?, detail = ?, reference = COALESCE(?, reference), updated_at = ?"
        " WHERE case_id = ? AND seq = ?",
        [(outcome.value, detail, ref, ts, case_id, seq) for case_id, seq, outcome, detail, _, ref in items],
    )
    finished = [(ts, queue_id) for _, _, _, _, queue_id, _ in items if queue_id is not None]
    if finished:
        await conn.executemany(
            "UPDATE queue SET state = 'done', updated_at = ? WHERE id = ? AND state != 'cancelled'", finished
        )
        await conn.executemany("DELETE FROM queue_messages WHERE queue_id = ?", [(q,) for _, q in finished])


async def _insert_verdicts(
    conn: aiosqlite.Connection,
    verdicts: Iterable[tuple[str, Verdict]],
    appeal_id: int | None,
    ts: str,
    reasoning_aside: Collection[str] = (),
) -> None:
    """Write verdicts; the reasoning of those of cases in `reasoning_aside` (clean cases) goes to
    clean_reasoning, which the upkeep empties after a day."""
    verdicts = list(verdicts)
    aside = [(case_id, v) for case_id, v in verdicts if case_id in reasoning_aside]
    rows = [
        (
            case_id,
            appeal_id,
            v.policy,
            v.policy_version,
            v.status.value,
            int(v.violation),
            v.policy_category,
            json.dumps(list(v.rule_ids)),
            v.confidence.value,
            v.rationale,
            "" if case_id in reasoning_aside else v.reasoning,
            None if case_id in reasoning_aside else v.raw_output,
            v.model,
            v.effort.value,
            v.latency_ms,
            v.prompt_tokens,
            v.completion_tokens,
            int(v.reused),
            ts,
        )
        for case_id, v in verdicts
    ]
    if not rows:
        return
    before = 0
    if aside:
        async with conn.execute("SELECT COALESCE(MAX(id), 0) FROM verdicts") as cur:
            row = await cur.fetchone()
        before = int(row[0]) if row else 0
    await conn.executemany(
        f"INSERT INTO verdicts (case_id, appeal_id, {_VERDICT_COLUMNS}, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    if aside:
        # Inside one write transaction the new rows take the ids after the old maximum, in order.
        await conn.executemany(
            "INSERT INTO clean_reasoning (verdict_id, reasoning, raw_output, created_at) VALUES (?, ?, ?, ?)",
            [
                (verdict_id, v.reasoning, v.raw_output, ts)
                for verdict_id, (case_id, v) in enumerate(verdicts, start=before + 1)
                if case_id in reasoning_aside and (v.reasoning or v.raw_output is not None)
            ],
        )


def _verdict(v: Sequence[Any]) -> Verdict:
    """A verdict from the columns policy .. reused of the verdicts table, in that order."""
    return Verdict(
        policy=v[0],
        policy_version=v[1],
        status=v[2],
        violation=bool(v[3]),
        policy_category=v[4],
        rule_ids=tuple(json.loads(v[5])),
        confidence=v[6],
        rationale=v[7],
        reasoning=v[8],
        raw_output=v[9],
        model=v[10],
        effort=v[11],
        latency_ms=v[12],
        prompt_tokens=v[13],
        completion_tokens=v[14],
        reused=bool(v[15]),
    )


# ---------------------------------------------------------------- cases


class SqliteCases:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def get(self, case_id: str) -> Case | None:
        rows = await self._load("WHERE c.id = ?", (case_id,))
        return rows[0] if rows else None

    async def get_many(self, case_ids: Sequence[str]) -> list[Case]:
        found: list[Case] = []
        ids = list(dict.fromkeys(case_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found += await self._load(f"WHERE c.id IN ({','.join('?' * len(chunk))})", chunk)
        return found

    async def for_message(self, platform: str, server_id: str, message_id: str) -> Case | None:
        """The case of the message's latest judged revision."""
        rows = await self._load(
            "WHERE c.platform = ? AND c.server_id = ? AND c.message_id = ?",
            (platform, server_id, message_id),
            order="c.revision DESC",
            limit=1,
        )
        return rows[0] if rows else None

    async def find(self, query: CaseQuery) -> list[Case]:
        where = ["c.platform = ?", "c.server_id = ?"]
        params: list[Any] = [query.platform, query.server_id]
        if query.statuses is not None:
            statuses = [s.value for s in query.statuses]
            if not statuses:
                return []
            where.append(f"c.status IN ({','.join('?' * len(statuses))})")
            params += statuses
        if query.text_retained is not None:
            where.append("c.text IS NOT NULL" if query.text_retained else "c.text IS NULL")
        if query.author_id is not None:
            where.append("c.author_id = ?")
            params.append(query.author_id)
        order = "c.created_at DESC, c.rowid DESC" if query.newest_first else "c.rowid"
        return await self._load("WHERE " + " AND ".join(where), params, order=order, limit=query.limit)

    async def every(self) -> AsyncIterator[Case]:
        offset = 0
        while True:
            rows = await self._load("", (), limit=500, offset=offset)
            for case in rows:
                yield case
            if len(rows) < 500:
                return
            offset += 500

    async def set_status(
        self, case_id: str, status: CaseStatus, decided_by: str | None = None, at: datetime | None = None
    ) -> None:
        async with self._db.writing() as conn:
            if decided_by is None:
                await conn.execute("UPDATE cases SET status = ? WHERE id = ?", (status.value, case_id))
            else:
                await conn.execute(
                    "UPDATE cases SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                    (status.value, decided_by, _at(at or self._db.store.now()), case_id),
                )

    async def count_strikes(self, platform: str, server_id: str, author_id: str, since: datetime) -> int:
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM cases c WHERE c.platform = ? AND c.server_id = ? AND c.author_id = ?"
            " AND c.created_at >= ? AND c.status IN (?, ?)"
            # A case flagged only by SUPPORT policies (self-harm) is never a strike.
            " AND NOT (EXISTS (SELECT 1 FROM verdicts v WHERE v.case_id = c.id AND v.appeal_id IS NULL"
            f" AND {_FLAGGING})"
            " AND NOT EXISTS (SELECT 1 FROM verdicts v LEFT JOIN policies p ON p.platform = c.platform"
            " AND p.server_id = c.server_id AND p.name = v.policy AND p.version = v.policy_version"
            f" WHERE v.case_id = c.id AND v.appeal_id IS NULL AND {_FLAGGING}"
            " AND COALESCE(p.author_notice, 'removal') != 'support'))",
            (platform, server_id, author_id, _at(since), *_STRIKE_STATUSES),
        )
        return int(row[0]) if row else 0

    async def author_history(
        self, platform: str, server_id: str, author_id: str, since: datetime, exclude_case_id: str | None = None
    ) -> AuthorHistory:
        row = await self._db.fetchone(
            "SELECT COUNT(*), COALESCE(SUM(status IN (?, ?)), 0) FROM cases WHERE platform = ? AND server_id = ?"
            " AND author_id = ? AND created_at >= ? AND status NOT IN ('clean', 'skipped') AND id != ?",
            (*_STRIKE_STATUSES, platform, server_id, author_id, _at(since), exclude_case_id or ""),
        )
        days = max(0, round((self._db.store.now() - since).total_seconds() / 86400))
        return AuthorHistory(days=days, cases=int(row[0]) if row else 0, confirmed=int(row[1]) if row else 0)

    async def flag_joins(self, case_id: str, max_authors: int = MAX_JOINED_AUTHORS) -> FlagJoins:
        row = await self._db.fetchone("SELECT COUNT(*) FROM cases WHERE joined_case_id = ?", (case_id,))
        if not row or not row[0]:  # most cases: one index probe, no second query
            return FlagJoins()
        authors = await self._db.fetchall(
            "SELECT author_id FROM cases WHERE joined_case_id = ? GROUP BY author_id ORDER BY MIN(rowid) LIMIT ?",
            (case_id, max_authors),
        )
        return FlagJoins(count=int(row[0]) if row else 0, author_ids=tuple(r[0] for r in authors))

    async def servers_with_text(self) -> list[tuple[str, str]]:
        rows = await self._db.fetchall(
            "SELECT platform, server_id FROM cases WHERE text IS NOT NULL"
            # An appeal filed after its case's text was purged still holds the author's words.
            " UNION SELECT c.platform, c.server_id FROM appeals a JOIN cases c ON c.id = a.case_id"
            " WHERE a.statement != '' ORDER BY 1, 2"
        )
        return [(r[0], r[1]) for r in rows]

    async def purge_text(self, platform: str, server_id: str, created_before: datetime, at: datetime) -> int:
        case_ids = [
            str(r[0])
            for r in await self._db.fetchall(
                "SELECT id FROM cases WHERE platform = ? AND server_id = ? AND text IS NOT NULL AND created_at < ?",
                (platform, server_id, _at(created_before)),
            )
        ]
        purged = 0
        # A transaction per chunk: a first purge of months of cases (after an upgrade) must not
        # hold the write lock for a minute while the bot's intake waits behind it.
        for start in range(0, len(case_ids), _PURGE_CHUNK):
            chunk = case_ids[start : start + _PURGE_CHUNK]
            marks = ",".join("?" * len(chunk))
            async with self._db.writing() as conn:
                cur = await conn.execute(
                    f"UPDATE cases SET text = NULL, text_purged_at = ? WHERE id IN ({marks}) AND text IS NOT NULL",
                    (_at(at), *chunk),
                )
                purged += cur.rowcount
                await cur.close()
                await _redact_copies_of_text(conn, chunk)
        async with self._db.writing() as conn:
            # The statement of an appeal filed after its case was purged: kept no longer than text is.
            cur = await conn.execute(
                "UPDATE appeals SET statement = '' WHERE statement != '' AND created_at < ? AND case_id IN"
                " (SELECT id FROM cases WHERE platform = ? AND server_id = ?)",
                (_at(created_before), platform, server_id),
            )
            statements = cur.rowcount
            await cur.close()
        if (purged or statements) and not self._db.in_transaction:
            await self._db.store.truncate_wal()
        return purged

    async def _load(
        self, clause: str, params: Sequence[Any], *, order: str = "c.rowid", limit: int | None = None, offset: int = 0
    ) -> list[Case]:
        sql = (
            "SELECT c.id, c.text, c.message, c.status, c.skipped_reason, c.mode, c.decided_by, c.decided_at,"
            f" c.created_at, c.text_purged_at, c.judging_notes, c.joined_case_id, c.revision FROM cases c {clause}"
            f" ORDER BY {order}"
        )
        if limit:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = await self._db.fetchall(sql, params)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        verdict_rows = await self._db.fetchall(
            f"SELECT v.case_id, {_VERDICT_WITH_REASONING} FROM verdicts v"
            f" LEFT JOIN clean_reasoning r ON r.verdict_id = v.id WHERE v.appeal_id IS NULL AND v.case_id IN ({marks})"
            " ORDER BY v.id",
            ids,
        )
        effect_rows = await self._db.fetchall(
            "SELECT case_id, seq, effect, outcome, detail, updated_at, reference FROM effects"
            f" WHERE case_id IN ({marks}) ORDER BY case_id, seq",
            ids,
        )
        note_rows = await self._db.fetchall(
            f"SELECT case_id, kind, revision, at FROM case_notes WHERE case_id IN ({marks}) ORDER BY id", ids
        )
        notes: dict[str, list[CaseNote]] = {}
        for n in note_rows:
            notes.setdefault(n[0], []).append(
                CaseNote(kind=CaseNoteKind(n[1]), revision=n[2], at=datetime.fromisoformat(n[3]))
            )
        verdicts: dict[str, list[Verdict]] = {}
        for v in verdict_rows:
            verdicts.setdefault(v[0], []).append(_verdict(v[1:]))
        effects: dict[str, list[EffectRecord]] = {}
        for e in effect_rows:
            effects.setdefault(e[0], []).append(
                EffectRecord(
                    id=e[1],
                    case_id=e[0],
                    effect=Effect.model_validate_json(e[2]),
                    outcome=EffectOutcome(e[3]),
                    detail=e[4],
                    updated_at=datetime.fromisoformat(e[5]),
                    reference=e[6],
                )
            )
        cases = []
        for r in rows:
            message = Message.model_validate_json(r[2]).model_copy(update={"text": r[1] or ""})
            cases.append(
                Case(
                    id=r[0],
                    message=message,
                    status=CaseStatus(r[3]),
                    skipped_reason=r[4],
                    mode=Mode(r[5]),
                    decided_by=r[6],
                    decided_at=_when(r[7]),
                    created_at=datetime.fromisoformat(r[8]),
                    text_purged_at=_when(r[9]),
                    judging_notes=r[10],
                    joined_case_id=r[11],
                    revision=int(r[12]),
                    notes=tuple(notes.get(r[0], ())),
                    verdicts=tuple(verdicts.get(r[0], ())),
                    effects=tuple(effects.get(r[0], ())),
                )
            )
        return cases


# ---------------------------------------------------------------- effects


class SqliteEffects:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add_intents(self, case_id: str, effects: Sequence[Effect]) -> list[EffectRecord]:
        at = self._db.store.now()
        async with self._db.writing() as conn:
            async with conn.execute("SELECT COALESCE(MAX(seq), 0) FROM effects WHERE case_id = ?", (case_id,)) as cur:
                row = await cur.fetchone()
            last = int(row[0]) if row else 0
            records = [
                EffectRecord(
                    id=last + i,
                    case_id=case_id,
                    effect=effect,
                    outcome=EffectOutcome.SHADOW if effect.shadow else EffectOutcome.PENDING,
                    updated_at=at,
                )
                for i, effect in enumerate(effects, start=1)
            ]
            if records:
                await conn.executemany(
                    "INSERT INTO effects (case_id, seq, kind, effect, outcome, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (case_id, r.id, r.effect.kind.value, r.effect.model_dump_json(), r.outcome.value, _at(at))
                        for r in records
                    ],
                )
        return records

    async def claim(self, case_id: str, seq: int) -> bool:
        if self._db.in_transaction:
            async with self._db.writing() as conn:
                return await _claim(conn, case_id, seq, self._db.store._ts())
        # Claims of many workers share commits, as their outcomes do.
        return await self._db.store._claims.add((case_id, seq))

    async def set_outcome(
        self,
        case_id: str,
        seq: int,
        outcome: EffectOutcome,
        detail: str = "",
        finish_queue_id: int | None = None,
        reference: str | None = None,
    ) -> None:
        item = (case_id, seq, outcome, detail, finish_queue_id, reference)
        if self._db.in_transaction:
            async with self._db.writing() as conn:
                await _write_outcomes(conn, [item], self._db.store._ts())
            return
        # Outcomes of many workers share commits.
        await self._db.store._outcomes.add(item)


# ---------------------------------------------------------------- appeals


class SqliteAppeals:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add(self, case_id: str, author_id: str, statement: str, at: datetime) -> Appeal:
        try:
            async with self._db.writing() as conn:
                cur = await conn.execute(
                    "INSERT INTO appeals (case_id, author_id, statement, status, created_at)"
                    " VALUES (?, ?, ?, 'pending', ?)",
                    (case_id, author_id, statement, _at(at)),
                )
                appeal_id = cur.lastrowid
                await cur.close()
        except sqlite3.IntegrityError as exc:
            raise DuplicateAppeal(f"case {case_id} already has an appeal") from exc
        assert appeal_id is not None
        return Appeal(id=appeal_id, case_id=case_id, author_id=author_id, statement=statement, created_at=at)

    async def for_case(self, case_id: str) -> Appeal | None:
        found = await self._load("WHERE a.case_id = ?", (case_id,))
        return found[0] if found else None

    async def pending(self, platform: str, server_id: str) -> list[Appeal]:
        return await self._load(
            "JOIN cases c ON c.id = a.case_id WHERE c.platform = ? AND c.server_id = ? AND a.status = 'pending'",
            (platform, server_id),
            order="a.created_at, a.id",
        )

    async def decide(self, appeal_id: int, status: AppealStatus, decided_by: str, note: str, at: datetime) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                "UPDATE appeals SET status = ?, decided_by = ?, note = ?, decided_at = ? WHERE id = ?",
                (status.value, decided_by, note, _at(at), appeal_id),
            )

    async def add_second_opinion(self, appeal_id: int, case_id: str, verdicts: Sequence[Verdict]) -> None:
        async with self._db.writing() as conn:
            await _insert_verdicts(conn, [(case_id, v) for v in verdicts], appeal_id, self._db.store._ts())

    async def _load(self, clause: str, params: Sequence[Any], order: str = "a.id") -> list[Appeal]:
        rows = await self._db.fetchall(f"SELECT {_APPEAL_COLUMNS} FROM appeals a {clause} ORDER BY {order}", params)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        opinions: dict[int, list[Verdict]] = {}
        for v in await self._db.fetchall(
            f"SELECT appeal_id, {_VERDICT_COLUMNS} FROM verdicts WHERE appeal_id IN ({','.join('?' * len(ids))})"
            " ORDER BY id",
            ids,
        ):
            opinions.setdefault(int(v[0]), []).append(_verdict(v[1:]))
        return [_appeal(r, opinions.get(int(r[0]), [])) for r in rows]


def _appeal(r: Sequence[Any], opinion: Sequence[Verdict]) -> Appeal:
    return Appeal(
        id=r[0],
        case_id=r[1],
        author_id=r[2],
        statement=r[3],
        status=AppealStatus(r[4]),
        decided_by=r[5],
        note=r[6],
        created_at=datetime.fromisoformat(r[7]),
        decided_at=_when(r[8]),
        second_opinion=tuple(opinion),
    )


# ---------------------------------------------------------------- human decisions


def _stage_actions(stage: Stage) -> tuple[str, str]:
    return ("confirm", "dismiss") if stage == "review" else ("uphold", "overturn")


def _decision(row: Sequence[Any]) -> HumanDecision:
    return HumanDecision(
        id=row[0],
        case_id=row[1],
        platform=row[2],
        server_id=row[3],
        action=DecisionAction(str(row[4])),
        violation=bool(row[5]),
        moderator_id=row[6],
        note=row[7],
        at=datetime.fromisoformat(str(row[8])),
        self_review=bool(row[9]),
    )


class SqliteDecisions:
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
        try:
            async with self._db.writing() as conn:
                # The unique indexes refuse a second decision of the same stage, even one
                # written by another process after this one's checks.
                cur = await conn.execute(
                    "INSERT INTO human_decisions (case_id, platform, server_id, action, violation, moderator_id,"
                    " note, at, self_review) SELECT id, platform, server_id, ?, ?, ?, ?, ?, ? FROM cases WHERE id = ?",
                    (action.value, int(action.violation), moderator_id, note, _at(at), int(self_review), case_id),
                )
                decision_id = cur.lastrowid
                await cur.close()
                async with conn.execute(
                    f"SELECT {_DECISION_COLUMNS} FROM human_decisions WHERE id = ?", (decision_id,)
                ) as read:
                    row = await read.fetchone()
        except sqlite3.IntegrityError as exc:
            raise DuplicateDecision(f"case {case_id} already has a decision for this stage") from exc
        if row is None:
            raise KeyError(f"no case {case_id!r} to record a decision on")
        return _decision(row)

    async def first(self, case_id: str, stage: Stage) -> HumanDecision | None:
        row = await self._db.fetchone(
            f"SELECT {_DECISION_COLUMNS} FROM human_decisions WHERE case_id = ? AND action IN (?, ?)"
            " ORDER BY id LIMIT 1",
            (case_id, *_stage_actions(stage)),
        )
        return _decision(row) if row else None

    async def for_case(self, case_id: str) -> list[HumanDecision]:
        rows = await self._db.fetchall(
            f"SELECT {_DECISION_COLUMNS} FROM human_decisions WHERE case_id = ? ORDER BY id", (case_id,)
        )
        return [_decision(r) for r in rows]

    async def for_server(self, platform: str, server_id: str) -> list[HumanDecision]:
        rows = await self._db.fetchall(
            f"SELECT {_DECISION_COLUMNS} FROM human_decisions WHERE platform = ? AND server_id = ? ORDER BY id",
            (platform, server_id),
        )
        return [_decision(r) for r in rows]

    async def every(self) -> list[HumanDecision]:
        rows = await self._db.fetchall(f"SELECT {_DECISION_COLUMNS} FROM human_decisions ORDER BY id")
        return [_decision(r) for r in rows]


# ---------------------------------------------------------------- policies


def _policy(r: Sequence[Any], enabled: bool = True) -> Policy:
    return Policy(
        platform=r[0],
        server_id=r[1],
        name=r[2],
        version=r[3],
        text=r[4],
        description=r[5],
        author=r[6],
        created_at=datetime.fromisoformat(r[7]),
        sensitive=bool(r[8]),
        author_notice=AuthorNotice(r[9]),
        notice_text=r[10],
        enabled=enabled,
    )


def _draft(r: Sequence[Any]) -> Draft:
    return Draft(
        id=r[0],
        platform=r[1],
        server_id=r[2],
        content=PolicyContent(
            name=r[3],
            text=r[4],
            description=r[5],
            sensitive=bool(r[13]),
            author_notice=AuthorNotice(r[14]),
            notice_text=r[15],
        ),
        base_version=r[6],
        author=r[7],
        summary=json.loads(r[8]),
        created_at=datetime.fromisoformat(r[9]),
        applied_by=r[10],
        applied_at=_when(r[11]),
        applied_version=r[12],
    )


class SqlitePolicies:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add_version(self, platform: str, server_id: str, content: PolicyContent, author: str) -> Policy:
        created = self._db.store.now()
        async with self._db.writing() as conn:
            async with conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM policies WHERE platform = ? AND server_id = ? AND name = ?",
                (platform, server_id, content.name),
            ) as cur:
                row = await cur.fetchone()
            version = (int(row[0]) if row else 0) + 1
            await conn.execute(
                f"INSERT INTO policies ({_POLICY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    platform,
                    server_id,
                    content.name,
                    version,
                    content.text,
                    content.description,
                    author,
                    _at(created),
                    int(content.sensitive),
                    content.author_notice.value,
                    content.notice_text,
                ),
            )
            await conn.execute(
                "INSERT INTO policy_state (platform, server_id, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (platform, server_id, content.name),
            )
        return Policy(
            platform=platform,
            server_id=server_id,
            version=version,
            author=author,
            created_at=created,
            **content.model_dump(),
        )

    async def versions(self, platform: str, server_id: str, name: str) -> list[Policy]:
        rows = await self._db.fetchall(
            f"SELECT {_POLICY_COLUMNS} FROM policies WHERE platform = ? AND server_id = ? AND name = ?"
            " ORDER BY version",
            (platform, server_id, name),
        )
        return [_policy(r) for r in rows]

    async def live(self, platform: str, server_id: str) -> list[LivePolicy]:
        columns = ", ".join(f"p.{c.strip()}" for c in _POLICY_COLUMNS.split(","))
        rows = await self._db.fetchall(
            f"SELECT {columns}, s.enabled, s.mode FROM policies p JOIN policy_state s USING (platform, server_id, name)"
            " WHERE p.platform = ? AND p.server_id = ? AND p.version = (SELECT MAX(version) FROM policies q"
            " WHERE q.platform = p.platform AND q.server_id = p.server_id AND q.name = p.name) ORDER BY p.name",
            (platform, server_id),
        )
        return [LivePolicy(_policy(r, bool(r[11])), bool(r[11]), Mode(r[12]) if r[12] else None) for r in rows]

    async def set_switches(self, platform: str, server_id: str, name: str, enabled: bool, mode: Mode | None) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                "UPDATE policy_state SET enabled = ?, mode = ? WHERE platform = ? AND server_id = ? AND name = ?",
                (int(enabled), mode.value if mode else None, platform, server_id, name),
            )

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
        async with self._db.writing() as conn:
            cur = await conn.execute(
                "INSERT INTO policy_drafts (platform, server_id, name, text, description, base_version, author,"
                " summary, created_at, sensitive, author_notice, notice_text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    platform,
                    server_id,
                    content.name,
                    content.text,
                    content.description,
                    base_version,
                    author,
                    json.dumps(dict(summary)),
                    _at(at),
                    int(content.sensitive),
                    content.author_notice.value,
                    content.notice_text,
                ),
            )
            draft_id = cur.lastrowid
            await cur.close()
        assert draft_id is not None
        return Draft(
            id=draft_id,
            platform=platform,
            server_id=server_id,
            content=content,
            base_version=base_version,
            author=author,
            summary=dict(summary),
            created_at=at,
        )

    async def get_draft(self, platform: str, server_id: str, draft_id: int) -> Draft | None:
        row = await self._db.fetchone(
            f"SELECT {_DRAFT_COLUMNS} FROM policy_drafts WHERE id = ? AND platform = ? AND server_id = ?",
            (draft_id, platform, server_id),
        )
        return _draft(row) if row else None

    async def mark_draft_applied(self, draft_id: int, applied_by: str, version: int, at: datetime) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                "UPDATE policy_drafts SET applied_by = ?, applied_at = ?, applied_version = ? WHERE id = ?",
                (applied_by, _at(at), version, draft_id),
            )


# ---------------------------------------------------------------- settings and audit


class SqliteSettings:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def get(self, platform: str, server_id: str) -> ServerSettings | None:
        row = await self._db.fetchone(
            "SELECT settings FROM server_settings WHERE platform = ? AND server_id = ?", (platform, server_id)
        )
        return self._settings(platform, server_id, row[0]) if row else None

    async def put(self, settings: ServerSettings, at: datetime) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                "INSERT INTO server_settings (platform, server_id, settings, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (platform, server_id) DO UPDATE SET settings = excluded.settings,"
                " updated_at = excluded.updated_at",
                (settings.platform, settings.server_id, settings.model_dump_json(), _at(at)),
            )

    async def every(self) -> list[ServerSettings]:
        rows = await self._db.fetchall(
            "SELECT platform, server_id, settings FROM server_settings ORDER BY platform, server_id"
        )
        return [self._settings(r[0], r[1], r[2]) for r in rows]

    def _settings(self, platform: str, server_id: str, raw: str) -> ServerSettings:
        # A row today's ranges refuse (written before they existed) is read repaired, so that it
        # breaks neither this server's messages nor any job of the others; said once in the log.
        settings, repairs = settings_from_row(platform, server_id, raw)
        if repairs and (platform, server_id, raw) not in self._db.store.settings_repairs_logged:
            self._db.store.settings_repairs_logged.add((platform, server_id, raw))
            log.warning(
                "stored settings of %s server %r are out of today's ranges and were read repaired (%s);"
                " set them again with `modbot settings set` to store valid values",
                platform,
                server_id,
                "; ".join(repairs),
            )
        return settings


class SqliteAudit:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add(self, entry: AuditEntry) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                "INSERT INTO audit_log (platform, server_id, actor, action, subject, before, after, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.platform,
                    entry.server_id,
                    entry.actor,
                    entry.action,
                    entry.subject,
                    entry.before,
                    entry.after,
                    _at(entry.at),
                ),
            )

    async def for_server(self, platform: str, server_id: str) -> list[AuditEntry]:
        rows = await self._db.fetchall(
            "SELECT actor, action, subject, before, after, at FROM audit_log WHERE platform = ? AND server_id = ?"
            " ORDER BY id",
            (platform, server_id),
        )
        return [
            AuditEntry(
                platform=platform,
                server_id=server_id,
                actor=r[0],
                action=r[1],
                subject=r[2],
                before=r[3],
                after=r[4],
                at=datetime.fromisoformat(r[5]),
            )
            for r in rows
        ]


# ---------------------------------------------------------------- jobs memory and statistics


class SqliteJobMemory:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def appeals_to_remind(
        self, platform: str, server_id: str, filed_before: datetime, reminded_before: datetime
    ) -> list[Appeal]:
        rows = await self._db.fetchall(
            f"SELECT {_APPEAL_COLUMNS} FROM appeals a JOIN cases c ON c.id = a.case_id"
            " LEFT JOIN appeal_reminders r ON r.appeal_id = a.id"
            " WHERE c.platform = ? AND c.server_id = ? AND a.status = 'pending' AND a.created_at <= ?"
            " AND (r.last_sent_at IS NULL OR r.last_sent_at <= ?) ORDER BY a.created_at, a.id",
            (platform, server_id, _at(filed_before), _at(reminded_before)),
        )
        return [_appeal(r, ()) for r in rows]

    async def mark_reminded(self, appeal_ids: Sequence[int], at: datetime) -> None:
        async with self._db.writing() as conn:
            await conn.executemany(
                "INSERT INTO appeal_reminders (appeal_id, reminders, last_sent_at) VALUES (?, 1, ?)"
                " ON CONFLICT (appeal_id) DO UPDATE SET reminders = reminders + 1,"
                " last_sent_at = excluded.last_sent_at",
                [(appeal_id, _at(at)) for appeal_id in appeal_ids],
            )

    async def claim_digest(self, platform: str, server_id: str, day: str, at: datetime) -> bool:
        async with self._db.writing() as conn:
            cur = await conn.execute(
                "INSERT INTO digests_sent (platform, server_id, day, outcome, sent_at) VALUES (?, ?, ?, 'claimed', ?)"
                " ON CONFLICT DO NOTHING",
                (platform, server_id, day, _at(at)),
            )
            claimed = cur.rowcount == 1
            await cur.close()
        return claimed

    async def set_digest_outcome(self, platform: str, server_id: str, day: str, outcome: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                "UPDATE digests_sent SET outcome = ? WHERE platform = ? AND server_id = ? AND day = ?",
                (outcome, platform, server_id, day),
            )

    async def health(self) -> HealthState:
        row = await self._db.fetchone(
            "SELECT failing_since, healthy_since, last_problem FROM model_health WHERE id = 1"
        )
        if row is None:
            return HealthState()
        return HealthState(failing_since=_when(row[0]), healthy_since=_when(row[1]), last_problem=row[2])

    async def save_health(self, state: HealthState, at: datetime) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                "INSERT INTO model_health (id, failing_since, healthy_since, last_problem, probed_at)"
                " VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET failing_since = excluded.failing_since,"
                " healthy_since = excluded.healthy_since, last_problem = excluded.last_problem,"
                " probed_at = excluded.probed_at",
                (
                    _at(state.failing_since) if state.failing_since else None,
                    _at(state.healthy_since) if state.healthy_since else None,
                    state.last_problem,
                    _at(at),
                ),
            )

    async def alerted_servers(self) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in await self._db.fetchall("SELECT platform, server_id FROM health_alerts")}

    async def mark_alerted(self, platform: str, server_id: str, at: datetime) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                "INSERT INTO health_alerts (platform, server_id, alerted_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (platform, server_id, _at(at)),
            )

    async def clear_alert(self, platform: str, server_id: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute("DELETE FROM health_alerts WHERE platform = ? AND server_id = ?", (platform, server_id))


class SqliteStatistics:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def digest_counts(self, platform: str, server_id: str, start: datetime, end: datetime) -> DigestCounts:
        span = (platform, server_id, _at(start), _at(end))
        in_span = "c.platform = ? AND c.server_id = ? AND c.created_at >= ? AND c.created_at < ?"
        row = await self._db.fetchone(
            f"SELECT COUNT(*), COALESCE(SUM(c.violation), 0) FROM cases c WHERE {in_span}", span
        )
        violations = tuple(
            (str(r[0]), tuple(str(x) for x in json.loads(r[1])))
            for r in await self._db.fetchall(
                f"SELECT v.policy, v.rule_ids FROM verdicts v JOIN cases c ON c.id = v.case_id"
                f" WHERE {in_span} AND v.appeal_id IS NULL AND v.violation = 1 ORDER BY v.id",
                span,
            )
        )
        decisions = {
            str(r[0]): int(r[1])
            for r in await self._db.fetchall(
                "SELECT action, COUNT(*) FROM human_decisions WHERE platform = ? AND server_id = ? AND at >= ?"
                " AND at < ? GROUP BY action",
                span,
            )
        }
        filed = await self._db.fetchone(
            "SELECT COUNT(*) FROM appeals a JOIN cases c ON c.id = a.case_id"
            " WHERE c.platform = ? AND c.server_id = ? AND a.created_at >= ? AND a.created_at < ?",
            span,
        )
        latencies = tuple(
            float(r[0])
            for r in await self._db.fetchall(
                "SELECT v.latency_ms FROM verdicts v JOIN cases c ON c.id = v.case_id"
                " WHERE c.platform = ? AND c.server_id = ? AND v.created_at >= ? AND v.created_at < ?"
                " AND v.reused = 0 AND v.latency_ms > 0 ORDER BY v.id",
                span,
            )
        )
        return DigestCounts(
            messages=int(row[0]) if row else 0,
            flagged=int(row[1]) if row else 0,
            violations=violations,
            decisions=decisions,
            appeals_filed=int(filed[0]) if filed else 0,
            latencies_ms=latencies,
        )


# ---------------------------------------------------------------- interactive work


class SqliteWork:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def add(
        self, kind: WorkKind, platform: str, server_id: str, subject: str, payload: Mapping[str, Any], at: datetime
    ) -> int | None:
        async with self._db.writing() as conn:
            cur = await conn.execute(
                "INSERT INTO work (kind, platform, server_id, subject, payload, state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                (kind.value, platform, server_id, subject, json.dumps(dict(payload)), _at(at), _at(at)),
            )
            added = cur.lastrowid if cur.rowcount == 1 else None
            await cur.close()
        return added

    async def waiting(self, exclude: Collection[int], limit: int) -> list[WorkItem]:
        rows = await self._db.fetchall(
            "SELECT id, kind, platform, server_id, subject, payload, attempts, created_at FROM work"
            " WHERE state = 'pending' AND id NOT IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?",
            (json.dumps(sorted(exclude)), int(limit)),
        )
        return [
            WorkItem(
                id=int(r[0]),
                kind=WorkKind(r[1]),
                platform=r[2],
                server_id=r[3],
                subject=r[4],
                payload=json.loads(r[5]),
                attempts=int(r[6]),
                created_at=datetime.fromisoformat(r[7]),
            )
            for r in rows
        ]

    async def pending(self, kind: WorkKind, subject: str) -> bool:
        row = await self._db.fetchone(
            "SELECT 1 FROM work WHERE kind = ? AND subject = ? AND state = 'pending'", (kind.value, subject)
        )
        return row is not None

    async def record_failure(self, work_id: int, detail: str, at: datetime) -> int:
        async with self._db.writing() as conn:
            await conn.execute(
                "UPDATE work SET attempts = attempts + 1, detail = ?, updated_at = ? WHERE id = ?",
                (detail[:500], _at(at), work_id),
            )
            async with conn.execute("SELECT attempts FROM work WHERE id = ?", (work_id,)) as cur:
                row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def finish(self, work_id: int, state: str, detail: str, at: datetime) -> None:
        async with self._db.writing() as conn:
            # The input is not needed any more (a preview's policy text): kept only while pending.
            await conn.execute(
                "UPDATE work SET state = ?, detail = ?, payload = '{}', updated_at = ?"
                " WHERE id = ? AND state = 'pending'",
                (state, detail[:500], _at(at), work_id),
            )

    async def counts(self) -> dict[str, int]:
        rows = await self._db.fetchall("SELECT state, COUNT(*) FROM work GROUP BY state")
        return {r[0]: int(r[1]) for r in rows}


# ---------------------------------------------------------------- data-subject requests

# Effects whose reference is the address of a DM to the author.
_DM_TO_AUTHOR = (EffectKind.NOTIFY_AUTHOR.value, EffectKind.NOTIFY_APPEAL_OUTCOME.value)
# A queued or decided Message as JSON, made anonymous: no text, name, roles or attachment names.
_ANONYMOUS_MESSAGE = (
    "json_set(message, '$.text', '', '$.author.id', ?, '$.author.name', '', '$.author.roles', json('[]'),"
    " '$.attachments', json('[]'))"
)


class SqlitePrivacy:
    def __init__(self, db: _Db) -> None:
        self._db = db

    async def member_servers(self, platform: str, user_id: str) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT server_id FROM cases WHERE platform = ? AND author_id = ?"
            # A waiting revision's message is in queue_messages (gone once decided).
            " UNION SELECT q.server_id FROM queue q JOIN queue_messages m ON m.queue_id = q.id WHERE q.platform = ?"
            " AND json_extract(m.message, '$.author.id') = ?"
            " UNION SELECT server_id FROM human_decisions WHERE platform = ? AND moderator_id = ?"
            " UNION SELECT server_id FROM audit_log WHERE platform = ? AND actor = ? ORDER BY 1",
            (platform, user_id) * 4,
        )
        return [str(r[0]) for r in rows]

    async def member_records(self, platform: str, server_id: str, user_id: str) -> MemberRecords:
        cases = await SqliteCases(self._db)._load(
            "WHERE c.platform = ? AND c.server_id = ? AND c.author_id = ?",
            (platform, server_id, user_id),
            order="c.created_at, c.rowid",
        )
        appeals = await SqliteAppeals(self._db)._load(
            "JOIN cases c ON c.id = a.case_id WHERE c.platform = ? AND c.server_id = ? AND a.author_id = ?",
            (platform, server_id, user_id),
        )
        decisions: list[HumanDecision] = []
        ids = [c.id for c in cases]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self._db.fetchall(
                f"SELECT {_DECISION_COLUMNS} FROM human_decisions WHERE case_id IN ({','.join('?' * len(chunk))})"
                " ORDER BY id",
                chunk,
            )
            decisions += [_decision(r) for r in rows]
        queued = await self._db.fetchall(
            "SELECT m.message FROM queue q JOIN queue_messages m ON m.queue_id = q.id WHERE q.platform = ?"
            " AND q.server_id = ? AND q.case_id IS NULL AND json_extract(m.message, '$.author.id') = ? ORDER BY q.id",
            (platform, server_id, user_id),
        )
        return MemberRecords(
            cases=tuple(cases),
            appeals=tuple(appeals),
            decisions=tuple(sorted(decisions, key=lambda d: d.id)),
            queued=tuple(Message.model_validate_json(r[0]) for r in queued),
        )

    async def erase_member(self, platform: str, server_id: str, user_id: str, at: datetime) -> ErasureCounts:
        async with self._db.writing() as conn:
            async with conn.execute(
                "SELECT id FROM cases WHERE platform = ? AND server_id = ? AND author_id = ?",
                (platform, server_id, user_id),
            ) as cur:
                case_ids = [str(r[0]) for r in await cur.fetchall()]
            appeals = decisions = 0
            for start in range(0, len(case_ids), 500):
                chunk = case_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                await _redact_copies_of_text(conn, chunk)
                await conn.execute(
                    f"UPDATE cases SET author_id = ?, text = NULL, text_purged_at = COALESCE(text_purged_at, ?),"
                    f" message = {_ANONYMOUS_MESSAGE} WHERE id IN ({marks})",
                    (ERASED_MEMBER, _at(at), ERASED_MEMBER, *chunk),
                )
                # A platform's detail may name the member ("sent to U123"); a DM's reference is its address.
                await conn.execute(
                    "UPDATE effects SET detail = replace(detail, ?, ?),"
                    f" reference = CASE WHEN kind IN (?, ?) THEN NULL ELSE reference END WHERE case_id IN ({marks})",
                    (user_id, ERASED_MEMBER, *_DM_TO_AUTHOR, *chunk),
                )
                cur = await conn.execute(
                    f"UPDATE appeals SET author_id = ?, note = '' WHERE case_id IN ({marks})", (ERASED_MEMBER, *chunk)
                )
                appeals += cur.rowcount
                await cur.close()
                cur = await conn.execute(f"UPDATE human_decisions SET note = '' WHERE case_id IN ({marks})", chunk)
                decisions += cur.rowcount
                await cur.close()
            # Messages accepted but not judged yet are judged later as an empty message of nobody;
            # those decided but with effects under way keep only what the effects need.
            # Only waiting revisions hold a message (queue_messages): no scan of every done row.
            async with conn.execute(
                f"UPDATE queue_messages SET message = {_ANONYMOUS_MESSAGE} WHERE queue_id IN (SELECT id FROM queue"
                " WHERE platform = ? AND server_id = ? AND state IN ('pending', 'acting'))"
                " AND json_extract(message, '$.author.id') = ? RETURNING queue_id",
                (ERASED_MEMBER, platform, server_id, user_id),
            ) as cur:
                anonymised = [int(r[0]) for r in await cur.fetchall()]
            async with conn.execute(
                "SELECT COUNT(*) FROM queue WHERE id IN (SELECT value FROM json_each(?)) AND case_id IS NULL",
                (json.dumps(anonymised),),
            ) as cur:
                row = await cur.fetchone()
            queued = int(row[0]) if row else 0
        return ErasureCounts(cases=len(case_ids), appeals=appeals, decisions=decisions, queued=queued)

    async def scrub_free_space(self) -> None:
        if not self._db.in_transaction:
            await self._db.store.truncate_wal()
