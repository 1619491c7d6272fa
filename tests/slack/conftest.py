"""Slack tests: the local Slack, the whole app on SQLite with a scripted model, and the adapter in either mode."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapters.launcher import declared_capabilities
from adapters.slack.app import SlackAdapter
from adapters.slack.config import ConnectionMode, load_settings
from bot.app import ModbotApp
from bot.bootstrap import bootstrap
from bot.classifier import ClassificationRequest
from bot.domain import Case, Confidence, EffectKind, EffectRule, ServerSettings, Verdict, utcnow
from bot.pipeline import ModerationPipeline
from bot.policy_format import parse_policy
from bot.policy_library import content_of
from bot.settings import ModbotSettings
from bot.store.ports import ModerationStore
from bot.store.sqlite import SqliteStore
from tests.fakes.slack_fake import ADMIN_TOKEN, APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, TEAM_ID, FakeSlack
from tests.helpers import REPO

MOD_CHANNEL = "C0MODS"
# The library's harassment policy: a whole policy file, as moderators write them.
POLICY_TEXT = (REPO / "policies" / "harassment.md").read_text(encoding="utf-8")


@dataclass
class ScriptedModel:
    """The Classifier port in memory: a text with the bad word violates HB1.a, with a chosen rationale."""

    bad_word: str = "idiot"
    rationale: str = "Insults a member (HB1.a)."
    reasoning: str = "The content calls the target an idiot; HB1.a covers insults."
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
            reasoning=self.reasoning if bad else "",
            effort=request.effort,
        )


@dataclass
class Workspace:
    """One test's world: the local Slack, the adapter, the app behind it (pipeline and services), every case decided."""

    fake: FakeSlack
    adapter: SlackAdapter
    app: ModbotApp
    model: ScriptedModel
    cases: list[Case]

    @property
    def pipeline(self) -> ModerationPipeline:
        return self.app.pipeline

    @property
    def store(self) -> ModerationStore:
        return self.app.store

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}/slack/events"

    async def settle(self) -> None:
        """Barrier: everything Slack was answered for is done: messages decided, clicks and forms carried out.

        The adapter answers Slack only once `submit` has stored the message, and counts a
        command, click or form in before it answers; so after a delivery returns, draining
        the queue and waiting for the acknowledged work covers it. Work can start more work
        (a decision's effects), so both are waited for until neither has any left.
        """
        while True:
            await self.adapter.settle()
            await self.pipeline.drain()
            if not self.adapter.work.pending and not self.pipeline.backlog:
                return

    def cases_of(self, channel: str, ts: str) -> list[Case]:
        return [c for c in self.cases if c.message.message_id == f"{channel}:{ts}"]

    async def settings(self) -> ServerSettings:
        found = await self.store.settings.get("slack", TEAM_ID)
        assert found is not None
        return found

    # ------------------------------------------------------------ what people do, delivered as Slack would

    async def interact(self, payload: dict[str, Any]) -> Answer:
        """Deliver a block_actions or view_submission payload (signed HTTP, or a Socket Mode envelope)."""
        if self.adapter.mode is ConnectionMode.SOCKET:
            ack = await self.fake.send_envelope("interactive", payload)
            return Answer(200, ack.get("payload"))
        status, body = await self.fake.deliver(self.events_url, payload, form=True)
        return Answer(status, _parsed(body))

    async def command(self, command: str, text: str = "", *, user: str, channel: str = "C0GENERAL") -> Command:
        fields = self.fake.slash_command(command, text, user=user, channel=channel)
        hook = fields["response_url"].rsplit("/", 1)[1]
        if self.adapter.mode is ConnectionMode.SOCKET:
            ack = await self.fake.send_envelope("slash_commands", fields)
            return Command(Answer(200, ack.get("payload")), hook)
        status, body = await self.fake.deliver_command(self.events_url, fields)
        return Command(Answer(status, _parsed(body)), hook)

    async def reply_to(self, command: Command, count: int = 1) -> dict[str, Any]:
        """The `count`-th message modbot posted to the command's response_url."""
        return await self.fake.wait_for_response(command.hook, count)


def _parsed(body: str) -> Any:
    """An HTTP acknowledgement's body as Socket Mode carries it: JSON as it is, plain text as {"text": …}."""
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return {"text": body}


@dataclass(frozen=True)
class Answer:
    """Slack's answer to one delivery: the HTTP status, and the acknowledgement's body (None when empty)."""

    status: int
    body: Any


@dataclass(frozen=True)
class Command:
    answer: Answer
    hook: str  # its response_url's name at the local Slack


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
    """Build the adapter (HTTP or Socket Mode) over the whole app on SQLite; everything started is stopped after.

    The app is the one `modbot run` builds (bootstrap), with every platform declared as
    the launcher declares them for this environment, a scripted model, and no scheduled jobs.
    """
    started: list[tuple[SlackAdapter, ModbotApp]] = []

    async def make(
        mode: str = "http",
        *,
        admin: bool = False,
        effects: tuple[EffectKind, ...] = (EffectKind.FLAG,),
        moderators: tuple[str, ...] = (),
        model: ScriptedModel | None = None,
        **setting_overrides: Any,
    ) -> Workspace:
        db = tmp_path / f"modbot-{len(started)}.db"
        store = await SqliteStore.open(db)
        await store.policies.add_version("slack", TEAM_ID, content_of(parse_policy(POLICY_TEXT)), "test")
        fields: dict[str, Any] = {
            "mod_channel_id": MOD_CHANNEL,
            "moderator_user_ids": moderators,
            "effect_rules": (EffectRule(effects=effects),),
        }
        settings = ServerSettings(platform="slack", server_id=TEAM_ID, **(fields | setting_overrides))
        await store.settings.put(settings, utcnow())
        env = slack_env(mode, admin=admin, api_url=fake_slack.api_url)
        model = model or ScriptedModel()
        app = await bootstrap(
            ModbotSettings(db=db, workers=2),
            capabilities=declared_capabilities(env),
            classifier=model,
            store=store,
            run_jobs=False,
        )
        adapter = SlackAdapter(load_settings(**env))
        app.platforms.add("slack", adapter.sink)
        cases: list[Case] = []
        app.pipeline.observers.append(cases.append)
        await app.start()
        await adapter.start(app.pipeline, app, policy_dir=REPO / "policies")
        started.append((adapter, app))
        return Workspace(fake_slack, adapter, app, model, cases)

    yield make
    for adapter, app in reversed(started):
        await adapter.stop()
        await app.aclose()
