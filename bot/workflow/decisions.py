"""Human decisions on cases (confirm, dismiss, uphold, overturn): each is recorded once and is a label."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Literal

import aiosqlite

from bot.domain import DecisionAction, Frozen, UtcDatetime
from bot.store import SqliteStore
from bot.workflow.errors import AlreadyDecided


class HumanDecision(Frozen):
    id: int
    case_id: str
    server_id: str
    action: DecisionAction
    violation: bool
    moderator_id: str
    note: str = ""
    at: UtcDatetime


_COLUMNS = "id, case_id, server_id, action, violation, moderator_id, note, at"


def _decision(row: aiosqlite.Row | tuple[object, ...]) -> HumanDecision:
    return HumanDecision(
        id=row[0],
        case_id=row[1],
        server_id=row[2],
        action=DecisionAction(str(row[3])),
        violation=bool(row[4]),
        moderator_id=row[5],
        note=row[6],
        at=datetime.fromisoformat(str(row[7])),
    )


def _stage_actions(stage: Literal["review", "appeal"]) -> tuple[str, str]:
    return ("confirm", "dismiss") if stage == "review" else ("uphold", "overturn")


async def first_decision(
    conn: aiosqlite.Connection, case_id: str, stage: Literal["review", "appeal"]
) -> HumanDecision | None:
    async with conn.execute(
        f"SELECT {_COLUMNS} FROM human_decisions WHERE case_id = ? AND action IN (?, ?) ORDER BY id LIMIT 1",
        (case_id, *_stage_actions(stage)),
    ) as cur:
        row = await cur.fetchone()
    return _decision(row) if row else None


async def decisions_for(store: SqliteStore, case_id: str) -> list[HumanDecision]:
    rows = await store.fetchall(f"SELECT {_COLUMNS} FROM human_decisions WHERE case_id = ? ORDER BY id", (case_id,))
    return [_decision(r) for r in rows]


def already_decided(first: HumanDecision) -> AlreadyDecided:
    what = "the review" if first.action.stage == "review" else "the appeal"
    return AlreadyDecided(first.case_id, first.action.value, first.moderator_id, first.at, what)


async def refuse_if_decided(conn: aiosqlite.Connection, case_id: str, stage: Literal["review", "appeal"]) -> None:
    first = await first_decision(conn, case_id, stage)
    if first is not None:
        raise already_decided(first)


async def insert_decision(
    conn: aiosqlite.Connection,
    case_id: str,
    server_id: str,
    action: DecisionAction,
    moderator_id: str,
    note: str,
    at: str,
) -> int:
    """Record the decision; the unique indexes refuse a second one for the same stage."""
    cur = await conn.execute(
        "INSERT INTO human_decisions (case_id, server_id, action, violation, moderator_id, note, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (case_id, server_id, action.value, int(action.violation), moderator_id, note, at),
    )
    await cur.close()
    assert cur.lastrowid is not None
    return cur.lastrowid


async def explain_conflict(
    store: SqliteStore, case_id: str, stage: Literal["review", "appeal"], exc: sqlite3.IntegrityError
) -> Exception:
    """After the unique index refused a decision: who decided first (or the error itself)."""
    first = await first_decision(store.connection, case_id, stage)
    return already_decided(first) if first is not None else exc
