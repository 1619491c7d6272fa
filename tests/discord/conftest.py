"""The Discord adapter under test: the real discord.py, a real pipeline and store, a local Discord.

`world` starts, per test, the local Discord (tests/fakes/discord_fake.py), a SQLite store
with a harassment policy and the guild's settings, a ModerationPipeline whose classifier
flags "idiot" (tests.helpers.ScriptedClassifier), and the DiscordAdapter configured the
way an admin would: through DISCORD_TOKEN and MODBOT_DISCORD_* in the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord.gateway
import discord.http
import pytest
import pytest_asyncio

from adapters.discord.buttons import ClickActor
from adapters.discord.client import DiscordAdapter
from adapters.discord.config import DiscordSettings
from adapters.discord.custom_ids import CaseAction
from adapters.discord.platform import DiscordPlatform
from adapters.discord.replies import Reply
from adapters.discord.sink import never_ping
from bot.app import ModbotApp
from bot.domain import Case, EffectKind, EffectRule, Message, ServerSettings, utcnow
from bot.pipeline import ModerationPipeline
from bot.settings import ModbotSettings
from bot.store.ports import PolicyContent
from bot.store.sqlite import SqliteStore
from tests.conftest import POLICY_DIR
from tests.fakes.discord_fake import FakeDiscord
from tests.helpers import ScriptedClassifier

HARASSMENT = """# Harassment (HB)

## INSTRUCTIONS
Decide whether CONTENT attacks a member.

## VIOLATES (1)
- HB1.a: Insulting a target or mocking their looks.
- HB2.a: Telling a target to kill themselves.

