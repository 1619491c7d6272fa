"""The launcher: every platform whose credentials are set, in one process; stdin when none is, or when asked."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters import launcher
from bot.domain import EffectKind, ServerSettings, utcnow
from bot.platforms import PlatformRouter
from bot.settings import ModbotSettings
from bot.store.sqlite import SqliteStore
from bot.workflow import WorkflowJobs
from tests.fakes import platform as fakechat
from tests.fakes.ollama_fake import FakeOllama
from tests.helpers import add_policy, make_message
from tests.workflow.fakes import FakeModChannel

ENTRY = launcher.PlatformEntry(fakechat.NAME, "tests.fakes.platform")


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(launcher, "PLATFORMS", (*launcher.PLATFORMS, ENTRY))
    fakechat.inbox = asyncio.Queue()
    fakechat.connected.clear()
    yield
    fakechat.inbox = None


def test_every_platform_is_declared_and_only_those_with_credentials_start(registered: None) -> None:
    declared = {c.platform: c for c in launcher.declared_capabilities({})}
    assert set(declared) == {entry.name for entry in launcher.PLATFORMS} >= {"console", "fakechat"}
    assert declared["console"].effects == frozenset(EffectKind)
    assert EffectKind.TIMEOUT not in declared["fakechat"].effects
    assert launcher.platforms_to_start({}) == []
    assert launcher.platforms_to_start({fakechat.TOKEN: "secret"}) == [ENTRY]


async def _cases(db: Path) -> dict[str, str]:
    store = await SqliteStore.open(db)
    try:
        return {c.message.message_id: c.status.value async for c in store.cases.every()}
    finally:
        await store.close()


async def _wait_for(db: Path, expected: set[str]) -> None:
    for _ in range(200):
        if set(await _cases(db)) >= expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{expected} were not all decided: {await _cases(db)}")


async def _seed(db: Path, *servers: tuple[str, str]) -> None:
    store = await SqliteStore.open(db)
    try:
        for platform, server in servers:
            await add_policy(store, server, platform=platform)
    finally:
        await store.close()


async def test_a_platform_with_credentials_runs_without_stdin_until_stopped(
    registered: None, tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    db = tmp_path / "run.db"
    await _seed(db, ("fakechat", "w1"))
    settings = ModbotSettings(db=db, ollama_host=fake_ollama.host, workers=2)
    stop = asyncio.Event()
    running = asyncio.create_task(launcher.run(settings, environ={fakechat.TOKEN: "t"}, stop=stop))
    assert fakechat.inbox is not None
    await fakechat.inbox.put(make_message("m1", "you idiot", platform="fakechat", server="w1"))
    await _wait_for(db, {"m1"})
    assert not running.done()
    stop.set()
    assert await asyncio.wait_for(running, 10) == 0
    (chat,) = fakechat.connected
    assert [e.kind for _, e in chat.adapter.executed] == [EffectKind.FLAG]
    assert await _cases(db) == {"m1": "open"}


async def test_with_stdin_as_well_the_end_of_stdin_does_not_stop_the_bot(
    registered: None, tmp_path: Path, fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "both.db"
    await _seed(db, ("fakechat", "w1"), ("console", "s1"))
    line = b'{"id": "c1", "server": "s1", "channel": "c", "author": "a", "text": "hello"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(line)))
    settings = ModbotSettings(db=db, ollama_host=fake_ollama.host, workers=2)
    stop = asyncio.Event()
    running = asyncio.create_task(launcher.run(settings, stdin=True, environ={fakechat.TOKEN: "t"}, stop=stop))
    await _wait_for(db, {"c1"})  # stdin was read to its end...
    assert fakechat.inbox is not None
    await fakechat.inbox.put(make_message("m2", "hello", platform="fakechat", server="w1"))
    await _wait_for(db, {"c1", "m2"})  # ...and the other platform is still served
    assert not running.done()
    stop.set()
    assert await asyncio.wait_for(running, 10) == 0


async def test_jobs_notify_only_servers_whose_platform_runs_here(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "jobs.db")
    try:
        for platform in ("console", "discord"):
            settings = ServerSettings(platform=platform, server_id="g1", mod_channel_id="mods", digest_hour_utc=9)
            await store.settings.put(settings, utcnow())
        console = FakeModChannel()
        at_nine = datetime(2025, 3, 3, 9, 5, tzinfo=UTC)
        jobs = WorkflowJobs(store, PlatformRouter({"console": console}), clock=lambda: at_nine)  # type: ignore[dict-item]
        digests = await jobs.digest()
        assert [d.server_id for d in digests] == ["g1"] and [s for s, _ in console.posted] == ["g1"]
        # Discord's digest was neither posted nor marked sent: the bot that runs Discord still sends it.
        assert await store.jobs.claim_digest("discord", "g1", at_nine.date().isoformat(), at_nine)
        assert not await store.jobs.claim_digest("console", "g1", at_nine.date().isoformat(), at_nine)
        # A mod channel that is not the router (a test's fake) serves every platform.
        assert len(await WorkflowJobs(store, FakeModChannel(), clock=lambda: at_nine + timedelta(days=1)).digest()) == 2
    finally:
        await store.close()
