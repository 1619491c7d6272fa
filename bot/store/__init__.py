"""Persistence: the SQLite store and its numbered migrations."""

from bot.store._migrations import available_migrations, current_version, migrate
from bot.store.sqlite import LivePolicy, QueueItem, SqliteStore

__all__ = ["LivePolicy", "QueueItem", "SqliteStore", "available_migrations", "current_version", "migrate"]