## SAFE (0)
- HB0.a: Mutual banter.
"""

ALL_CASE_EFFECTS = (
    EffectKind.FLAG,
    EffectKind.DM_MODERATORS,
    EffectKind.DELETE,
    EffectKind.TIMEOUT,
    EffectKind.NOTIFY_AUTHOR,
)


class DecidedCases:
    """Cases as the pipeline decides them (after their effects ran): the barrier tests wait on."""

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self._changed = asyncio.Condition()

    async def observe(self, case: Case) -> None:
        async with self._changed:
            self.cases.append(case)
            self._changed.notify_all()

    def of(self, message_id: str) -> list[Case]:
        return [c for c in self.cases if c.message.message_id == message_id]

    async def wait_for(self, message_id: str, count: int = 1, timeout: float = 10.0) -> Case:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.of(message_id)) >= count), timeout)
        return self.of(message_id)[count - 1]


@dataclass
class RecordingCaseActions:
    """The CaseActions port in memory: records each call and answers with a fixed text."""

    calls: list[tuple[str, ClickActor, str, Any]] = field(default_factory=list)
    answer: str = "Done."
    reasoning_text: str = "The model's reasoning."
    called: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _record(self, name: str, actor: ClickActor, case_id: str, extra: Any) -> None:
        async with self.called:
            self.calls.append((name, actor, case_id, extra))
            self.called.notify_all()

    async def wait_calls(self, count: int, timeout: float = 5.0) -> None:
        async with self.called:
            await asyncio.wait_for(self.called.wait_for(lambda: len(self.calls) >= count), timeout)

    async def review(self, actor: ClickActor, case_id: str, action: CaseAction) -> Reply:
        await self._record("review", actor, case_id, action)
        return Reply.plain(self.answer)

    async def reasoning(self, actor: ClickActor, case_id: str) -> Reply:
        await self._record("reasoning", actor, case_id, None)
        return Reply.plain(self.reasoning_text)

    async def appeal(self, actor: ClickActor, case_id: str, statement: str) -> Reply:
        await self._record("appeal", actor, case_id, statement)
        return Reply.plain("Your appeal is filed.")

    async def decide_appeal(self, actor: ClickActor, case_id: str, action: CaseAction) -> Reply:
        await self._record("decide_appeal", actor, case_id, action)
        return Reply.plain(self.answer)


@dataclass
class DiscordWorld:
    fake: FakeDiscord
    store: SqliteStore
    settings: DiscordSettings
    classifier: ScriptedClassifier = field(default_factory=ScriptedClassifier)
    actions: RecordingCaseActions = field(default_factory=RecordingCaseActions)
    decided: DecidedCases = field(default_factory=DecidedCases)
    webhook_servers: set[str] = field(default_factory=set)
    ping_role: str | None = None
    adapter: DiscordAdapter | None = None
    pipeline: ModerationPipeline | None = None

    @property
    def bot(self) -> DiscordAdapter:
        assert self.adapter is not None
        return self.adapter

    async def configure(self, effects: tuple[EffectKind, ...] = ALL_CASE_EFFECTS, **changes: Any) -> ServerSettings:
        fake = self.fake
        fields: dict[str, Any] = {
            "platform": "discord",
            "server_id": fake.guild.id,
            "mod_channel_id": fake.mod_log.id,
            "moderator_role_ids": (fake.mod_role.id,),
            "effect_rules": (EffectRule(effects=effects, timeout_minutes=15),),
            "repeat_window_minutes": 0,
        }
        settings = ServerSettings(**{**fields, **changes})
        await self.store.settings.put(settings, utcnow())
        if self.pipeline is not None:
            self.pipeline.invalidate("discord", fake.guild.id)
        return settings

    async def start_bot(self, **adapter_options: Any) -> DiscordAdapter:
        """Start the adapter and a pipeline feeding it, as one bot process."""

        async def webhooks(message: Message) -> bool:
            return message.server_id in self.webhook_servers

        options: dict[str, Any] = {
            "case_actions": self.actions,
            "webhooks": webhooks,
            "moderator_ping": (lambda s: self.ping_role) if self.ping_role else never_ping,
            "guild_ready_timeout": 0.05,
            "retry_backoff_seconds": 0.01,
            **adapter_options,
        }
        self.adapter = DiscordAdapter(self.settings, **options)
        self.pipeline = ModerationPipeline(
            self.store, self.classifier, {"discord": self.adapter.sink}, workers=4, unavailable_backoff=(0.01, 0.02)
        )
        self.pipeline.observers.append(self.decided.observe)
        await self.pipeline.start()
        await self.adapter.start(self.pipeline)
        return self.adapter

    async def stop_bot(self) -> None:
        """Stop like a process ending: the connection first, then the workers."""
        if self.adapter is not None:
            adapter, self.adapter = self.adapter, None
            await adapter.close()
        if self.pipeline is not None:
            pipeline, self.pipeline = self.pipeline, None
            await pipeline.stop()

    async def restart_bot(self, **adapter_options: Any) -> DiscordAdapter:
        await self.stop_bot()
        return await self.start_bot(**adapter_options)


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    yield fake
    await fake.stop()


@pytest.fixture
def discord_env(fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> Callable[[], DiscordSettings]:
    """The environment an admin sets, pointing at the local Discord; discord.py's globals restored after."""
    # apply_endpoints sets two class attributes of discord.py; these register their restore.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    for name in ("DISCORD_TOKEN_FILE", "MODBOT_DISCORD_SHARDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_discord.env().items():
        monkeypatch.setenv(name, value)
    return DiscordSettings


@pytest_asyncio.fixture
async def world(
    fake_discord: FakeDiscord, discord_env: Callable[[], DiscordSettings], tmp_path: Path
) -> AsyncIterator[DiscordWorld]:
    store = await SqliteStore.open(tmp_path / "modbot.db")
    await store.policies.add_version(
        "discord", fake_discord.guild.id, PolicyContent(name="harassment", text=HARASSMENT), "test"
    )
    w = DiscordWorld(fake_discord, store, discord_env())
    await w.configure()
    try:
        yield w
    finally:
        try:
            await w.stop_bot()
        finally:
            await store.close()
    assert fake_discord.unhandled == [], (
        f"the bot called routes the local Discord does not serve: {fake_discord.unhandled}"
    )


