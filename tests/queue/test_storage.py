"""Storage stays proportionate: space freed by retention goes back to the disk; the size is reported."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import aiosqlite
import pytest

from bot.domain import Case, CaseStatus
from bot.platforms import PlatformRouter
from bot.store._migrations import migrate
from bot.store.sqlite import SqliteStore
from bot.workflow.status import Status
from tests.helpers import make_message, run_modbot
from tests.queue.conftest import T0


async def _fill(store: SqliteStore, count: int) -> None:
    for i in range(count):
        taken = await store.intake(make_message(f"m{i}", f"{i} " + "long chat text " * 1500))
        assert taken.queue_id is not None
        case = Case(id=f"C{i}", message=taken_message(i), status=CaseStatus.CLEAN, created_at=T0)
        await store.record_decision(taken.queue_id, case, [])


def taken_message(i: int):  # type: ignore[no-untyped-def]
    return make_message(f"m{i}", f"{i} " + "long chat text " * 1500)


def pages(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return conn.execute("PRAGMA page_count").fetchone()[0], conn.execute("PRAGMA freelist_count").fetchone()[0]


async def test_space_freed_by_retention_goes_back_to_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "space.db"
    store = await SqliteStore.open(path)
    try:
        assert store.auto_vacuum == "incremental" and store.describe()["auto_vacuum"] == "incremental"
        await _fill(store, 300)
        await store.cases.purge_text("console", "s1", T0 + timedelta(days=1), T0 + timedelta(days=1))
        full, free = pages(path)
        assert free > 100  # the text's pages are free, but still in the file
        freed = await store.reclaim_space(1 << 16)
        assert freed == free
        after, free_after = pages(path)
        assert free_after == 0 and after <= full - free
        assert path.stat().st_size == after * 4096
    finally:
        await store.close()


async def test_a_file_made_before_auto_vacuum_is_converted_by_the_bot_or_reported(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:  # as modbot made files before
        await conn.execute("PRAGMA journal_mode = WAL")
        await migrate(conn)
    admin = await SqliteStore.open(path)  # an admin command leaves it alone...
    try:
        assert admin.auto_vacuum == "none"
        report = await Status(admin, PlatformRouter({})).report()
        assert any("modbot db compact" in line for line in report.lines())
    finally:
        await admin.close()
    bot = await SqliteStore.open(path, runner="modbot run")  # ...the bot converts a small file
    try:
        assert bot.auto_vacuum == "incremental"
        report = await Status(bot, PlatformRouter({})).report()
        assert not any("modbot db compact" in line for line in report.lines())
    finally:
        await bot.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2


@pytest.mark.slow
async def test_db_compact_refuses_beside_a_bot_and_compacts_without_one(tmp_path: Path) -> None:
    path = tmp_path / "compact.db"
    bot = await SqliteStore.open(path, runner="modbot run")
    try:
        await _fill(bot, 100)
        code, out, err = await run_modbot("db", "compact", "--db", str(path))
        assert code == 2 and "another modbot process is already running" in err and "while the bot is stopped" in err
        await bot.cases.purge_text("console", "s1", T0 + timedelta(days=1), T0 + timedelta(days=1))
    finally:
        await bot.close()
    _, free = pages(path)
    assert free > 0
    code, out, err = await run_modbot("db", "compact", "--db", str(path))
    assert code == 0, err
    assert "bytes before" in out and "auto-vacuum incremental" in out
    assert pages(path)[1] == 0
