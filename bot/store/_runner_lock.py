"""One bot process per database: an OS lock on a file beside the database.

Two bot processes on one database would take each other's queue (duplicate model calls,
effects racing). `flock` is held for as long as the process keeps the file open; the OS
releases it when the process exits, however it exits, so a crash never leaves a stale
lock behind. Admin commands (review, policy, settings) take no lock and work beside the bot.
"""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime
from pathlib import Path

from bot.sanitise import safe_inline
from bot.store.ports import RunnerLockHeld


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


class RunnerLock:
    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def take(cls, db: Path, who: str) -> RunnerLock:
        path = lock_path(db)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", errors="replace").strip()
            os.close(fd)
            raise RunnerLockHeld(
                f"another modbot process is already running on {db}"
                f" ({safe_inline(holder, 200) or 'holder unknown'}); one bot process per database:"
                " stop it first, or give this one another --db. Admin commands work beside it."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message a second process prints. The file itself is kept:
        # removing it while another process opens it would let two processes lock two files.
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{who}, pid {os.getpid()}, since {started}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the file releases the lock
            self._fd = None
