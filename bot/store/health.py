"""Is the database writable? A real write, for the health endpoint and the container's healthcheck."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from bot.store.sqlite import SqliteStore

# Below this, SQLite's next checkpoint or a migration may fail: warn while there is time.
MIN_FREE_BYTES = 64 * 1024 * 1024


async def database_problem(store: SqliteStore, min_free_bytes: int = MIN_FREE_BYTES) -> str | None:
    """None when a write commits, else what is wrong (read-only, locked, disk full, ...).

    An empty transaction would prove nothing (SQLite takes the write lock of a read-only
    file without complaint), so the probe rewrites the header's user_version with the
    value it holds: a real page written to the WAL, and no data changed.
    """
    try:
        async with store.raw_transaction() as conn:
            async with conn.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            await conn.execute(f"PRAGMA user_version = {int(row[0]) if row else 0}")
    except sqlite3.Error as exc:
        return f"database {store.path} is not writable: {exc}"
    return _disk_problem(store.path, min_free_bytes)


def file_database_problem(path: Path, timeout_seconds: float = 4.0, min_free_bytes: int = MIN_FREE_BYTES) -> str | None:
    """The same probe from another process (the container's healthcheck), on its own connection."""
    if not path.is_file():
        return f"database {path} does not exist"
    try:
        conn = sqlite3.connect(path, timeout=timeout_seconds, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"database {path} is not writable: {exc}"
    return _disk_problem(path, min_free_bytes)


def _disk_problem(path: Path, min_free_bytes: int) -> str | None:
    if str(path) == ":memory:":
        return None
    free = shutil.disk_usage(path.resolve().parent).free
    if free < min_free_bytes:
        return f"disk holding {path} is nearly full: {free // (1024 * 1024)} MiB free"
    return None
