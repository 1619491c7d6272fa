"""The bot's store beside an admin command's: reads, intake and another process's writes interleave safely."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
                await bot.queue_stats()

        async def administer() -> None:
            for i in range(300):
                await admin.settings.put(ServerSettings(platform="console", server_id=f"g{i % 5}"), T0)

        await asyncio.gather(intake(), read(), read(), administer())
        assert (await bot.queue_stats()).waiting == 300
    finally:
        await admin.close()
        await bot.close()
