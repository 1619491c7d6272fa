"""Migration 0003 (workflow state) on an empty file and on a file at version 2 with data in it."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from bot.store._migrations import available_migrations, current_version, migrate
from bot.store.sqlite import SqliteStore

WORKFLOW_TABLES = {"policy_drafts", "appeal_reminders", "digests_sent", "model_health", "health_alerts"}


async def tables(conn: aiosqlite.Connection) -> set[str]:
    async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cur:
        return {r[0] for r in await cur.fetchall()}


async def test_0003_is_numbered_after_human_decisions() -> None:
    names = {m.version: m.name for m in available_migrations()}
    assert names[2] == "human_decisions" and names[3] == "workflow"


async def test_0003_on_an_empty_file(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "empty.db")
    try:
        assert await tables(store.connection) >= WORKFLOW_TABLES
        assert await current_version(store.connection) >= 3
    finally:
        await store.close()


async def test_0003_on_a_file_at_version_2_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=2) == 2
        assert not WORKFLOW_TABLES & await tables(conn)
        await conn.execute(
            "INSERT INTO policies (server_id, name, version, text, created_at)"
            " VALUES ('g', 'p', 1, 'x', '2025-01-01T00:00:00+00:00')"
        )
    store = await SqliteStore.open(path)
    try:
        assert await tables(store.connection) >= WORKFLOW_TABLES
        assert [p.text for p in await store.policies.versions("console", "g", "p")] == ["x"]
        # The single-row health table refuses a second row.
        async with store.raw_transaction() as conn:
            await conn.execute("INSERT INTO model_health (id, probed_at) VALUES (1, 'now')")
        try:
            async with store.raw_transaction() as conn:
                await conn.execute("INSERT INTO model_health (id, probed_at) VALUES (2, 'now')")
        except aiosqlite.IntegrityError:
            pass
        else:
            raise AssertionError("model_health accepted a second row")
    finally:
        await store.close()
