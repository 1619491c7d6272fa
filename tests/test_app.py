"""The app object: every service from one place, changes that take effect at once, a lifecycle in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from bot.app import ModbotApp
from bot.bootstrap import bootstrap
from bot.domain import (
    CaseStatus,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    EffectRule,
    ServerSettings,
    utcnow,
)
from bot.notices import Notice
from bot.pipeline import IntakeClosed
from bot.platforms import PlatformCapabilities
from bot.settings import ModbotSettings
from bot.workflow import Actor, Refused
from tests.fakes.store import FakeStore
from tests.helpers import ScriptedClassifier, make_message
from tests.workflow.conftest import policy_text

SERVER = "s1"
ADMIN = Actor(id="admin", platform="console", server_id=SERVER, is_admin=True)
MOD = Actor(id="mod", platform="console", server_id=SERVER, roles=("mods",))
AUTHOR = Actor(id="u1", platform="console", server_id=SERVER)
EVERY = frozenset(EffectKind)
CONSOLE = PlatformCapabilities(platform="console", effects=EVERY, configured=EVERY)
# A platform like Slack: no timeouts at all; deletes only with a token this process lacks.
CHAT = PlatformCapabilities(
    platform="chat",
    effects=EVERY - {EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT},
    configured=EVERY - {EffectKind.TIMEOUT, EffectKind.LIFT_TIMEOUT, EffectKind.DELETE},
    limits={
        EffectKind.TIMEOUT: "chat has no timeouts: flag and decide by hand, or delete",
        EffectKind.DELETE: "delete needs CHAT_ADMIN_TOKEN in the bot's environment",
    },
)


@dataclass
class RecordingAdapter:
    """A platform adapter in memory: its sink stores a flag post reference; its mod channel records notices."""

    platform: str = "console"
    executed: list[tuple[Effect, EffectContext]] = field(default_factory=list)
    posted: list[Notice] = field(default_factory=list)
    closed: bool = False
    supported_effects: frozenset[EffectKind] = EVERY

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        self.executed.append((effect, context))
        reference = f"mod-channel/{context.case.id}" if effect.kind is EffectKind.FLAG else None
        return EffectResult(outcome=EffectOutcome.DONE, reference=reference)

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        self.posted.append(notice)
        return EffectResult(outcome=EffectOutcome.DONE)

    async def aclose(self) -> None:
        self.closed = True

    def kinds(self) -> list[EffectKind]:
        return [e.kind for e, _ in self.executed]


class ClosableClassifier(ScriptedClassifier):
    closed = False

    async def aclose(self) -> None:
        self.closed = True


@pytest_asyncio.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[ModbotApp, RecordingAdapter]]:
    adapter = RecordingAdapter()
    made = await bootstrap(
        ModbotSettings(db=tmp_path / "app.db", workers=2),
        {"console": adapter},
        capabilities=[CONSOLE, CHAT],
        classifier=ClosableClassifier(),
        run_jobs=False,
    )
    await made.server_settings.update(ADMIN, {"moderator_role_ids": ["mods"], "mod_channel_id": "mod-channel"})
    await made.policies.set(ADMIN, policy_text())
    yield made, adapter
    await made.aclose()


async def test_a_case_walks_from_flag_to_overturn_through_the_app_alone(
    app: tuple[ModbotApp, RecordingAdapter],
) -> None:
    modbot, adapter = app
    async with modbot:
        assert await modbot.pipeline.submit(make_message("m1", "you idiot", server=SERVER))
        await modbot.pipeline.drain()
        (case,) = await modbot.reviews.open_cases(MOD)
        assert case.effects[0].reference == f"mod-channel/{case.id}"
        view = await modbot.appeals.file(case.id, AUTHOR, "I was quoting someone")
        assert view.case_status is CaseStatus.APPEALED and view.second_opinion_queued
        await modbot.pipeline.drain()  # the second opinion runs as queued work
        assert len((await modbot.appeals.view(case.id, MOD)).second_opinion) == 1
        assert [n.kind for n in adapter.posted] == ["appeal_filed", "second_opinion"]
        outcome = await modbot.appeals.overturn(case.id, MOD, note="a quote")
        assert [d.action.value for d in (await modbot.reviews.show(case.id, MOD))[1]] == ["overturn"]
    assert outcome.case.status is CaseStatus.OVERTURNED
    assert adapter.kinds() == [EffectKind.FLAG, EffectKind.UPDATE_FLAG, EffectKind.NOTIFY_APPEAL_OUTCOME]
    _, context = adapter.executed[1]
    assert context.flag_reference == f"mod-channel/{case.id}" and context.case.decided_by == "mod"


async def test_a_change_made_through_a_service_takes_effect_at_once(app: tuple[ModbotApp, RecordingAdapter]) -> None:
    modbot, _ = app
    async with modbot:
        # The pipeline caches the server's settings and policies once it has seen a message...
        await modbot.pipeline.submit(make_message("m1", "hello", server=SERVER, channel="staff"))
        await modbot.pipeline.drain()
        await modbot.server_settings.update(MOD, {"exempt_channel_ids": ["staff"]})
        await modbot.pipeline.submit(make_message("m2", "you idiot", server=SERVER, channel="staff"))
        await modbot.policies.disable(MOD, "harassment")
        await modbot.pipeline.submit(make_message("m3", "you idiot", server=SERVER, channel="general"))
        await modbot.pipeline.drain()
        skipped = {c.message.message_id: c.skipped_reason async for c in modbot.store.cases.every()}
    # ...and forgets them the moment a service changes them, not a cache lifetime later.
    assert skipped == {"m1": None, "m2": "channel is exempt", "m3": "no active policy for this server"}


async def test_settings_refuse_an_effect_the_servers_platform_cannot_carry_out(
    app: tuple[ModbotApp, RecordingAdapter],
) -> None:
    modbot, _ = app
    chat_admin = ADMIN.model_copy(update={"platform": "chat"})
    rules = [{"effects": ["flag", "timeout"]}]
    with pytest.raises(Refused) as refused:
        await modbot.server_settings.update(chat_admin, {"effect_rules": rules})
    assert "effect_rules[0].effects: chat cannot carry out timeout: chat has no timeouts" in str(refused.value)
    ladder = {"enabled": True, "steps": [{"strikes": 2, "effects": ["timeout"]}]}
    with pytest.raises(Refused, match=r"strike_ladder\.steps\[0\]\.effects: chat cannot carry out timeout"):
        await modbot.server_settings.update(chat_admin, {"strike_ladder": ladder})
    assert await modbot.store.settings.get("chat", SERVER) is None
    # What the platform can do is accepted, even when this process is not configured for it.
    updated = await modbot.server_settings.update(chat_admin, {"effect_rules": [{"effects": ["flag", "delete"]}]})
    assert updated.effect_rules[0].effects == (EffectKind.FLAG, EffectKind.DELETE)
    # A platform nobody declared is a typo, not a new platform.
    with pytest.raises(Refused, match="no platform named 'discrod'; platforms are chat, console"):
        await modbot.server_settings.update(ADMIN.model_copy(update={"platform": "discrod"}), {"retention_days": 3})


async def test_the_status_reports_what_this_configuration_cannot_do(tmp_path: Path) -> None:
    chat = RecordingAdapter(platform="chat")
    modbot = await bootstrap(
        ModbotSettings(db=tmp_path / "s.db"),
        {"chat": chat},
        capabilities=[CONSOLE, CHAT],
        classifier=ScriptedClassifier(),
        run_jobs=False,
    )
    try:
        await modbot.store.settings.put(
            ServerSettings(platform="chat", server_id="T1", effect_rules=(EffectRule(effects=(EffectKind.TIMEOUT,)),)),
            utcnow(),
        )
        report = await modbot.status.report()
    finally:
        await modbot.aclose()
    by_name = {p.platform: p for p in report.platforms}
    assert by_name["chat"].running and not by_name["console"].running
    assert by_name["chat"].limits == ("delete: delete needs CHAT_ADMIN_TOKEN in the bot's environment",)
    assert by_name["chat"].misconfigured == (
        "server T1: effect_rules[0].effects: chat cannot carry out timeout: chat has no timeouts: flag and decide"
        " by hand, or delete",
    )
    assert report.store_bytes > 0 and report.store["kind"] == "sqlite"
    text = "\n".join(report.lines())
    assert "platform chat: running" in text and "limit: delete" in text


async def test_leaving_the_app_stops_intake_then_workers_then_closes_the_clients() -> None:
    store = FakeStore()
    adapter = RecordingAdapter()
    classifier = ClosableClassifier()
    modbot = await bootstrap(ModbotSettings(), {"console": adapter}, classifier=classifier, store=store, run_jobs=False)
    async with modbot:
        assert modbot.pipeline._workers  # started on entry
    with pytest.raises(IntakeClosed):
        await modbot.pipeline.submit(make_message("late"))
    assert not modbot.pipeline.running
    assert classifier.closed and adapter.closed and store.closed
    assert await store.queue_counts() == {}  # the late message was never accepted
