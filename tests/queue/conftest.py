"""Fixtures of the queue's tests: both stores (SQLite and the fake) behind one port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from bot.store.ports import ModerationStore
from bot.store.sqlite import SqliteStore
from tests.fakes.store import FakeStore
from tests.workflow.fakes import FakeClock

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest_asyncio.fixture(params=["sqlite", "fake"])
async def either_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[ModerationStore]:
    """The queue's contract holds on SQLite and on the fake the service tests use."""
    made: ModerationStore = (
        await SqliteStore.open(tmp_path / "queue.db", now=clock) if request.param == "sqlite" else FakeStore(clock)
    )
    yield made
    await made.close()
