"""An online backup of the SQLite database: one consistent copy, taken while the bot goes on writing.

SQLite's backup API (`sqlite3.Connection.backup`) copies the database page by page from
its own connection. Three choices make the copy safe to restore:

- One step (`pages=-1`). A backup in several steps starts again from the beginning each
  time another connection writes in between, so beside a busy bot it might never end;
  one step reads a single snapshot, and in WAL mode the bot's writes go on meanwhile.
- Its own connection, opened without migrating and without creating anything: the backup
  of a file a newer or older bot wrote is that file as it is, and a wrong path is an
  error rather than a new empty database. The store's connection is never held up.
- The copy is written beside the target under a temporary name, readable by its owner
  only (it holds message texts), checked with `PRAGMA integrity_check`, flushed to disk,
  and only then renamed into place: a failed or interrupted backup never leaves a partial
  file where a good one is expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

# Seconds to wait for a lock: only a checkpoint or a migration holds the bot's file that long.
BUSY_TIMEOUT_SECONDS = 30.0


class BackupError(Exception):
    """The backup was not made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupReport:
    source: Path
    target: Path
    bytes: int
    pages: int
    schema_version: int  # the latest migration the copy holds
    seconds: float


async def backup_database(source: Path, target: Path, *, overwrite: bool = False) -> BackupReport:
    """Copy the database at `source` to `target` while it is in use; the copy is whole and checked."""
    return await asyncio.to_thread(_backup, source, target, overwrite)


def _backup(source: Path, target: Path, overwrite: bool) -> BackupReport:
    started = time.perf_counter()
    source, target = source.absolute(), target.absolute()
    if not source.is_file():
        raise BackupError(f"no database at {source}: pass --db or set MODBOT_DB")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError("the backup must go to another file than the database itself")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists: choose another path, or pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent}: create it first")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        # Created here, owner-only, before SQLite opens it: the copy holds message texts.
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise BackupError(f"cannot write in {target.parent}: {exc.strerror}") from exc
    try:
        report = _copy(source, partial)
        _flush(partial)
        partial.replace(target)
        _flush(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return BackupReport(
        source=source,
        target=target,
        bytes=target.stat().st_size,
        pages=report[0],
        schema_version=report[1],
        seconds=time.perf_counter() - started,
    )


def _copy(source: Path, partial: Path) -> tuple[int, int]:
    """The backup itself; (pages, schema version) of the copy."""
    try:
        # mode=rw: an existing file only; SQLite would otherwise create an empty one.
        live = sqlite3.connect(f"{source.as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source}: {exc}") from exc
    try:
        copy = sqlite3.connect(partial, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            live.backup(copy, pages=-1)
            # The copy inherits WAL mode from the header; a rollback journal makes it one
            # self-contained file (the bot switches it back to WAL when it opens it).
            copy.execute("PRAGMA journal_mode = DELETE")
            checked = copy.execute("PRAGMA integrity_check").fetchall()
            if checked != [("ok",)]:
                problems = "; ".join(str(row[0]) for row in checked[:5])
                raise BackupError(
                    f"the copy failed its integrity check ({problems}), nothing was written: "
                    "the database may be damaged"
                )
            (pages,) = copy.execute("PRAGMA page_count").fetchone()
            version = _schema_version(copy)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed, nothing was written: {exc}") from exc
    finally:
        live.close()
    return int(pages), version


def _schema_version(conn: sqlite3.Connection) -> int:
    try:
        (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    except sqlite3.OperationalError:  # not a modbot database, or one never migrated
        return 0
    return int(version)


def _flush(path: Path) -> None:
    # A rename is durable only once both the file and its directory entry reach the disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
