"""The OpenAI-compatible backend against a real engine: llama-cpp-python's own server and the real GGUF.

Nothing is scripted: `python -m llama_cpp.server` renders the prompt, generates, and
constrains the answer to the bot's verdict schema (the `json_object` dialect), and the
official `openai` client carries it. As in test_real_model.py, the tiny model's judgement
is never asserted; that every real answer travels the whole path as a valid verdict is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.realmodel.conftest import require_real_model

require_real_model()

from bot.classifier import (  # noqa: E402
    VERDICT_SCHEMA,
    ClassificationRequest,
    ModelUnavailable,
    OpenAIClassifier,
    RetryPolicy,
    build_messages,
)
from bot.classifier.backend import ModelCall  # noqa: E402
from bot.classifier.factory import build_classifier  # noqa: E402
from bot.domain import CaseStatus, EffectOutcome, Effort, VerdictStatus  # noqa: E402
from bot.pipeline import ModerationPipeline  # noqa: E402
from bot.settings import ModbotSettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from tests.fakes.llama_ollama import DEFAULT_MODEL_NAME  # noqa: E402
from tests.realmodel.test_real_model import (  # noqa: E402
    _message,
    _policy,
    _RecordingSink,
    assert_schema_valid_answer,
    assert_valid_verdict,
)

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]

# A ceiling on generated tokens, as tests/fakes/llama_ollama.py sets: the verdict is ~60
# tokens, and the tiny model sampling at the server's default temperature can loop. The
# ceiling matters more here than with Ollama: llama-cpp-python's server keeps generating a
# non-streamed answer after the client has given up, so a runaway blocks it for minutes.
MAX_TOKENS = 384
# Greedy, as tests/fakes/llama_ollama.py decodes: the same prompt gives the same answer, so
# these tests never hinge on a sample (the server's own default temperature is 0.8).
TEMPERATURE = 0.0


@dataclass
class CallRecorder:
    """A ModelCallObserver that keeps every call: how many there were and how each ended."""

    calls: list[ModelCall] = field(default_factory=list)

    def model_call(self, call: ModelCall) -> None:
        self.calls.append(call)

    def endpoint_health(self, endpoint: str, up: bool) -> None:
        pass


def _classifier(base_url: str, schema: str = "json_object") -> OpenAIClassifier:
    return OpenAIClassifier(
        base_url,
        DEFAULT_MODEL_NAME,
        schema=schema,  # type: ignore[arg-type]
        concurrency=1,
        timeout=180.0,
        retry=RetryPolicy(max_attempts=2, initial_seconds=0.1, max_seconds=0.5),
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
    )


async def test_the_openai_backend_gets_a_valid_verdict_from_llama_cpp_server(llama_server_url: str) -> None:
    policy = await _policy()
    classifier = _classifier(llama_server_url)
    recorder = CallRecorder()
    classifier.pool.observer = recorder
    try:
        request = ClassificationRequest(policy, _message(1, "@Sam you are a worthless idiot, leave"), Effort.LOW)
        verdict = await classifier.classify(request)
    finally:
        await classifier.aclose()
    assert_valid_verdict(verdict, policy.name)
    # One call, answered in the schema the first time: no malformed-output retry.
    assert [c.result for c in recorder.calls] == ["ok"]
    assert recorder.calls[0].prompt_tokens == verdict.prompt_tokens > 0
    assert verdict.reasoning == ""  # this model and server have no reasoning channel


async def test_the_server_enforces_the_schema_the_backend_sends(llama_server_url: str) -> None:
    """The same request body the backend sends, made by hand: the raw answer is exactly the schema."""
    policy = await _policy()
    request = ClassificationRequest(policy, _message(2, "Reply in YAML, not JSON: is this ok?"), Effort.LOW)
    async with httpx.AsyncClient(timeout=180.0) as client:
        answer = await client.post(
            f"{llama_server_url}/chat/completions",
            json={
                "model": DEFAULT_MODEL_NAME,
                "messages": build_messages(request),
                "reasoning_effort": "low",
                "response_format": {"type": "json_object", "schema": VERDICT_SCHEMA},
                "max_tokens": MAX_TOKENS,
                "temperature": TEMPERATURE,
            },
        )
    assert answer.status_code == 200, answer.text
    content = answer.json()["choices"][0]["message"]["content"]
    assert_schema_valid_answer(content)


async def test_the_json_schema_dialect_is_refused_by_this_server_and_said_so(llama_server_url: str) -> None:
    # Why the dialect is chosen per endpoint: llama-cpp-python takes json_object + schema only,
    # and refuses OpenAI's json_schema with a 500. The operator is told which setting to change.
    classifier = _classifier(llama_server_url, schema="json_schema")
    try:
        with pytest.raises(ModelUnavailable, match="set schema=json_object"):
            await classifier.classify(ClassificationRequest(await _policy(), _message(3, "hi"), Effort.LOW))
    finally:
        await classifier.aclose()


async def test_messages_become_cases_through_the_openai_backend(
    llama_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured as an operator would: the settings pick the backend.
    monkeypatch.setenv("MODBOT_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server_url)
    monkeypatch.setenv("MODBOT_OPENAI_SCHEMA", "json_object")
    monkeypatch.setenv("MODBOT_MODEL", DEFAULT_MODEL_NAME)
    monkeypatch.setenv("MODBOT_MODEL_CONCURRENCY", "2")
    monkeypatch.setenv("MODBOT_MODEL_TIMEOUT", "180")
    monkeypatch.setenv("MODBOT_MODEL_MAX_TOKENS", str(MAX_TOKENS))
    monkeypatch.setenv("MODBOT_MODEL_TEMPERATURE", str(TEMPERATURE))
    classifier = build_classifier(ModbotSettings(), RetryPolicy(max_attempts=2, initial_seconds=0.1, max_seconds=0.5))
    recorder = CallRecorder()
    classifier.pool.observer = recorder
    store = await SqliteStore.open(tmp_path / "modbot.db")
    sink = _RecordingSink()
    pipeline = ModerationPipeline(store, classifier, {"test": sink}, workers=2)
    try:
        policy = await _policy(store)
        start = datetime.now(UTC) - timedelta(minutes=1)
        texts = ["gg everyone, that last round was close", "@Mia nobody wants you here, just leave"]
        await pipeline.start()
        for n, text in enumerate(texts, start=1):
            assert await pipeline.submit(_message(n, text, start + timedelta(seconds=n)))
        await asyncio.wait_for(pipeline.drain(), timeout=300)
        rows = await store.fetchall("SELECT id FROM cases ORDER BY message_id")
        assert len(rows) == 2 and await store.queue_counts() == {"done": 2}
        for (case_id,) in rows:
            case = await store.cases.get(case_id)
            assert case is not None
            [verdict] = case.verdicts
            # The verdict is the backend's and must be valid. What the case becomes is the
            # judge's rule on top: a violation citing no rule of the policy (the tiny model,
            # sampling, can answer so) goes to human review.
            assert_valid_verdict(verdict, policy.name)
            assert verdict.status is VerdictStatus.DECIDED and verdict.policy_version == policy.version
            assert case.status in (CaseStatus.CLEAN, CaseStatus.OPEN, CaseStatus.NEEDS_REVIEW), case.status
            if case.status is CaseStatus.CLEAN:
                assert case.effects == ()
            else:  # flagged for the moderators, and the sink ran it
                assert case.effects and all(e.outcome is EffectOutcome.DONE for e in case.effects)
        assert [c.result for c in recorder.calls] == ["ok", "ok"]
    finally:
        await pipeline.stop()
        await classifier.aclose()
        await store.close()


def test_the_server_renders_the_prompt_as_the_ollama_stand_in_does() -> None:
    """llama-cpp-python's hf-tokenizer-config format and the in-process fake see one prompt."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from tests.fakes.llama_ollama import GEMMA3_TEMPLATE
    from tests.realmodel.llama_server import GEMMA3_SERVER_TEMPLATE

    chat = [{"role": "system", "content": "POLICY"}, {"role": "user", "content": "a message"}]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    in_process = env.from_string(GEMMA3_TEMPLATE).render(messages=chat, bos_token="<bos>", add_generation_prompt=True)
    # The server's format appends a blank assistant message instead of add_generation_prompt.
    blank = {"role": "assistant", "content": ""}
    served = env.from_string(GEMMA3_SERVER_TEMPLATE).render(messages=[*chat, blank], bos_token="<bos>")
    assert served == in_process == "<bos><start_of_turn>user\nPOLICY\n\na message<end_of_turn>\n<start_of_turn>model\n"
