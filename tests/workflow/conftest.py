"""Fixtures of the workflow tests: a store on a controllable clock, fakes of the ports, case seeding."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.classifier import OllamaClassifier, RetryPolicy
from bot.domain import (
    Author,
    Case,
    CaseStatus,
    Confidence,
    Effect,
    EffectOutcome,
    Message,
    Mode,
    ServerSettings,
    Verdict,
)
from bot.pipeline import new_case_id
from bot.store.ports import ModerationStore
from bot.store.sqlite import SqliteStore
from bot.workflow import Actor, PolicyAdmin
from tests.fakes.ollama_fake import FakeOllama
from tests.workflow.fakes import FakeClock, FakeModChannel, FakeProbe, FakeSink

SERVER = "g1"
ADMIN = Actor(id="admin-1", platform="console", server_id=SERVER, is_admin=True)
MOD = Actor(id="mod-1", platform="console", server_id=SERVER, roles=("mods",))
MOD2 = Actor(id="mod-2", platform="console", server_id=SERVER, roles=("mods",))
MEMBER = Actor(id="member-9", platform="console", server_id=SERVER, roles=("members",))
AUTHOR = "author-1"
AUTHOR_ACTOR = Actor(id=AUTHOR, platform="console", server_id=SERVER)


def acting(actor: Actor, server: str) -> Actor:
    """The same person acting in another server (their roles and rights as the adapter saw them there)."""
    return actor.model_copy(update={"server_id": server})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def wstore(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "workflow.db", now=clock)
    yield store
    await store.close()


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def channel() -> FakeModChannel:
    return FakeModChannel()


@pytest.fixture
def probe() -> FakeProbe:
    return FakeProbe()


@pytest_asyncio.fixture
async def classifier(fake_ollama: FakeOllama) -> AsyncIterator[OllamaClassifier]:
    model = OllamaClassifier(fake_ollama.host, "gpt-oss-safeguard:20b", retry=RetryPolicy(max_attempts=1))
    yield model
    await model.aclose()


# Copies of library policies, frozen here so that edits to the library do not move these tests.
DATA = Path(__file__).resolve().parent / "data"


def policy_text(name: str = "harassment") -> str:
    return (DATA / f"{name}.md").read_text(encoding="utf-8")


async def configure(store: SqliteStore, **changes: Any) -> ServerSettings:
    """A server with moderators ('mods'), a mod channel, and the harassment policy v1."""
    settings = ServerSettings(
        platform="console", server_id=SERVER, mod_channel_id="mod-channel", moderator_role_ids=("mods",)
    ).model_copy(update=changes)
    settings = ServerSettings.model_validate(settings.model_dump())
    await store.settings.put(settings, store.now())
    if not await store.policies.live("console", SERVER):
        await PolicyAdmin(store).set(ADMIN, policy_text())
    return settings


def verdict(
    violation: bool = True,
    *,
    policy: str = "harassment",
    version: int = 1,
    rules: Sequence[str] = ("HB1.a",),
    rationale: str = "Insults a member (HB1.a).",
    latency_ms: float = 800.0,
) -> Verdict:
    return Verdict(
        policy=policy,
        policy_version=version,
        violation=violation,
        policy_category=rules[0] if violation and rules else None,
        rule_ids=tuple(rules) if violation else (),
        confidence=Confidence.HIGH,
        rationale=rationale if violation else "No rule applies.",
        reasoning="The message insults a member.",
        model="gpt-oss-safeguard:20b",
        latency_ms=latency_ms,
        prompt_tokens=300,
        completion_tokens=40,
    )


_seq = 0


async def seed_case(
    store: SqliteStore,
    *,
    text: str = "you are an idiot",
    author: str = AUTHOR,
    status: CaseStatus = CaseStatus.OPEN,
    verdicts: Sequence[Verdict] | None = None,
    effects: Sequence[tuple[Effect, EffectOutcome]] = (),
    server: str = SERVER,
    is_bot: bool = False,
    mode: Mode = Mode.ENFORCE,
) -> Case:
    """A decided case, written through the store's own intake and decision path, at the store's time."""
    global _seq
    _seq += 1
    message = Message(
        platform="console",
        server_id=server,
        channel_id="general",
        message_id=f"m{_seq}",
        author=Author(id=author, name=author, is_bot=is_bot),
        text=text,
        sent_at=store.now(),
    )
    queue_id = await store.enqueue(message)
    assert queue_id is not None
    if verdicts is None:
        verdicts = [verdict(status is not CaseStatus.CLEAN)]
    case = Case(
        id=new_case_id(),
        message=message,
        status=status,
        verdicts=tuple(verdicts),
        mode=mode,
        created_at=store.now(),
    )
    await store.record_decision(queue_id, case, list(effects))
    found = await store.cases.get(case.id)
    assert found is not None
    return found


async def snapshot(store: SqliteStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: a refused operation must leave this unchanged."""
    tables = [
        r[0]
        for r in await store.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return {t: [tuple(r) for r in await store.fetchall(f"SELECT * FROM {t} ORDER BY rowid")] for t in tables}


async def human_labels(store: ModerationStore, case_id: str) -> list[tuple[str, int, str]]:
    return [(d.action.value, int(d.violation), d.moderator_id) for d in await store.decisions.for_case(case_id)]