@pytest_asyncio.fixture
async def running(world: DiscordWorld) -> DiscordWorld:
    await world.start_bot()
    return world


# ---------------------------------------------------------------- the whole bot: the app and the adapter


@dataclass
class ScriptedProbe:
    """The ModelProbe port: the model answers unless a test names a problem."""

    problem: str | None = None

    async def check(self) -> str | None:
        return self.problem


@dataclass
class BotProcess:
    """One bot process as `modbot run` assembles it, in this test's loop: the launcher's Discord entry
    (`adapters.discord.platform.connect` and `serve`), the app from `bootstrap`, a SQLite file.

    The classifier is the scripted one (flags "idiot"); everything else is the production code.
    `restart()` ends the process's connection and app and starts new ones on the same database.
    """

    fake: FakeDiscord
    db: Path
    classifier: ScriptedClassifier = field(default_factory=ScriptedClassifier)
    probe: ScriptedProbe = field(default_factory=ScriptedProbe)
    decided: DecidedCases = field(default_factory=DecidedCases)
    platform: DiscordPlatform | None = None
    app: ModbotApp | None = None
    serving: asyncio.Task[None] | None = None

    @property
    def settings(self) -> ModbotSettings:
        return ModbotSettings(db=self.db, policy_dir=POLICY_DIR, workers=2, ollama_host="http://127.0.0.1:9")

    @property
    def bot(self) -> ModbotApp:
        assert self.app is not None
        return self.app

    @property
    def adapter(self) -> DiscordAdapter:
        assert self.platform is not None
        return self.platform.adapter

    async def start(self) -> ModbotApp:
        from adapters.discord import platform as discord_platform
        from adapters.launcher import declared_capabilities
        from bot.bootstrap import bootstrap

        self.platform = await discord_platform.connect(self.settings, os.environ)
        store = await SqliteStore.open(self.db)
        self.app = await bootstrap(
            self.settings,
            {"discord": self.platform.adapter},
            capabilities=declared_capabilities(),
            classifier=self.classifier,
            store=store,
            probe=self.probe,
            run_jobs=False,
        )
        self.app.pipeline.observers.append(self.decided.observe)
        await self.app.start()
        self.serving = asyncio.create_task(self.platform.serve(self.app))
        await asyncio.wait_for(self.platform.serving.wait(), 10)
        return self.app

    async def stop(self) -> None:
        """As the launcher stops: intake's task cancelled, then the app closes (workers, then the adapter)."""
        if self.serving is not None:
            self.serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.serving
            self.serving = None
        if self.app is not None:
            app, self.app = self.app, None
            await app.aclose()
        self.platform = None

    async def restart(self) -> ModbotApp:
        await self.stop()
        return await self.start()

    async def seed(self, **settings: Any) -> ServerSettings:
        """The guild configured the way /modbot setup and /policy set would leave it, straight in the store."""
        fake = self.fake
        store = await SqliteStore.open(self.db)
        try:
            await store.policies.add_version(
                "discord", fake.guild.id, PolicyContent(name="harassment", text=HARASSMENT), fake.guild.owner_id
            )
            fields: dict[str, Any] = {
                "platform": "discord",
                "server_id": fake.guild.id,
                "mod_channel_id": fake.mod_log.id,
                "moderator_role_ids": (fake.mod_role.id,),
                "repeat_window_minutes": 0,
                **settings,
            }
            saved = ServerSettings(**fields)
            await store.settings.put(saved, utcnow())
            return saved
        finally:
            await store.close()


@pytest_asyncio.fixture
async def bot_process(
    fake_discord: FakeDiscord, discord_env: Callable[[], DiscordSettings], tmp_path: Path
) -> AsyncIterator[BotProcess]:
    process = BotProcess(fake_discord, tmp_path / "modbot.db")
    try:
        yield process
    finally:
        await process.stop()
    assert fake_discord.unhandled == [], (
        f"the bot called routes the local Discord does not serve: {fake_discord.unhandled}"
    )
