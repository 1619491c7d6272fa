"""The bot's store beside an admin command's: reads, intake and another process's writes interleave safely."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from bot.domain import ServerSettings
from bot.store.sqlite import SqliteStore
from tests.helpers import make_message
from tests.queue.conftest import T0


async def test_the_bots_writes_never_fail_while_another_connection_writes(tmp_path: Path) -> None:
    # A read on the bot's connection used to stay open between its execute and its fetch; a
    # transaction another task began in that gap, after another process had written, failed
    # at once with "database is locked" and stopped intake.
    db = tmp_path / "shared.db"
    bot = await SqliteStore.open(db)
    admin = await SqliteStore.open(db)
    try:

        async def intake() -> None:
            for i in range(300):
                await bot.intake(make_message(f"m{i}", f"text {i}"))

        async def read() -> None:
            for _ in range(300):
                await bot.waiting_page(T0, (), 64)
                await bot.queue_backlog()

        async def administer() -> None:
            for i in range(300):
                await admin.settings.put(ServerSettings(platform="console", server_id=f"g{i % 5}"), T0)

        await asyncio.gather(intake(), read(), read(), administer())
        assert (await bot.queue_backlog()).depth == 300
    finally:
        await admin.close()
        await bot.close()


async def test_a_group_commit_isolates_a_failing_item(tmp_path: Path) -> None:
    from bot.store._group_commit import GroupCommit

    store = await SqliteStore.open(tmp_path / "batch.db")
    try:
        async with store.raw_transaction() as conn:
            await conn.execute("CREATE TABLE items (value TEXT NOT NULL CHECK (value != 'bad'))")

        async def write(conn: aiosqlite.Connection, values: Sequence[str]) -> list[str]:
            await conn.executemany("INSERT INTO items (value) VALUES (?)", [(v,) for v in values])
            return list(values)

        batch: GroupCommit[str, str] = GroupCommit(store.raw_transaction, write)
        results = await asyncio.gather(*(batch.add(v) for v in ("a", "b", "bad", "c")), return_exceptions=True)
        assert results[:2] == ["a", "b"] and results[3] == "c"
        assert isinstance(results[2], sqlite3.IntegrityError)
        assert sorted(r[0] for r in await store.fetchall("SELECT value FROM items")) == ["a", "b", "c"]
    finally:
        await store.close()
