"""A model call that never answers is given up: asked again a bounded number of times, then handed to a human.

The fakes hang until the client goes away and count each disconnect: that is how these
tests see the connection closed after a timeout, which is what makes Ollama (and vLLM,
llama.cpp) stop generating. The real `ollama` and `openai` clients run over loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.classifier import ModelUnavailable, RetryPolicy
from bot.domain import CaseStatus, VerdictStatus
from bot.pipeline import ModerationPipeline
from bot.store.sqlite import SqliteStore
from tests.fakes.ollama_fake import FakeOllama
from tests.helpers import REPO, RecordingSink, add_policy, make_message, run_modbot
from tests.test_classifier import Backend, free_port, request


@pytest_asyncio.fixture(params=["ollama", "openai"])
async def hanging(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    backend = Backend(request.param, None)  # type: ignore[arg-type]
    backend.fake = await backend.new_fake(hang=True).start()
    yield backend
    await backend.fake.stop()


@pytest.mark.parametrize("retries", [0, 1, 2])
async def test_a_call_that_never_answers_ends_in_human_review(
    hanging: Backend, retries: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    c = hanging.classifier(timeout=0.3, timeout_retries=retries)
    try:
        # Before the fix a timeout counted as "model unavailable" and was retried forever.
        verdict = await asyncio.wait_for(c.classify(request()), 10)
    finally:
        await c.aclose()
    assert verdict.status is VerdictStatus.NEEDS_REVIEW and not verdict.violation
    assert verdict.rationale == f"The model did not answer: timed out after 0.3 s ({retries + 1} attempts)."
    assert verdict.model and verdict.raw_output == ""
    assert len(hanging.requests()) == retries + 1
    # Every abandoned call was seen to disconnect by the server: it stops generating.
    await hanging.fake.wait_for_disconnects(retries + 1)
    assert hanging.fake.answered == 0
    assert "timed out after 0.3 s" in caplog.text
    assert "needs human review" in caplog.text
    assert "ollama serve" not in caplog.text and "unreachable" not in caplog.text


async def test_the_connection_is_closed_as_soon_as_the_call_is_given_up(hanging: Backend) -> None:
    c = hanging.classifier(timeout=0.3, timeout_retries=0)
    try:
        task = asyncio.create_task(c.classify(request()))
        await hanging.fake.rec.wait_for("POST", hanging.chat_path)
        assert hanging.fake.disconnects == 0
        await task
        # Not when the client is closed or collected: when the deadline passed.
        await hanging.fake.wait_for_disconnects(1, timeout=2)
        assert c.in_flight == 0
    finally:
        await c.aclose()


async def test_unreachable_keeps_the_message_waiting_and_stuck_decides_it(hanging: Backend) -> None:
    refused = hanging.classifier(port=free_port(), timeout=0.3, retry=RetryPolicy(3, 0.01, 0.02))
    stuck = hanging.classifier(timeout=0.3, timeout_retries=0)
    try:
        with pytest.raises(ModelUnavailable, match="unreachable"):
            await refused.classify(request())
        verdict = await stuck.classify(request())
    finally:
        await refused.aclose()
        await stuck.aclose()
    assert verdict.status is VerdictStatus.NEEDS_REVIEW and "timed out" in verdict.rationale


async def test_the_pipeline_decides_a_message_the_model_never_answers(hanging: Backend, tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "modbot.db")
    c = hanging.classifier(timeout=0.3, timeout_retries=1)
    pipeline = ModerationPipeline(store, c, {"console": RecordingSink()}, workers=2)
    try:
        await add_policy(store, text="# H\n## VIOLATES (1)\n- HB1.a: insults\n")
        await pipeline.start()
        assert await pipeline.submit(make_message("m1", "hello there"))
        await asyncio.wait_for(pipeline.drain(), 10)  # before the fix: never returned
        [case] = [case async for case in store.cases.every()]
        assert case.status is CaseStatus.NEEDS_REVIEW
        [verdict] = case.verdicts
        assert verdict.status is VerdictStatus.NEEDS_REVIEW and "timed out after 0.3 s" in verdict.rationale
        assert await store.queue_counts() == {"done": 1}
    finally:
        await pipeline.stop()
        await c.aclose()
        await store.close()


async def test_replay_ends_when_the_model_never_answers(tmp_path: Path) -> None:
    """The real `modbot replay` in a subprocess, against an Ollama that hangs: it ends, and says why."""
    fake = await FakeOllama(hang=True).start()
    lines = tmp_path / "in.jsonl"
    lines.write_text(json.dumps({"id": "1", "server": "s1", "channel": "c1", "author": "ann", "text": "hi"}) + "\n")
    try:
        code, out, err = await run_modbot(
            "replay",
            str(lines),
            "--db",
            str(tmp_path / "r.db"),
            "--json",
            "-p",
            str(REPO / "policies" / "harassment.md"),
            env={"OLLAMA_HOST": fake.host, "MODBOT_MODEL_TIMEOUT": "0.5", "MODBOT_MODEL_TIMEOUT_RETRIES": "1"},
            timeout=60,  # before the fix: never ended
        )
        await fake.wait_for_disconnects(2)
    finally:
        await fake.stop()
    assert code == 0, err
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["status"] == "needs_review", record
    assert "timed out after 0.5 s" in err and "ollama serve" not in err
