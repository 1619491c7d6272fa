"""The hostile corpus through the pipeline: nothing crashes, the model never receives a control
token, and nothing echoed (effects, case listings, judging notes) can ping or rewrite a terminal.

The model here is hostile too: it quotes the message back in its rationale and its rule ids.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from adapters.console.render import case_text
from adapters.console.sink import ConsoleAdapter
from bot.classifier import ClassificationRequest, build_messages
from bot.domain import Author, Case, Confidence, EffectKind, EffectRule, Message, Verdict
from bot.pipeline import ModerationPipeline
from bot.store.sqlite import SqliteStore
from tests.helpers import T0, add_policy
from tests.helpers_hostile import hostile_ids, hostile_texts
from tests.judging.conftest import POLICY, ReadingModel, all_cases, content_of, settings

# What Discord and Slack turn into a ping, written from their documentation (as tests/text does).
PINGS = [
    re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE),
    re.compile(r"<@[!&]?\d+>"),
    re.compile(r"<[!@#][^>]*>"),
]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
CONTROL_TOKEN = re.compile(r"<\|[^|]*\|>|<\||\|>")
OTHER_MARKERS = re.compile(r"\[/?INST\]|<start_of_turn>|<end_of_turn>|<im_start>|<im_end>", re.IGNORECASE)


def echoing(request: ClassificationRequest, content: dict[str, Any]) -> Verdict:
    """A model that repeats what it read, in the places a model's words are echoed."""
    text = str(content["text"])
    return Verdict(
        policy=request.policy.name,
        policy_version=request.policy.version,
        violation="idiot" in text,
        confidence=Confidence.HIGH,
        rule_ids=("HB1.a", text[:50]) if "idiot" in text else (text[:50],),
        rationale=f"the message says: {text[:300]}",
        reasoning=text[:1_000],
        raw_output=json.dumps({"rationale": text[:300]}),
    )


@pytest_asyncio.fixture
async def run(store: SqliteStore) -> AsyncIterator[tuple[ModerationPipeline, ReadingModel, io.StringIO]]:
    await add_policy(store, "s1", "harassment", POLICY)
    rules = (EffectRule(effects=(EffectKind.FLAG, EffectKind.DM_MODERATORS, EffectKind.NOTIFY_AUTHOR)),)
    await store.settings.put(settings(effect_rules=rules), store.now())
    model = ReadingModel(answer=echoing)
    printed = io.StringIO()
    pipeline = ModerationPipeline(store, model, {"console": ConsoleAdapter(out=printed)}, workers=4)
    await pipeline.start()
    yield pipeline, model, printed
    await pipeline.stop()


def _message(n: int, text: str, *, ids: str | None = None) -> Message:
    return Message(
        platform="console",
        server_id="s1",
        channel_id=ids or "c1",
        message_id=f"m{n}" if ids is None else f"m{n}{ids}",
        author=Author(id=ids or f"u{n}", name=ids or f"user {n}"),
        text=text,
        sent_at=T0,
    )


async def _through(pipeline: ModerationPipeline, store: SqliteStore) -> list[Case]:
    messages = [_message(n, case.value) for n, case in enumerate(hostile_texts())]
    messages += [_message(1_000 + n, "you idiot " + str(n), ids=case.value) for n, case in enumerate(hostile_ids())]
    for message in messages:
        await pipeline.submit(message)
    await pipeline.drain()
    await pipeline.judge.flag_updates.idle()  # type: ignore[union-attr]
    cases = await all_cases(store)
    assert len(cases) == len(messages) and await store.queue_counts() == {"done": len(messages)}
    return cases


def _assert_inert(text: str) -> None:
    text.encode("utf-8")
    for pattern in PINGS:
        assert not pattern.search(text), (pattern.pattern, text[:300])
    assert not CONTROL.search(text.replace("\n", "").replace("\t", "")), text[:300]


async def test_the_corpus_through_the_pipeline(
    run: tuple[ModerationPipeline, ReadingModel, io.StringIO], store: SqliteStore
) -> None:
    pipeline, model, _ = run
    cases = await _through(pipeline, store)
    assert not any(c.skipped_reason and c.skipped_reason.startswith("internal error") for c in cases)

    # What the model receives: no control token, whatever normalising made of the text.
    assert model.calls
    for request in model.calls:
        user = build_messages(request)[1]["content"]
        assert not CONTROL_TOKEN.search(user) and not OTHER_MARKERS.search(user), user[:300]
        content = content_of(request)
        for field in ("text", "original"):
            assert not CONTROL.search(str(content.get(field, "")).replace("\n", "").replace("\t", ""))

    # What judging echoes: the notes, with the model's made-up rule ids in them.
    assert any("marked unknown" in c.judging_notes for c in cases)
    for case in cases:
        _assert_inert(case.judging_notes)


async def test_the_console_echoes_the_corpus_inertly(
    run: tuple[ModerationPipeline, ReadingModel, io.StringIO], store: SqliteStore
) -> None:
    pipeline, _, printed = run
    cases = await _through(pipeline, store)
    for text in [printed.getvalue(), *(case_text(c) for c in cases)]:
        _assert_inert(text)
