"""MODBOT_MODEL_ENDPOINTS: the documented format, its errors, and the classifier the settings build."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.classifier import ClassificationRequest, RetryPolicy
from bot.classifier.endpoints import EndpointSpec, InvalidEndpoints, parse_endpoints
from bot.classifier.factory import build_classifier, describe_endpoints, endpoint_specs, ollama_url
from bot.classifier.ollama_backend import OllamaBackend
from bot.classifier.openai_backend import OpenAIBackend
from bot.domain import Effort, Policy
from bot.settings import ModbotSettings
from tests.fakes.ollama_fake import FakeOllama
from tests.fakes.openai_fake import FakeOpenAI
from tests.helpers import make_message

EXAMPLE = (
    "ollama http://gpu1:11434 gpt-oss-safeguard:20b bound=3; "
    "openai http://gpu2:8000/v1/ openai/gpt-oss-safeguard-20b bound=32 timeout=120 name=vllm-a\n"
    "openai http://cpu1:8080/v1 gpt-oss-safeguard:20b schema=json_object api_key_env=CPU1_KEY max_tokens=4096"
)


def test_the_documented_example_reads_as_written() -> None:
    a, b, c = parse_endpoints(EXAMPLE, default_bound=2)
    assert a == EndpointSpec(backend="ollama", url="http://gpu1:11434", model="gpt-oss-safeguard:20b", bound=3)
    assert (b.backend, b.url, b.model, b.bound, b.timeout, b.name, b.schema_dialect) == (
        "openai",
        "http://gpu2:8000/v1",
        "openai/gpt-oss-safeguard-20b",
        32,
        120.0,
        "vllm-a",
        "json_schema",
    )
    assert (c.bound, c.schema_dialect, c.api_key_env, c.timeout) == (2, "json_object", "CPU1_KEY", None)
    assert (a.max_tokens, c.max_tokens) == (None, 4096)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "lists no endpoint"),
        (" ; \n ", "lists no endpoint"),
        ("ollama http://a:1", "expected `BACKEND URL MODEL"),
        ("ollama bound=2 http://a:1 m", "expected `BACKEND URL MODEL"),
        ("vllm http://a:1 m", "endpoint 1 .*backend"),
        ("ollama a:11434 m", "url: .*http://"),
        ("ollama http://a:1 m bound=0", "bound: .*greater than or equal to 1"),
        ("ollama http://a:1 m bound=many", "bound: .*integer"),
        ("ollama http://a:1 m colour=blue", "unknown key 'colour'"),
        ("ollama http://a:1 m schema=json_object", "schema apply to openai endpoints only"),
        ("openai http://a:1/v1 m schema=xml", "schema: .*json_schema"),
        ("openai http://a:1/v1 m api_key_env=sk-123", "api_key_env"),
        ("ollama http://a:1 m; ollama http://a:1 m", "endpoint 2: http://a:1 is listed twice"),
        ("ollama http://a:1 m; openai http://b:1/v1 m timeout=-3", "endpoint 2 .*timeout"),
        ("ollama http://a:1 m max_tokens=8", "max_tokens: .*greater than or equal to 16"),
        ("ollama http://a:1 m temperature=3", "temperature: .*less than or equal to 2"),
    ],
)
def test_a_wrong_list_is_refused_naming_the_endpoint_and_the_field(text: str, says: str) -> None:
    with pytest.raises(InvalidEndpoints, match=says):
        parse_endpoints(text, default_bound=2)


def test_two_endpoints_on_one_host_and_port_need_names() -> None:
    specs = parse_endpoints("ollama http://a:1 m1 name=first; ollama http://a:1 m2 name=second", default_bound=1)
    assert [s.name for s in specs] == ["first", "second"]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("localhost:8080", "http://localhost:8080"),
        ("http://gpu:11434/", "http://gpu:11434"),
        ("https://ollama.example", "https://ollama.example"),
        ("[::1]", "http://[::1]:11434"),
        ("[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_ollama_host_is_read_as_ollama_reads_it(host: str, url: str) -> None:
    assert ollama_url(host) == url


def test_the_single_endpoint_settings_are_used_when_no_list_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu7:11434")
    monkeypatch.setenv("MODBOT_MODEL_CONCURRENCY", "5")
    [spec] = endpoint_specs(ModbotSettings())
    assert (spec.backend, spec.url, spec.bound) == ("ollama", "http://gpu7:11434", 5)
    monkeypatch.setenv("MODBOT_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://vllm:8000/v1")
    monkeypatch.setenv("MODBOT_OPENAI_SCHEMA", "json_object")
    [spec] = endpoint_specs(ModbotSettings())
    assert (spec.backend, spec.url, spec.schema_dialect, spec.bound) == (
        "openai",
        "http://vllm:8000/v1",
        "json_object",
        5,
    )


def test_the_start_up_line_says_where_the_model_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu7")
    assert describe_endpoints(ModbotSettings()) == "gpt-oss-safeguard:20b at http://gpu7:11434 (ollama)"
    monkeypatch.setenv("MODBOT_MODEL_ENDPOINTS", "ollama http://a:1 m1; openai http://b:2/v1 m2")
    assert describe_endpoints(ModbotSettings()) == "m1 at http://a:1 (ollama), m2 at http://b:2/v1 (openai)"


@pytest.mark.parametrize(
    ("url", "name", "shown"),
    [
        ("http://gpu1:11434", "http://gpu1:11434", "http://gpu1:11434"),
        ("https://user:s3cret@vllm.example/v1", "https://vllm.example/v1", "https://vllm.example/v1"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1", "http://[::1]:8000/v1"),
    ],
)
def test_an_endpoint_is_named_and_shown_without_credentials(url: str, name: str, shown: str) -> None:
    backend = OpenAIBackend(url, "m")
    assert (backend.name, backend.base_url) == (name, shown)
    assert "s3cret" not in describe_endpoints(ModbotSettings(model_endpoints=f"openai {url} m"))


def test_a_wrong_setting_is_refused_with_its_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODBOT_MODEL_TIMEOUT_RETRIES", "50")
    with pytest.raises(ValueError, match="model_timeout_retries"):
        ModbotSettings()


async def test_the_list_replaces_the_single_endpoint_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    ollama = await FakeOllama().start()
    vllm = await FakeOpenAI(api_key="sk-vllm").start()
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:1")  # ignored: the list wins
    monkeypatch.setenv("MODBOT_MODEL", "ignored")
    monkeypatch.setenv("VLLM_KEY", "sk-vllm")
    monkeypatch.setenv(
        "MODBOT_MODEL_ENDPOINTS",
        f"ollama {ollama.host} gpt-oss-safeguard:20b bound=1; "
        f"openai {vllm.host}/v1 openai/gpt-oss-safeguard-20b bound=2 api_key_env=VLLM_KEY name=vllm",
    )
    c = build_classifier(ModbotSettings(), RetryPolicy(initial_seconds=0.01, max_seconds=0.05))
    try:
        assert [type(e.backend) for e in c.pool.endpoints] == [OllamaBackend, OpenAIBackend]
        assert [(e.name, e.bound) for e in c.pool.endpoints] == [(f"http://127.0.0.1:{ollama.port}", 1), ("vllm", 2)]
        policy = Policy(server_id="s1", name="p", version=1, text="# P\n## VIOLATES (1)\n- P1.a: bad\n")
        requests = [ClassificationRequest(policy, make_message(text=f"idiot {i}"), Effort.LOW) for i in range(9)]
        verdicts = await asyncio.gather(*(c.classify(r) for r in requests))
        assert await c.check() is None
    finally:
        await c.aclose()
        await ollama.stop()
        await vllm.stop()
    assert all(v.violation for v in verdicts)
    assert ollama.answered + vllm.answered == 9 and ollama.answered and vllm.answered
    assert {v.model for v in verdicts} == {"gpt-oss-safeguard:20b", "openai/gpt-oss-safeguard-20b"}


async def test_a_token_ceiling_and_a_temperature_are_sent_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    ollama = await FakeOllama().start()
    vllm = await FakeOpenAI().start()
    both = f"ollama {ollama.host} gpt-oss-safeguard:20b; openai {vllm.host}/v1 openai/gpt-oss-safeguard-20b"
    policy = Policy(server_id="s1", name="p", version=1, text="# P\n")

    async def four_calls() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        # Four at once with a bound of 2 each: two at the policy's home, two spilled to the other.
        before = len(ollama.chat_requests()), len(vllm.chat_requests())
        c = build_classifier(ModbotSettings())
        try:
            request = ClassificationRequest(policy, make_message(text="hi"), Effort.LOW)
            await asyncio.gather(*(c.classify(request) for _ in range(4)))
        finally:
            await c.aclose()
        return ollama.chat_requests()[before[0] :], vllm.chat_requests()[before[1] :]

    try:
        monkeypatch.setenv("MODBOT_MODEL_ENDPOINTS", both)
        ollama_sent, vllm_sent = await four_calls()
        assert len(ollama_sent) == len(vllm_sent) == 2
        # No ceiling and the server's own temperature unless asked.
        assert all({"num_predict", "temperature"}.isdisjoint(r["options"]) for r in ollama_sent)
        assert all({"max_tokens", "temperature"}.isdisjoint(r) for r in vllm_sent)
        monkeypatch.setenv("MODBOT_MODEL_MAX_TOKENS", "2048")
        monkeypatch.setenv("MODBOT_MODEL_TEMPERATURE", "0")
        monkeypatch.setenv("MODBOT_MODEL_ENDPOINTS", both + " max_tokens=512 temperature=0.7")
        ollama_sent, vllm_sent = await four_calls()
        # The settings where the endpoint says nothing, the endpoint's own where it does.
        assert [(r["options"]["num_predict"], r["options"]["temperature"]) for r in ollama_sent] == [(2048, 0)] * 2
        assert [(r["max_tokens"], r["temperature"]) for r in vllm_sent] == [(512, 0.7)] * 2
    finally:
        await ollama.stop()
        await vllm.stop()
