"""Migration steps written in Python: what SQL cannot say without reading the live schema.

A migration file names a step on a line of its own (`-- python: name`); it runs at that
point, inside the migration's transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosqlite

_OLD_CASE_KEY = "UNIQUE (platform, server_id, message_id)"
_NEW_CASE_KEY = (
    "revision INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1),\n    UNIQUE (platform, server_id, message_id, revision)"
)


async def cases_unique_per_revision(conn: aiosqlite.Connection) -> None:
    """`cases` gains `revision` and becomes unique per (platform, server, message, revision).

    SQLite cannot drop a table constraint, so the table is rebuilt from its own stored
    definition: columns that other migrations added to it, before or after this one, are
    kept whatever order the migrations ran in. Foreign keys (verdicts, effects, appeals,
    decisions) are checked at commit, when every case is back under the same id.
    """
    async with conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cases'") as cur:
        row = await cur.fetchone()
    if row is None or _OLD_CASE_KEY not in row[0]:
        raise RuntimeError("cases_unique_per_revision: the cases table is not the one this step expects")
    create = str(row[0]).replace(_OLD_CASE_KEY, _NEW_CASE_KEY)
    async with conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases' AND sql IS NOT NULL"
    ) as cur:
        indexes = [str(r[0]) for r in await cur.fetchall()]
    async with conn.execute("SELECT name FROM pragma_table_info('cases')") as cur:
        columns = ", ".join(f'"{r[0]}"' for r in await cur.fetchall())
    await conn.execute("PRAGMA defer_foreign_keys = ON")
    await conn.execute("CREATE TEMP TABLE cases_before_revisions AS SELECT * FROM cases")
    await conn.execute("DROP TABLE cases")
    await conn.execute(create)
    await conn.execute(f"INSERT INTO cases ({columns}) SELECT {columns} FROM temp.cases_before_revisions")
    await conn.execute("DROP TABLE temp.cases_before_revisions")
    for index in indexes:
        await conn.execute(index)


PYTHON_STEPS: dict[str, Callable[[aiosqlite.Connection], Awaitable[None]]] = {
    "cases_unique_per_revision": cases_unique_per_revision,
}
