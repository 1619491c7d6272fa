"""Long work never blocks an interaction: second opinions and previews are queued work, reported when done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot.app import ModbotApp
from bot.bootstrap import bootstrap
from bot.classifier import RetryPolicy
from bot.domain import CaseStatus, Effort, ServerSettings
from bot.notices import PreviewFinished, SecondOpinion
from bot.settings import ModbotSettings
from bot.store.sqlite import SqliteStore
from bot.workflow import Actor
from tests.fakes.ollama_fake import FakeOllama
from tests.helpers import add_policy
from tests.queue.helpers import PostingSink, chat
from tests.workflow.conftest import policy_text

SERVER = "s1"
MOD = Actor(id="mod", platform="console", server_id=SERVER, roles=("mods",))
AUTHOR = Actor(id="u1", platform="console", server_id=SERVER)


@pytest_asyncio.fixture
async def app(tmp_path: Path, fake_ollama: FakeOllama) -> AsyncIterator[tuple[ModbotApp, PostingSink]]:
    store = await SqliteStore.open(tmp_path / "interactions.db")
    await add_policy(store, SERVER)
    await store.settings.put(
        ServerSettings(platform="console", server_id=SERVER, mod_channel_id="mods", moderator_role_ids=("mods",)),
        store.now(),
    )
    adapter = PostingSink()
    settings = ModbotSettings(db=tmp_path / "interactions.db", ollama_host=fake_ollama.host, workers=4)
    quick = RetryPolicy(max_attempts=1, initial_seconds=0.01, max_seconds=0.02)
    modbot = await bootstrap(settings, {"console": adapter}, store=store, retry=quick, run_jobs=False)
    modbot.pipeline.unavailable_backoff = (0.05, 0.2)
    yield modbot, adapter
    await modbot.aclose()


async def _posted(adapter: PostingSink, kind: type[object]) -> object:
    for _ in range(400):
        found = [n for n in adapter.posted if isinstance(n, kind)]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind.__name__} posted: {[type(n).__name__ for n in adapter.posted]}")


async def test_an_appeal_filed_while_the_model_is_down_gets_its_second_opinion_when_it_is_back(
    app: tuple[ModbotApp, PostingSink], fake_ollama: FakeOllama
) -> None:
    modbot, adapter = app
    async with modbot:
        await modbot.pipeline.submit(chat("m1", "you idiot"))
        await modbot.pipeline.drain()
        (case,) = await modbot.reviews.open_cases(MOD)
        port = fake_ollama.port
        await fake_ollama.stop()  # the model server goes away

        view = await modbot.appeals.file(case.id, AUTHOR, "I was quoting someone")
        assert view.case_status is CaseStatus.APPEALED and view.second_opinion_queued
        assert [type(n).__name__ for n in adapter.posted] == ["AppealFiled"]
        await asyncio.sleep(0.3)  # the workers try, and wait for the model
        assert not [n for n in adapter.posted if isinstance(n, SecondOpinion)]
        assert await modbot.store.work.counts() == {"pending": 1}

        back = await FakeOllama().start(port)  # the model answers again
        try:
            arrived = await _posted(adapter, SecondOpinion)
        finally:
            await back.stop()
    assert isinstance(arrived, SecondOpinion)
    [opinion] = arrived.appeal.second_opinion
    assert opinion.effort is Effort.HIGH and arrived.appeal.case_id == case.id
    assert [r["think"] for r in back.chat_requests()] == ["high"]


async def test_a_preview_is_recorded_at_once_and_reported_to_the_mod_channel(
    app: tuple[ModbotApp, PostingSink], fake_ollama: FakeOllama
) -> None:
    modbot, adapter = app
    async with modbot:
        for i, text in enumerate(["you are a clown", "nice weather", "you idiot"]):
            await modbot.pipeline.submit(chat(f"m{i}", text))
        await modbot.pipeline.drain()
        before = len(fake_ollama.chat_requests())
        fake_ollama.bad_words.add("clown")
        draft_text = policy_text().replace("Insulting a target", "Calling someone a clown")
        requested = await modbot.preview.request(MOD, draft_text)
        assert (requested.name, requested.server_id) == ("harassment", SERVER)
        finished = await _posted(adapter, PreviewFinished)
        assert isinstance(finished, PreviewFinished) and finished.summary is not None
        draft = await modbot.store.policies.get_draft("console", SERVER, finished.summary.draft_id)
    assert finished.requested_by == "mod" and finished.summary.examined == 3
    assert len(finished.summary.newly_flagged) == 1
    assert len(fake_ollama.chat_requests()) - before == 3
    assert draft is not None and draft.applied_by is None  # recorded, not live until applied
