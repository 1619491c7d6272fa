"""The Ollama backend with the real ollama client against a fake Ollama on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from bot.classifier import (
    VERDICT_SCHEMA,
    ClassificationRequest,
    ModelRequestRejected,
    ModelUnavailable,
    OllamaClassifier,
    RetryPolicy,
)
from bot.domain import Confidence, Effort, Policy, VerdictStatus
from tests.fakes.ollama_fake import FakeOllama, Reply, verdict_json
from tests.helpers import make_message

POLICY = Policy(server_id="s1", name="harassment", version=2, text="# H\n## VIOLATES (1)\n- HB1.a: insults\n")
FAST = RetryPolicy(max_attempts=None, initial_seconds=0.01, max_seconds=0.05)


def request(text: str = "you idiot", effort: Effort = Effort.LOW) -> ClassificationRequest:
    return ClassificationRequest(POLICY, make_message(text=text), effort)


@pytest_asyncio.fixture
async def classifier(fake_ollama: FakeOllama) -> AsyncIterator[OllamaClassifier]:
    c = OllamaClassifier(fake_ollama.host, "gpt-oss-safeguard:20b", timeout=5, retry=FAST)
    yield c
    await c.aclose()


def error(status: int, text: str = "boom") -> web.Response:
    return web.Response(body=f'{{"error": "{text}"}}'.encode(), status=status, content_type="application/json")


async def test_request_carries_policy_effort_schema_and_records_usage(
    fake_ollama: FakeOllama, classifier: OllamaClassifier
) -> None:
    fake_ollama.responder = lambda req: Reply(
        verdict_json(1, ["HB1.a"], "medium", "Insult (HB1.a)."),
        thinking="It insults a member.",
        prompt_eval_count=321,
        eval_count=45,
    )
    v = await classifier.classify(request(effort=Effort.MEDIUM))
    sent = fake_ollama.chat_requests()[0]
    assert sent["model"] == "gpt-oss-safeguard:20b"
    assert sent["think"] == "medium" and sent["format"] == VERDICT_SCHEMA and sent["stream"] is False
    assert sent["messages"][0] == {"role": "system", "content": POLICY.text}
    assert sent["messages"][1]["role"] == "user" and "you idiot" in sent["messages"][1]["content"]
    assert "num_predict" not in sent.get("options", {})  # never cap output: reasoning would eat it
    assert v.violation and v.rule_ids == ("HB1.a",) and v.confidence is Confidence.MEDIUM
    assert v.reasoning == "It insults a member." and v.rationale == "Insult (HB1.a)."
    assert (v.prompt_tokens, v.completion_tokens, v.policy_version) == (321, 45, 2)
    assert v.latency_ms > 0


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retried(fake_ollama: FakeOllama, classifier: OllamaClassifier, status: int) -> None:
    fake_ollama.rec.inject("POST", "/api/chat", lambda: error(status), times=3)
    v = await classifier.classify(request())
    assert v.violation and len(fake_ollama.chat_requests()) == 4


async def test_timeouts_are_retried(fake_ollama: FakeOllama) -> None:
    calls = 0

    async def slow_then_fast(req: dict) -> Reply:  # type: ignore[type-arg]
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1.0)
        return Reply(verdict_json(0))

    fake_ollama.responder = slow_then_fast
    c = OllamaClassifier(fake_ollama.host, "gpt-oss-safeguard:20b", timeout=0.3, retry=FAST)
    try:
        v = await c.classify(request())
    finally:
        await c.aclose()
    assert calls == 2 and not v.violation


async def test_connection_refused_is_retried_until_the_server_appears(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = OllamaClassifier(f"http://127.0.0.1:{port}", "gpt-oss-safeguard:20b", timeout=2, retry=FAST)
    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(c.classify(request()))
    while "unreachable" not in caplog.text:
        await asyncio.sleep(0.01)
    assert not task.done()
    fake = await FakeOllama().start(port)
    try:
        v = await asyncio.wait_for(task, 10)
    finally:
        await fake.stop()
        await c.aclose()
    assert v.violation
    assert f"127.0.0.1:{port}" in caplog.text and "ollama serve" in caplog.text


async def test_bounded_retries_give_up_with_an_operator_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = OllamaClassifier(
        f"http://127.0.0.1:{port}",
        "m",
        timeout=1,
        retry=RetryPolicy(max_attempts=2, initial_seconds=0.01, max_seconds=0.02),
    )
    try:
        with pytest.raises(ModelUnavailable, match=r"unreachable at .*ollama serve"):
            await c.classify(request())
    finally:
        await c.aclose()


async def test_missing_model_says_how_to_pull_it(fake_ollama: FakeOllama) -> None:
    c = OllamaClassifier(fake_ollama.host, "missing", timeout=2, retry=FAST)
    try:
        with pytest.raises(ModelUnavailable, match="ollama pull missing") as info:
            await c.classify(request())
    finally:
        await c.aclose()
    assert info.value.missing_model and len(fake_ollama.chat_requests()) == 1  # 404 is not retried blindly


async def test_a_bad_request_is_not_retried(fake_ollama: FakeOllama, classifier: OllamaClassifier) -> None:
    fake_ollama.rec.inject("POST", "/api/chat", lambda: error(400, "context too long"))
    with pytest.raises(ModelRequestRejected, match="400"):
        await classifier.classify(request())


async def test_malformed_output_is_retried_once(fake_ollama: FakeOllama, classifier: OllamaClassifier) -> None:
    answers = iter(["not json at all", verdict_json(1, ["HB1.a"])])
    fake_ollama.responder = lambda req: Reply(next(answers))
    v = await classifier.classify(request())
    assert v.status is VerdictStatus.DECIDED and v.violation and len(fake_ollama.chat_requests()) == 2


async def test_malformed_twice_goes_to_human_review_with_raw_output(
    fake_ollama: FakeOllama, classifier: OllamaClassifier
) -> None:
    fake_ollama.responder = lambda req: Reply('{"violation": "maybe"}', thinking="hmm")
    v = await classifier.classify(request())
    assert v.status is VerdictStatus.NEEDS_REVIEW and not v.violation
    assert v.raw_output == '{"violation": "maybe"}' and "could not be used" in v.rationale
    assert len(fake_ollama.chat_requests()) == 2


async def test_requests_in_flight_never_exceed_the_bound() -> None:
    fake = await FakeOllama(latency=0.05).start()
    c = OllamaClassifier(fake.host, "gpt-oss-safeguard:20b", concurrency=3, timeout=5, retry=FAST)
    try:
        await asyncio.gather(*(c.classify(request(f"text {i}")) for i in range(20)))
    finally:
        await c.aclose()
        await fake.stop()
    assert fake.calls == 20
    assert fake.peak_in_flight == 3 and c.peak_in_flight == 3
