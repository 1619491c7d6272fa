"""What the OpenAI-compatible backend sends and reads, with the real `openai` client against a fake on loopback.

The small real model (tests/realmodel) has neither a reasoning channel nor reasoning
effort, so these are tested here, with every dialect and reasoning field a server uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bot.classifier import (
    VERDICT_SCHEMA,
    ClassificationRequest,
    ModelUnavailable,
    OpenAIClassifier,
    RetryPolicy,
    build_messages,
)
from bot.classifier.factory import BackendMisconfigured, build_classifier
from bot.domain import Effort, Policy, Verdict, VerdictStatus
from bot.settings import ModbotSettings
from tests.fakes.openai_fake import FakeOpenAI, Reply, verdict_json
from tests.helpers import make_message

MODEL = "openai/gpt-oss-safeguard-20b"
POLICY = Policy(server_id="s1", name="harassment", version=3, text="# H\n## VIOLATES (1)\n- HB1.a: insults\n")
FAST = RetryPolicy(max_attempts=None, initial_seconds=0.01, max_seconds=0.05)


def request(text: str = "you idiot", effort: Effort = Effort.LOW) -> ClassificationRequest:
    return ClassificationRequest(POLICY, make_message(text=text), effort)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = await FakeOpenAI().start()
    yield server
    await server.stop()


async def classify(fake: FakeOpenAI, req: ClassificationRequest, **options: Any) -> Verdict:
    c = OpenAIClassifier(fake.base_url, MODEL, timeout=5, retry=FAST, **options)
    try:
        return await c.classify(req)
    finally:
        await c.aclose()


@pytest.mark.parametrize("effort", list(Effort))
async def test_the_request_carries_the_prompts_the_effort_and_the_json_schema(fake: FakeOpenAI, effort: Effort) -> None:
    req = request(effort=effort)
    await classify(fake, req)
    [sent] = fake.chat_requests()
    assert sent["model"] == MODEL
    assert sent["messages"] == build_messages(req)  # the very prompts the Ollama backend sends
    assert sent["reasoning_effort"] == effort.value
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True},
    }
    assert sent.get("stream") in (None, False)
    # Never capped: the reasoning would eat the budget and leave no answer.
    assert "max_tokens" not in sent and "max_completion_tokens" not in sent


@pytest.mark.parametrize("status", [500, 422, 400])
async def test_the_json_object_dialect_sends_the_schema_as_llama_cpp_takes_it(status: int) -> None:
    llama_like = await FakeOpenAI(schema_dialects=frozenset({"json_object"}), dialect_status=status).start()
    try:
        verdict = await classify(llama_like, request(), schema="json_object")
        [sent] = llama_like.chat_requests()
        assert sent["response_format"] == {"type": "json_object", "schema": VERDICT_SCHEMA}
        assert verdict.status is VerdictStatus.DECIDED
        # The other dialect is refused by such a server (llama-cpp-python answers 500): a
        # setting to fix, so the message waits and the operator is told which; no blind retries.
        with pytest.raises(ModelUnavailable, match=f"as json_schema \\({status}.*set schema=json_object"):
            await classify(llama_like, request(), schema="json_schema")
        assert len(llama_like.chat_requests()) == 2
    finally:
        await llama_like.stop()


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", None])
async def test_the_reasoning_is_read_from_whichever_field_the_server_uses(field: str | None) -> None:
    server = await FakeOpenAI(reasoning_field=field).start()
    server.responder = lambda req: Reply(verdict_json(1, ["HB1.a"]), thinking="The message insults a member.")
    try:
        verdict = await classify(server, request())
    finally:
        await server.stop()
    assert verdict.violation
    assert verdict.reasoning == ("The message insults a member." if field else "")


async def test_an_answer_is_validated_even_when_the_server_accepted_the_schema(fake: FakeOpenAI) -> None:
    # vLLM has been reported to accept a schema and not always enforce it.
    fake.responder = lambda req: Reply('{"violation": 1, "rule_ids": "HB1.a"}')
    verdict = await classify(fake, request())
    assert verdict.status is VerdictStatus.NEEDS_REVIEW and len(fake.chat_requests()) == 2


async def test_the_api_key_is_sent_and_a_refused_key_is_reported_at_once() -> None:
    server = await FakeOpenAI(api_key="sk-test-123").start()
    try:
        verdict = await classify(server, request(), api_key="sk-test-123")
        assert verdict.status is VerdictStatus.DECIDED
        assert server.rec.requests[-1].headers["Authorization"] == "Bearer sk-test-123"
        with pytest.raises(ModelUnavailable, match="OPENAI_API_KEY"):
            await classify(server, request(), api_key="sk-wrong")
        assert len(server.chat_requests()) == 2  # the refused one was not retried blindly
    finally:
        await server.stop()


async def test_the_settings_select_the_openai_backend_with_the_packages_own_variables(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.api_key = "sk-from-env"
    monkeypatch.setenv("MODBOT_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("MODBOT_MODEL", MODEL)
    monkeypatch.setenv("MODBOT_MODEL_CONCURRENCY", "3")
    settings = ModbotSettings()
    c = build_classifier(settings, FAST)
    try:
        results = await asyncio.gather(*(c.classify(request(f"idiot {i}")) for i in range(3)))
    finally:
        await c.aclose()
    assert all(v.violation and v.model == MODEL for v in results)
    assert [e.bound for e in c.pool.endpoints] == [3]
    assert "sk-from-env" not in repr(settings)  # a secret is never printed with the settings


def test_the_openai_backend_needs_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODBOT_BACKEND", "openai")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("MODBOT_OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendMisconfigured, match="OPENAI_BASE_URL"):
        build_classifier(ModbotSettings())
