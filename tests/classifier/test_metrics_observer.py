"""The classifier's call reports reach the metrics: each call by endpoint and result, tokens, endpoint health."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.classifier import ClassificationRequest, RetryPolicy
from bot.classifier.factory import build_classifier
from bot.domain import Effort, Policy, VerdictStatus
from bot.observability.metrics import InstrumentedClassifier, ModbotMetrics
from bot.settings import ModbotSettings
from tests.fakes.model_server import Reply, verdict_json
from tests.fakes.ollama_fake import FakeOllama
from tests.fakes.openai_fake import FakeOpenAI
from tests.helpers import make_message

POLICY = Policy(server_id="s1", name="p", version=1, text="# P\n## VIOLATES (1)\n- P1.a: bad\n")


def samples(metrics: ModbotMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.exposition()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def test_every_call_is_counted_by_the_endpoint_that_served_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ollama = await FakeOllama().start()
    vllm = await FakeOpenAI(latency=0.05).start()
    answers = iter(["not json", verdict_json(0)])
    ollama.responder = lambda req: Reply(next(answers), prompt_eval_count=100, eval_count=10)
    monkeypatch.setenv(
        "MODBOT_MODEL_ENDPOINTS",
        f"ollama {ollama.host} gpt-oss-safeguard:20b bound=1 name=gpu-a; "
        f"openai {vllm.host}/v1 openai/gpt-oss-safeguard-20b bound=1 name=vllm-b",
    )
    metrics = ModbotMetrics(process_metrics=False)
    c = build_classifier(ModbotSettings(), RetryPolicy(initial_seconds=0.01, max_seconds=0.02), observer=metrics)
    try:
        request = ClassificationRequest(POLICY, make_message(text="hello"), Effort.MEDIUM)
        # The policy's home is gpu-a: a malformed answer, then a good one.
        verdict = await c.classify(request)
        assert verdict.status is VerdictStatus.DECIDED
        await ollama.kill()
        # gpu-a is gone: the call fails there and goes to vllm-b.
        assert (await asyncio.wait_for(c.classify(request), 10)).status is VerdictStatus.DECIDED
    finally:
        await c.aclose()
        await vllm.stop()
    seen = samples(metrics)
    calls = "modbot_model_calls_total"
    assert seen[(calls, (("endpoint", "gpu-a"), ("result", "malformed")))] == 1
    assert seen[(calls, (("endpoint", "gpu-a"), ("result", "ok")))] == 1
    assert seen[(calls, (("endpoint", "gpu-a"), ("result", "unavailable")))] == 1
    assert seen[(calls, (("endpoint", "vllm-b"), ("result", "ok")))] == 1
    assert seen[("modbot_model_endpoint_up", (("endpoint", "gpu-a"),))] == 0
    assert seen[("modbot_model_endpoint_up", (("endpoint", "vllm-b"),))] == 1
    assert seen[("modbot_model_tokens_total", (("direction", "in"),))] == 100 + 100 + 120
    assert seen[("modbot_model_latency_seconds_count", (("effort", "medium"), ("endpoint", "vllm-b")))] == 1


async def test_a_stuck_call_is_counted_as_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = await FakeOllama(hang=True).start()
    monkeypatch.setenv("OLLAMA_HOST", fake.host)
    monkeypatch.setenv("MODBOT_MODEL_TIMEOUT", "0.2")
    monkeypatch.setenv("MODBOT_MODEL_TIMEOUT_RETRIES", "0")
    metrics = ModbotMetrics(process_metrics=False)
    c = build_classifier(ModbotSettings(), observer=metrics)
    try:
        verdict = await c.classify(ClassificationRequest(POLICY, make_message(text="hi"), Effort.LOW))
    finally:
        await c.aclose()
        await fake.stop()
    assert verdict.status is VerdictStatus.NEEDS_REVIEW
    key = ("modbot_model_calls_total", (("endpoint", f"http://127.0.0.1:{fake.port}"), ("result", "timeout")))
    assert samples(metrics)[key] == 1


def test_a_classifier_that_reports_its_calls_is_not_counted_twice() -> None:
    metrics = ModbotMetrics(process_metrics=False)
    reporting = build_classifier(ModbotSettings(), observer=metrics)
    silent = build_classifier(ModbotSettings())
    assert reporting.reports_model_calls and not silent.reports_model_calls
    assert metrics.instrument_classifier(reporting, "http://x") is reporting
    assert isinstance(metrics.instrument_classifier(silent, "http://x"), InstrumentedClassifier)
