"""The classifier's rules, the same for every backend: each test runs against Ollama and an OpenAI-compatible server.

The real `ollama` and `openai` clients talk over loopback to fakes of each API
(tests/fakes/ollama_fake.py, tests/fakes/openai_fake.py). What the wire carries for each
backend is tested in tests/classifier/.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from bot.classifier import (
    VERDICT_SCHEMA,
    ClassificationRequest,
    ModelClassifier,
    ModelRequestRejected,
    ModelUnavailable,
    OllamaClassifier,
    OpenAIClassifier,
    RetryPolicy,
)
from bot.domain import Confidence, Effort, Policy, VerdictStatus
from tests.fakes.model_server import FakeModelServer, Reply, verdict_json
from tests.fakes.ollama_fake import FakeOllama
from tests.fakes.openai_fake import FakeOpenAI
from tests.helpers import make_message

POLICY = Policy(server_id="s1", name="harassment", version=2, text="# H\n## VIOLATES (1)\n- HB1.a: insults\n")
FAST = RetryPolicy(max_attempts=None, initial_seconds=0.01, max_seconds=0.05)
OLLAMA_MODEL = "gpt-oss-safeguard:20b"
OPENAI_MODEL = "openai/gpt-oss-safeguard-20b"


def request(text: str = "you idiot", effort: Effort = Effort.LOW) -> ClassificationRequest:
    return ClassificationRequest(POLICY, make_message(text=text), effort)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    """One backend and its fake, so that each rule is tested against both."""

    kind: str
    fake: FakeModelServer

    @property
    def chat_path(self) -> str:
        return "/api/chat" if self.kind == "ollama" else "/v1/chat/completions"

    def url(self, port: int | None = None) -> str:
        host = self.fake.host if port is None else f"http://127.0.0.1:{port}"
        return host if self.kind == "ollama" else host + "/v1"

    def classifier(self, model: str | None = None, port: int | None = None, **options: Any) -> ModelClassifier:
        options.setdefault("timeout", 5)
        options.setdefault("retry", FAST)
        if self.kind == "ollama":
            return OllamaClassifier(self.url(port), model or OLLAMA_MODEL, **options)
        return OpenAIClassifier(self.url(port), model or OPENAI_MODEL, **options)

    def requests(self) -> list[dict[str, Any]]:
        return [r.json for r in self.fake.rec.find("POST", self.chat_path)]

    def error(self, status: int, text: str = "boom") -> Callable[[], web.Response]:
        body = {"error": text} if self.kind == "ollama" else {"error": {"message": text, "code": status}}
        return lambda: web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")

    def fail_next(self, status: int, times: int = 1, text: str = "boom") -> None:
        self.fake.rec.inject("POST", self.chat_path, self.error(status, text), times=times)

    def new_fake(self, **options: Any) -> FakeModelServer:
        return FakeOllama(**options) if self.kind == "ollama" else FakeOpenAI(**options)


@pytest_asyncio.fixture(params=["ollama", "openai"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    kind = request.param
    fake = await (FakeOllama() if kind == "ollama" else FakeOpenAI()).start()
    yield Backend(kind, fake)
    await fake.stop()


@pytest_asyncio.fixture
async def classifier(backend: Backend) -> AsyncIterator[ModelClassifier]:
    c = backend.classifier()
    yield c
    await c.aclose()


async def test_ollama_request_carries_policy_effort_schema_and_records_usage(fake_ollama: FakeOllama) -> None:
    fake_ollama.responder = lambda req: Reply(
        verdict_json(1, ["HB1.a"], "medium", "Insult (HB1.a)."),
        thinking="It insults a member.",
        prompt_eval_count=321,
        eval_count=45,
    )
    c = OllamaClassifier(fake_ollama.host, OLLAMA_MODEL, timeout=5, retry=FAST)
    try:
        v = await c.classify(request(effort=Effort.MEDIUM))
    finally:
        await c.aclose()
    sent = fake_ollama.chat_requests()[0]
    assert sent["model"] == OLLAMA_MODEL
    assert sent["think"] == "medium" and sent["format"] == VERDICT_SCHEMA and sent["stream"] is False
    assert sent["messages"][0] == {"role": "system", "content": POLICY.text}
    assert sent["messages"][1]["role"] == "user" and "you idiot" in sent["messages"][1]["content"]
    assert "num_predict" not in sent.get("options", {})  # never cap output: reasoning would eat it
    assert v.violation and v.rule_ids == ("HB1.a",) and v.confidence is Confidence.MEDIUM
    assert v.reasoning == "It insults a member." and v.rationale == "Insult (HB1.a)."
    assert (v.prompt_tokens, v.completion_tokens, v.policy_version) == (321, 45, 2)
    assert v.model == OLLAMA_MODEL and v.latency_ms > 0


async def test_a_verdict_records_reasoning_usage_and_model(backend: Backend, classifier: ModelClassifier) -> None:
    backend.fake.responder = lambda req: Reply(
        verdict_json(1, ["HB1.a"], "medium", "Insult (HB1.a)."),
        thinking="It insults.",
        prompt_eval_count=7,
        eval_count=3,
    )
    v = await classifier.classify(request(effort=Effort.HIGH))
    assert v.status is VerdictStatus.DECIDED and v.violation and v.rule_ids == ("HB1.a",)
    assert (v.reasoning, v.prompt_tokens, v.completion_tokens) == ("It insults.", 7, 3)
    assert v.model == (OLLAMA_MODEL if backend.kind == "ollama" else OPENAI_MODEL)
    assert v.effort is Effort.HIGH and v.latency_ms > 0


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_retried(backend: Backend, classifier: ModelClassifier, status: int) -> None:
    backend.fail_next(status, times=3)
    v = await classifier.classify(request())
    assert v.violation and len(backend.requests()) == 4


async def test_a_slow_call_is_asked_again(backend: Backend) -> None:
    calls = 0

    async def slow_then_fast(req: dict[str, Any]) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1.0)
        return Reply(verdict_json(0))

    backend.fake.responder = slow_then_fast
    c = backend.classifier(timeout=0.3)
    try:
        v = await c.classify(request())
    finally:
        await c.aclose()
    assert calls == 2 and v.status is VerdictStatus.DECIDED and not v.violation


async def test_connection_refused_is_retried_until_the_server_appears(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    c = backend.classifier(port=port, timeout=2)
    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(c.classify(request()))
    while "unreachable" not in caplog.text:
        await asyncio.sleep(0.01)
    assert not task.done()
    fake = await backend.new_fake().start(port)
    try:
        v = await asyncio.wait_for(task, 10)
    finally:
        await fake.stop()
        await c.aclose()
    assert v.violation
    hint = "ollama serve" if backend.kind == "ollama" else "OPENAI_BASE_URL"
    assert f"127.0.0.1:{port}" in caplog.text and hint in caplog.text


async def test_bounded_retries_give_up_with_an_operator_message(backend: Backend) -> None:
    c = backend.classifier(port=free_port(), timeout=1, retry=RetryPolicy(2, 0.01, 0.02))
    hint = "ollama serve" if backend.kind == "ollama" else "OPENAI_BASE_URL"
    try:
        with pytest.raises(ModelUnavailable, match=rf"unreachable at .*{hint}"):
            await c.classify(request())
    finally:
        await c.aclose()


async def test_a_missing_model_is_reported_at_once(backend: Backend) -> None:
    c = backend.classifier(model="missing")
    try:
        with pytest.raises(ModelUnavailable) as info:
            await c.classify(request())
    finally:
        await c.aclose()
    assert info.value.missing_model and len(backend.requests()) == 1  # not retried blindly
    assert ("ollama pull missing" if backend.kind == "ollama" else "check the model name") in str(info.value)


async def test_a_bad_request_is_not_retried(backend: Backend, classifier: ModelClassifier) -> None:
    backend.fail_next(400, text="context too long")
    with pytest.raises(ModelRequestRejected, match=r"400.*context too long"):
        await classifier.classify(request())
    assert len(backend.requests()) == 1


async def test_malformed_output_is_retried_once(backend: Backend, classifier: ModelClassifier) -> None:
    answers = iter(["not json at all", verdict_json(1, ["HB1.a"])])
    backend.fake.responder = lambda req: Reply(next(answers))
    v = await classifier.classify(request())
    assert v.status is VerdictStatus.DECIDED and v.violation and len(backend.requests()) == 2


async def test_malformed_twice_goes_to_human_review_with_raw_output(
    backend: Backend, classifier: ModelClassifier
) -> None:
    backend.fake.responder = lambda req: Reply('{"violation": "maybe"}', thinking="hmm")
    v = await classifier.classify(request())
    assert v.status is VerdictStatus.NEEDS_REVIEW and not v.violation
    assert v.raw_output == '{"violation": "maybe"}' and "could not be used" in v.rationale
    assert v.reasoning == "hmm" and len(backend.requests()) == 2


async def test_requests_in_flight_never_exceed_the_bound(backend: Backend) -> None:
    fake = await backend.new_fake(latency=0.05).start()
    c = Backend(backend.kind, fake).classifier(concurrency=3)
    try:
        await asyncio.gather(*(c.classify(request(f"text {i}")) for i in range(20)))
    finally:
        await c.aclose()
        await fake.stop()
    assert fake.calls == 20
    assert fake.peak_in_flight == 3 and c.peak_in_flight == 3


async def test_the_probe_says_whether_the_model_is_served(backend: Backend) -> None:
    served = backend.classifier()
    missing = backend.classifier(model="gpt-oss-safeguard:120b")
    down = backend.classifier(port=free_port())
    try:
        assert await served.check() is None
        problem = await missing.check()
        assert problem is not None and "gpt-oss-safeguard:120b" in problem
        unreachable = await down.check()
        assert unreachable is not None and "unreachable" in unreachable
    finally:
        for c in (served, missing, down):
            await c.aclose()
