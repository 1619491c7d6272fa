"""The embedded store on aiosqlite: one WAL-mode file holds the bot's whole state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.domain import (
    Case,
    CaseStatus,
    Effect,
    EffectOutcome,
    EffectRecord,
    Message,
    Mode,
    Policy,
    ServerSettings,
    Verdict,
    utcnow,
)
from bot.store._group_commit import GroupCommit
from bot.store._migrations import migrate

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class QueueItem:
    id: int
    message: Message
    state: str
    case_id: str | None


@dataclass(frozen=True)
class LivePolicy:
    """The newest version of a policy, with the switches that say how it runs."""

    policy: Policy
    enabled: bool
    mode: Mode | None


class SqliteStore:
    """All reads and writes go through one connection; a lock keeps transactions whole."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, now: Clock) -> None:
        self._conn = conn
        self.path = path
        self.now = now
        self._tx_lock = asyncio.Lock()
        self._intake = GroupCommit(self.transaction, self._write_intake)
        self._decisions = GroupCommit(self.transaction, self._write_decisions)
        self._outcomes = GroupCommit(self.transaction, self._write_outcomes)

    @classmethod
    async def open(cls, path: Path | str, now: Clock = utcnow, busy_timeout_ms: int = 10_000) -> SqliteStore:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a process crash (the promise we make); power loss
            # can lose the last transactions. FULL would fsync every commit.
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path, now)

    async def close(self) -> None:
        await self._conn.close()

    @property
    def connection(self) -> aiosqlite.Connection:
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._tx_lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    def _ts(self) -> str:
        return self.now().isoformat()

    # ------------------------------------------------------------ queue

    async def enqueue(self, message: Message) -> int | None:
        """Store a message durably. Returns its queue id, or None if it was seen before."""
        return await self._intake.add(message)

    async def _write_intake(self, conn: aiosqlite.Connection, messages: Sequence[Message]) -> list[int | None]:
        # Inside BEGIN IMMEDIATE nobody else writes, so the rows above the old maximum id
        # are exactly the ones this batch added; a conflicting key adds none.
        async with conn.execute("SELECT COALESCE(MAX(id), 0) FROM queue") as cur:
            row = await cur.fetchone()
        before = int(row[0]) if row else 0
        ts = self._ts()
        await conn.executemany(
            "INSERT INTO queue (platform, server_id, message_id, message, state, enqueued_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
            [(*m.key, m.model_dump_json(), ts, ts) for m in messages],
        )
        async with conn.execute("SELECT id, platform, server_id, message_id FROM queue WHERE id > ?", (before,)) as cur:
            added = {(r[1], r[2], r[3]): int(r[0]) for r in await cur.fetchall()}
        # The same message twice in one batch: only its first submission is new.
        return [added.pop(m.key, None) for m in messages]

    async def queue_state(self, platform: str, server_id: str, message_id: str) -> str | None:
        row = await self.fetchone(
            "SELECT state FROM queue WHERE platform = ? AND server_id = ? AND message_id = ?",
            (platform, server_id, message_id),
        )
        return str(row[0]) if row else None

    async def open_queue_items(self) -> list[QueueItem]:
        rows = await self.fetchall("SELECT id, message, state, case_id FROM queue WHERE state != 'done' ORDER BY id")
        return [QueueItem(r[0], Message.model_validate_json(r[1]), r[2], r[3]) for r in rows]

    async def queue_counts(self) -> dict[str, int]:
        rows = await self.fetchall("SELECT state, COUNT(*) FROM queue GROUP BY state")
        return {r[0]: int(r[1]) for r in rows}

    # ------------------------------------------------------------ settings

    async def get_settings(self, server_id: str) -> ServerSettings | None:
        row = await self.fetchone("SELECT settings FROM server_settings WHERE server_id = ?", (server_id,))
        return ServerSettings.model_validate_json(row[0]) if row else None

    async def put_settings(self, settings: ServerSettings, actor: str) -> None:
        before = await self.get_settings(settings.server_id)
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO server_settings (server_id, platform, settings, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (server_id) DO UPDATE SET platform = excluded.platform,"
                " settings = excluded.settings, updated_at = excluded.updated_at",
                (settings.server_id, settings.platform, settings.model_dump_json(), self._ts()),
            )
            await self._audit(
                conn,
                settings.server_id,
                actor,
                "settings.set",
                "settings",
                before.model_dump_json() if before else None,
                settings.model_dump_json(),
            )

    async def _audit(
        self,
        conn: aiosqlite.Connection,
        server_id: str,
        actor: str,
        action: str,
        subject: str,
        before: str | None,
        after: str | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO audit_log (server_id, actor, action, subject, before, after, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (server_id, actor, action, subject, before, after, self._ts()),
        )

    async def audit(
        self,
        server_id: str,
        actor: str,
        action: str,
        subject: str,
        before: str | None = None,
        after: str | None = None,
    ) -> None:
        async with self.transaction() as conn:
            await self._audit(conn, server_id, actor, action, subject, before, after)

    async def audit_log(self, server_id: str) -> list[dict[str, Any]]:
        rows = await self.fetchall(
            "SELECT actor, action, subject, before, after, at FROM audit_log WHERE server_id = ? ORDER BY id",
            (server_id,),
        )
        keys = ("actor", "action", "subject", "before", "after", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # ------------------------------------------------------------ policies

    async def add_policy_version(
        self, server_id: str, name: str, text: str, description: str, author: str, action: str = "policy.set"
    ) -> Policy:
        """Store a new version (never an overwrite) and audit the change, in one transaction."""
        async with self.transaction() as conn:
            async with conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM policies WHERE server_id = ? AND name = ?", (server_id, name)
            ) as cur:
                row = await cur.fetchone()
            previous = int(row[0]) if row else 0
            policy = Policy(
                server_id=server_id,
                name=name,
                version=previous + 1,
                text=text,
                description=description,
                author=author,
                created_at=self.now(),
            )
            await conn.execute(
                "INSERT INTO policies (server_id, name, version, text, description, author, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (server_id, name, policy.version, text, description, author, policy.created_at.isoformat()),
            )
            await conn.execute(
                "INSERT INTO policy_state (server_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING", (server_id, name)
            )
            await self._audit(
                conn,
                server_id,
                author,
                action,
                f"policy:{name}",
                f"v{previous}" if previous else None,
                f"v{policy.version}",
            )
        return policy

    async def set_policy_switches(
        self, server_id: str, name: str, actor: str, *, enabled: bool | None = None, mode: Mode | str | None = "keep"
    ) -> None:
        row = await self.fetchone(
            "SELECT enabled, mode FROM policy_state WHERE server_id = ? AND name = ?", (server_id, name)
        )
        if row is None:
            raise KeyError(f"server {server_id} has no policy named {name!r}")
        new_enabled = bool(row[0]) if enabled is None else enabled
        new_mode = row[1] if mode == "keep" else (mode.value if isinstance(mode, Mode) else None)
        async with self.transaction() as conn:
            await conn.execute(
                "UPDATE policy_state SET enabled = ?, mode = ? WHERE server_id = ? AND name = ?",
                (int(new_enabled), new_mode, server_id, name),
            )
            await self._audit(
                conn,
                server_id,
                actor,
                "policy.switch",
                f"policy:{name}",
                json.dumps({"enabled": bool(row[0]), "mode": row[1]}),
                json.dumps({"enabled": new_enabled, "mode": new_mode}),
            )

    async def live_policies(self, server_id: str) -> list[LivePolicy]:
        rows = await self.fetchall(
            "SELECT p.server_id, p.name, p.version, p.text, p.description, p.author, p.created_at,"
            " s.enabled, s.mode FROM policies p JOIN policy_state s USING (server_id, name)"
            " WHERE p.server_id = ? AND p.version ="
            " (SELECT MAX(version) FROM policies q WHERE q.server_id = p.server_id AND q.name = p.name)"
            " ORDER BY p.name",
            (server_id,),
        )
        return [
            LivePolicy(
                Policy(
                    server_id=r[0],
                    name=r[1],
                    version=r[2],
                    text=r[3],
                    description=r[4],
                    author=r[5],
                    created_at=datetime.fromisoformat(r[6]),
                    enabled=bool(r[7]),
                ),
                bool(r[7]),
                Mode(r[8]) if r[8] else None,
            )
            for r in rows
        ]

    async def policy_versions(self, server_id: str, name: str) -> list[Policy]:
        rows = await self.fetchall(
            "SELECT version, text, description, author, created_at FROM policies"
            " WHERE server_id = ? AND name = ? ORDER BY version",
            (server_id, name),
        )
        return [
            Policy(
                server_id=server_id,
                name=name,
                version=r[0],
                text=r[1],
                description=r[2],
                author=r[3],
                created_at=datetime.fromisoformat(r[4]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------ cases

    async def record_decision(self, queue_id: int, case: Case, effects: Sequence[tuple[Effect, EffectOutcome]]) -> None:
        """Write the case, its verdicts and effect intents, and advance the queue item.

        With no effect left to execute the queue item is done in this same transaction.
        """
        await self._decisions.add((queue_id, case, tuple(effects)))

    async def _write_decisions(
        self, conn: aiosqlite.Connection, items: Sequence[tuple[int, Case, tuple[tuple[Effect, EffectOutcome], ...]]]
    ) -> list[None]:
        ts = self._ts()
        await conn.executemany(
            "INSERT INTO cases (id, platform, server_id, channel_id, message_id, author_id, text, message,"
            " status, violation, skipped_reason, mode, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    case.id,
                    case.message.platform,
                    case.message.server_id,
                    case.message.channel_id,
                    case.message.message_id,
                    case.message.author.id,
                    case.message.text,
                    case.message.model_copy(update={"text": ""}).model_dump_json(),
                    case.status.value,
                    int(case.violation),
                    case.skipped_reason,
                    case.mode.value,
                    case.created_at.isoformat(),
                )
                for _, case, _ in items
            ],
        )
        await self._insert_verdicts(conn, [(case.id, v) for _, case, _ in items for v in case.verdicts], None)
        effect_rows = [
            (case.id, seq, effect.kind.value, effect.model_dump_json(), outcome.value, ts)
            for _, case, effects in items
            for seq, (effect, outcome) in enumerate(effects, start=1)
        ]
        if effect_rows:
            await conn.executemany(
                "INSERT INTO effects (case_id, seq, kind, effect, outcome, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                effect_rows,
            )
        await conn.executemany(
            "UPDATE queue SET state = ?, case_id = ?, message = CASE WHEN ? THEN message END, updated_at = ?"
            " WHERE id = ?",
            [
                (("acting" if acting else "done"), case.id, int(acting), ts, queue_id)
                for queue_id, case, effects in items
                for acting in [any(outcome is EffectOutcome.PENDING for _, outcome in effects)]
            ],
        )
        return [None] * len(items)

    async def _insert_verdicts(
        self, conn: aiosqlite.Connection, verdicts: Iterable[tuple[str, Verdict]], appeal_id: int | None
    ) -> None:
        ts = self._ts()
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
                v.reasoning,
                v.raw_output,
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
        await conn.executemany(
            "INSERT INTO verdicts (case_id, appeal_id, policy, policy_version, status, violation, policy_category,"
            " rule_ids, confidence, rationale, reasoning, raw_output, model, effort, latency_ms, prompt_tokens,"
            " completion_tokens, reused, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    async def add_verdicts(self, case_id: str, verdicts: Iterable[Verdict], appeal_id: int | None) -> None:
        async with self.transaction() as conn:
            await self._insert_verdicts(conn, [(case_id, v) for v in verdicts], appeal_id)

    async def set_effect_outcome(
        self,
        case_id: str,
        seq: int,
        outcome: EffectOutcome,
        detail: str = "",
        finish_queue_id: int | None = None,
        reference: str | None = None,
    ) -> None:
        """Record an effect's intent or result; with finish_queue_id, also complete the queue item."""
        await self._outcomes.add((case_id, seq, outcome, detail, finish_queue_id, reference))

    async def _write_outcomes(
        self, conn: aiosqlite.Connection, items: Sequence[tuple[str, int, EffectOutcome, str, int | None, str | None]]
    ) -> list[None]:
        ts = self._ts()
        await conn.executemany(
            "UPDATE effects SET outcome = ?, detail = ?, reference = COALESCE(?, reference), updated_at = ?"
            " WHERE case_id = ? AND seq = ?",
            [(outcome.value, detail, ref, ts, case_id, seq) for case_id, seq, outcome, detail, _, ref in items],
        )
        finished = [(ts, queue_id) for _, _, _, _, queue_id, _ in items if queue_id is not None]
        if finished:
            await conn.executemany(
                "UPDATE queue SET state = 'done', message = NULL, updated_at = ? WHERE id = ?", finished
            )
        return [None] * len(items)

    async def cases_with_unfinished_effects(self) -> list[str]:
        """Decided cases (queue item done) with an effect still pending or started: a person's request cut short."""
        rows = await self.fetchall(
            "SELECT DISTINCT e.case_id FROM effects e JOIN queue q ON q.case_id = e.case_id"
            " WHERE q.state = 'done' AND e.outcome IN ('pending', 'started') ORDER BY e.case_id"
        )
        return [r[0] for r in rows]

    async def finish_queue_item(self, queue_id: int) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                "UPDATE queue SET state = 'done', message = NULL, updated_at = ? WHERE id = ?", (self._ts(), queue_id)
            )

    async def get_case(self, case_id: str) -> Case | None:
        rows = await self._load_cases("WHERE c.id = ?", (case_id,))
        return rows[0] if rows else None

    async def case_for_message(self, platform: str, server_id: str, message_id: str) -> Case | None:
        rows = await self._load_cases(
            "WHERE c.platform = ? AND c.server_id = ? AND c.message_id = ?", (platform, server_id, message_id)
        )
        return rows[0] if rows else None

    async def iter_cases(self, where: str = "", params: Sequence[Any] = (), batch: int = 500) -> AsyncIterator[Case]:
        """Every case (optionally filtered on columns of `cases c`) in creation order, a page at a time."""
        offset = 0
        while True:
            clause = f"WHERE {where}" if where else ""
            rows = await self._load_cases(clause, params, limit=batch, offset=offset)
            for case in rows:
                yield case
            if len(rows) < batch:
                return
            offset += batch

    async def set_case_status(self, case_id: str, status: CaseStatus, decided_by: str | None) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                "UPDATE cases SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                (status.value, decided_by, self._ts(), case_id),
            )

    async def _load_cases(
        self, clause: str, params: Sequence[Any], limit: int | None = None, offset: int = 0
    ) -> list[Case]:
        sql = (
            "SELECT c.id, c.text, c.message, c.status, c.skipped_reason, c.mode, c.decided_by, c.decided_at,"
            " c.created_at FROM cases c " + clause + " ORDER BY c.rowid"
        )
        if limit:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = await self.fetchall(sql, params)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        verdict_rows = await self.fetchall(
            "SELECT case_id, policy, policy_version, status, violation, policy_category, rule_ids, confidence,"
            " rationale, reasoning, raw_output, model, effort, latency_ms, prompt_tokens, completion_tokens, reused"
            f" FROM verdicts WHERE appeal_id IS NULL AND case_id IN ({marks}) ORDER BY id",
            ids,
        )
        effect_rows = await self.fetchall(
            "SELECT case_id, seq, effect, outcome, detail, updated_at, reference FROM effects"
            f" WHERE case_id IN ({marks}) ORDER BY case_id, seq",
            ids,
        )
        verdicts: dict[str, list[Verdict]] = {}
        for v in verdict_rows:
            verdicts.setdefault(v[0], []).append(verdict_from_row(v[1:]))
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
            message = Message.model_validate_json(r[2])
            message = message.model_copy(update={"text": r[1] or ""})
            cases.append(
                Case(
                    id=r[0],
                    message=message,
                    status=CaseStatus(r[3]),
                    skipped_reason=r[4],
                    mode=Mode(r[5]),
                    decided_by=r[6],
                    decided_at=datetime.fromisoformat(r[7]) if r[7] else None,
                    created_at=datetime.fromisoformat(r[8]),
                    verdicts=tuple(verdicts.get(r[0], ())),
                    effects=tuple(effects.get(r[0], ())),
                )
            )
        return cases


def verdict_from_row(v: Sequence[Any]) -> Verdict:
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
