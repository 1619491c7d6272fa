"""Slack tests: the local Slack, a real pipeline on SQLite with a scripted model, and the adapter in either mode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapters.slack.app import SlackAdapter
from adapters.slack.config import SlackSettings, load_settings
from bot.classifier import ClassificationRequest
from bot.domain import Case, Confidence, EffectKind, EffectRule, ServerSettings, Verdict, utcnow
from bot.pipeline import ModerationPipeline
from bot.store.ports import PolicyContent
from bot.store.sqlite import SqliteStore
from tests.fakes.slack_fake import ADMIN_TOKEN, APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, TEAM_ID, FakeSlack

MOD_CHANNEL = "C0MODS"
POLICY_TEXT = """# Harassment (HB)

## VIOLATES
- HB1.a: Insulting a target or mocking their looks, disability, or private life.
- HB2.a: Telling a target to kill themselves, or wishing them death.

## SAFE
- HB0.a: Banter between friends that nobody objects to.
"""


@dataclass
class ScriptedModel:
    """The Classifier port in memory: a text with the bad word violates HB1.a, with a chosen rationale."""

    bad_word: str = "idiot"
    rationale: str = "Insults a member (HB1.a)."
    calls: list[ClassificationRequest] = field(default_factory=list)

    async def classify(self, request: ClassificationRequest) -> Verdict:
        self.calls.append(request)
        bad = self.bad_word in request.message.text.casefold()
        return Verdict(
            policy=request.policy.name,
            policy_version=request.policy.version,
            violation=bad,
            rule_ids=("HB1.a",) if bad else (),
            policy_category="HB1.a" if bad else None,
            confidence=Confidence.HIGH,
            rationale=self.rationale if bad else "No rule applies.",
            effort=request.effort,
        )


@dataclass
class Workspace:
    """One test's world: the local Slack, the adapter, the pipeline behind it, and every case it decided."""

    fake: FakeSlack
    adapter: SlackAdapter
    pipeline: ModerationPipeline
    store: SqliteStore
    model: ScriptedModel
    cases: list[Case]

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}/slack/events"

    async def settle(self) -> None:
        """Barrier: every message Slack was answered for is decided and its effects carried out.

        The adapter answers Slack only once `submit` has stored the message, so after a
        delivery returns the message is queued, and draining the queue waits for it.
        """
        await self.pipeline.drain()

    def cases_of(self, channel: str, ts: str) -> list[Case]:
        return [c for c in self.cases if c.message.message_id == f"{channel}:{ts}"]


def slack_env(mode: str, *, admin: bool = False, api_url: str = "") -> dict[str, str]:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "MODBOT_SLACK_API_URL": api_url}
    if mode == "socket":
        env["SLACK_APP_TOKEN"] = APP_TOKEN
    else:
        env |= {"SLACK_SIGNING_SECRET": SIGNING_SECRET, "MODBOT_SLACK_HOST": "127.0.0.1", "MODBOT_SLACK_PORT": "0"}
    if admin:
        env["SLACK_ADMIN_USER_TOKEN"] = ADMIN_TOKEN
    return env


@pytest.fixture(autouse=True)
def _no_slack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The adapter reads SLACK_* itself (and Bolt reads some too): a developer's real tokens
    # must never reach a test.
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_ADMIN_USER_TOKEN",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "MODBOT_SLACK_PORT",
        "MODBOT_SLACK_API_URL",
        "MODBOT_SLACK_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()


MakeWorkspace = Callable[..., Awaitable[Workspace]]


@pytest_asyncio.fixture
async def make_workspace(fake_slack: FakeSlack, tmp_path: Path) -> AsyncIterator[MakeWorkspace]:
    """Build the adapter (HTTP or Socket Mode) over a real pipeline; everything started is stopped after."""
    started: list[tuple[SlackAdapter, ModerationPipeline, SqliteStore]] = []

    async def make(
        mode: str = "http",
        *,
        admin: bool = False,
        effects: tuple[EffectKind, ...] = (EffectKind.FLAG,),
        moderators: tuple[str, ...] = (),
        model: ScriptedModel | None = None,
        **setting_overrides: Any,
    ) -> Workspace:
        store = await SqliteStore.open(tmp_path / f"modbot-{len(started)}.db")
        await store.policies.add_version("slack", TEAM_ID, PolicyContent(name="harassment", text=POLICY_TEXT), "test")
        await store.settings.put(
            ServerSettings(
                platform="slack",
                server_id=TEAM_ID,
                mod_channel_id=MOD_CHANNEL,
                moderator_role_ids=moderators,
                effect_rules=(EffectRule(effects=effects),),
                **setting_overrides,
            ),
            utcnow(),
        )
        settings: SlackSettings = load_settings(**slack_env(mode, admin=admin, api_url=fake_slack.api_url))
        model = model or ScriptedModel()
        sinks: dict[str, Any] = {}
        pipeline = ModerationPipeline(store, model, sinks, workers=2, unavailable_backoff=(0.01, 0.02))
        adapter = SlackAdapter(settings, pipeline)
        pipeline.sinks.add("slack", adapter.sink)
        cases: list[Case] = []
        pipeline.observers.append(cases.append)
        await pipeline.start()
        await adapter.start()
        started.append((adapter, pipeline, store))
        return Workspace(fake_slack, adapter, pipeline, store, model, cases)

    yield make
    for adapter, pipeline, store in reversed(started):
        await adapter.stop()
        await pipeline.stop()
        await store.close()
