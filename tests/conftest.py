"""Shared fixtures: a fake Ollama on loopback and a fresh store per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.store.sqlite import SqliteStore
from tests.fakes.ollama_fake import FakeOllama

REPO = Path(__file__).resolve().parent.parent
POLICY_DIR = REPO / "policies"


@pytest_asyncio.fixture
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    fake = await FakeOllama().start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "modbot.db")
    yield s
    await s.close()


@pytest.fixture
def policy_dir() -> Path:
    return POLICY_DIR
