"""Issue 7 §9: the SQLite file and its WAL and SHM files are readable by the bot's user only (0600)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.sqlite import SqliteStore
from tests.workflow.conftest import seed_case


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The umask most systems start processes with: new files readable by everyone."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def modes(path: Path) -> dict[str, int]:
    files = {"db": path, "wal": path.with_name(path.name + "-wal"), "shm": path.with_name(path.name + "-shm")}
    return {name: stat.S_IMODE(f.stat().st_mode) for name, f in files.items() if f.exists()}


@pytest.mark.usefixtures("loose_umask")
async def test_a_new_database_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "modbot.db"
    store = await SqliteStore.open(path)
    try:
        await seed_case(store)  # writes: the WAL and SHM files exist now
        assert modes(path) == {"db": 0o600, "wal": 0o600, "shm": 0o600}
    finally:
        await store.close()


@pytest.mark.usefixtures("loose_umask")
async def test_an_existing_database_readable_by_others_is_narrowed_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "modbot.db"
    store = await SqliteStore.open(path)
    await seed_case(store)
    await store.close()
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            file.chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="bot.store.sqlite"):
        reopened = await SqliteStore.open(path)
    try:
        await seed_case(reopened)
        assert set(modes(path).values()) == {0o600}
        assert any("was readable by others (mode 644); now 600" in r.getMessage() for r in caplog.records)
    finally:
        await reopened.close()
