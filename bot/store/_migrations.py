"""Numbered SQL migrations, applied in order at start-up and recorded in the database."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

import aiosqlite

from bot.store._migration_steps import PYTHON_STEPS

_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# A migration line `-- python: name` runs PYTHON_STEPS[name] at that point, in the same
# transaction: for what SQL cannot say without knowing the live schema (bot/store/_migration_steps.py).
_PYTHON_STEP = re.compile(r"^-- python: ([a-z0-9_]+)$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("bot.store").joinpath("migrations").iterdir():
        m = _NAME_RE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001, 0002, ... without gaps; found {versions}")
    return found


async def current_version(conn: aiosqlite.Connection) -> int:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: aiosqlite.Connection, target: int | None = None) -> int:
    """Apply every migration not recorded in the database, in order, each in its own transaction.

    Returns the version the database is at afterwards. `target` stops early (for tests
    of a migration against a file at the previous version). A migration is known by its
    number, not by being below the highest one applied: one missing from the record (a
    file upgraded through a branch that lacked it) is applied too.
    """
    version = await current_version(conn)
    async with conn.execute("SELECT version FROM schema_migrations") as cur:
        applied = {int(r[0]) for r in await cur.fetchall()}
    for mig in available_migrations():
        if mig.version in applied or (target is not None and mig.version > target):
            continue
        # executescript would commit on its own; statements are run one by one inside
        # an explicit transaction so a failing migration leaves nothing half-applied.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_statements(mig.sql):
                step = _PYTHON_STEP.match(statement)
                if step:
                    await PYTHON_STEPS[step.group(1)](conn)
                else:
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, datetime('now'))",
                (mig.version, mig.name),
            )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        version = max(version, mig.version)
    return version


def _split_statements(sql: str) -> list[str]:
    """The SQL statements in order; a `-- python: name` line is a step of its own, kept in place."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines():
        if _PYTHON_STEP.match(line.strip()):
            statements.append(line.strip())
            continue
        if line.lstrip().startswith("--"):
            continue
        buffer += line + "\n"
        if buffer.strip() and _is_complete(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _is_complete(buffer: str) -> bool:
    return sqlite3.complete_statement(buffer)
