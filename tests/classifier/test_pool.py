"""Several model endpoints: affinity, spill-over, the bound on each, failover and probing.

Two (or three) fake servers on loopback, behind the real clients; the pool is built from
MODBOT_MODEL_ENDPOINTS where the format is part of what is tested.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio

from bot.classifier import ClassificationRequest, ModelClassifier, ModelUnavailable, RetryPolicy
from bot.classifier.ollama_backend import OllamaBackend
from bot.classifier.openai_backend import OpenAIBackend
from bot.classifier.pool import Endpoint, EndpointPool
from bot.domain import Effort, Policy, VerdictStatus
from tests.fakes.model_server import FakeModelServer, Reply, content_of, verdict_json
from tests.fakes.ollama_fake import FakeOllama
from tests.fakes.openai_fake import FakeOpenAI
from tests.helpers import make_message

FAST = RetryPolicy(max_attempts=None, initial_seconds=0.01, max_seconds=0.05)
POLICIES = [
    Policy(server_id="s1", name=f"p{n}", version=1, text=f"# Policy {n}\n## VIOLATES (1)\n- P{n}.a: bad\n")
    for n in range(1, 5)
]


def request(policy: Policy = POLICIES[0], text: str = "hello") -> ClassificationRequest:
    return ClassificationRequest(policy, make_message(text=text), Effort.LOW)


def classifier(
    fakes: Sequence[FakeModelServer], bounds: Sequence[int], *, timeout: float = 5.0, retry: RetryPolicy = FAST
) -> ModelClassifier:
    endpoints = []
    for fake, bound in zip(fakes, bounds, strict=True):
        backend: OllamaBackend | OpenAIBackend
        if isinstance(fake, FakeOpenAI):
            backend = OpenAIBackend(f"{fake.host}/v1", "openai/gpt-oss-safeguard-20b", timeout=timeout)
        else:
            backend = OllamaBackend(fake.host, "gpt-oss-safeguard:20b", timeout=timeout)
        endpoints.append(Endpoint(backend, bound=bound, timeout=timeout))
    return ModelClassifier(EndpointPool(endpoints, probe_seconds=(0.05, 0.2)), retry=retry, timeout_retries=1)


def served_by(fake: FakeModelServer) -> Counter[str]:
    """Which policies each fake served, by the policy's title line."""
    path = "/api/chat" if isinstance(fake, FakeOllama) else "/v1/chat/completions"
    return Counter(r.json["messages"][0]["content"].split("\n")[0] for r in fake.rec.find("POST", path))


@pytest_asyncio.fixture
async def two() -> AsyncIterator[tuple[FakeModelServer, FakeModelServer]]:
    a = await FakeOllama(latency=0.02).start()
    b = await FakeOpenAI(latency=0.02).start()
    yield a, b
    for fake in (a, b):
        await fake.stop()


async def test_a_policy_stays_on_its_endpoint_while_it_keeps_up(two: tuple[FakeModelServer, FakeModelServer]) -> None:
    a, b = two
    c = classifier([a, b], [2, 2])
    try:
        for round_ in range(5):  # one call at a time: every endpoint keeps up
            for policy in POLICIES:
                await c.classify(request(policy, f"text {round_}"))
    finally:
        await c.aclose()
    by_a, by_b = served_by(a), served_by(b)
    # Each policy was served by one endpoint only (its prefix stays cached there) ...
    assert not set(by_a) & set(by_b), (by_a, by_b)
    assert sum(by_a.values()) + sum(by_b.values()) == 20
    # ... and the policies were shared out between the endpoints.
    assert len(by_a) == 2 and len(by_b) == 2


async def test_a_backlog_spills_to_the_other_endpoint_and_each_bound_holds(
    two: tuple[FakeModelServer, FakeModelServer],
) -> None:
    a, b = two
    a.latency, b.latency = 0.03, 0.09  # b is three times slower
    c = classifier([a, b], [2, 3])
    try:
        verdicts = await asyncio.gather(*(c.classify(request(POLICIES[0], f"t{i}")) for i in range(60)))
    finally:
        await c.aclose()
    assert all(v.status is VerdictStatus.DECIDED for v in verdicts)
    assert a.answered + b.answered == 60  # nothing lost, nothing asked twice
    assert a.answered > 0 and b.answered > 0  # one policy, yet both endpoints worked
    assert a.answered > b.answered  # the faster endpoint took more
    assert a.peak_in_flight == 2 and b.peak_in_flight == 3  # full, and never more than the bound
    assert c.peak_in_flight == 5


async def test_an_endpoint_that_dies_mid_run_loses_nothing_and_doubles_nothing(
    two: tuple[FakeModelServer, FakeModelServer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = two
    a.hang = True  # a's calls are all still in flight when it dies
    caplog.set_level(logging.WARNING)
    c = classifier([a, b], [3, 3])
    try:
        tasks = [asyncio.create_task(c.classify(request(p, f"t{i}"))) for i in range(6) for p in POLICIES]
        await a.rec.wait_for("POST", "/api/chat", count=3)
        await a.kill()
        verdicts = await asyncio.wait_for(asyncio.gather(*tasks), 20)
        health = c.pool.health()
    finally:
        await c.aclose()
    assert all(v.status is VerdictStatus.DECIDED for v in verdicts) and len(verdicts) == 24
    assert a.answered == 0 and b.answered == 24  # a's in-flight calls were answered by b, once each
    assert health[f"http://127.0.0.1:{a.port}"] is not None  # a is down ...
    assert health[f"http://127.0.0.1:{b.port}/v1"] is None
    assert f"model endpoint http://127.0.0.1:{a.port} is down" in caplog.text  # ... and the operator was told


async def test_a_down_endpoint_is_probed_and_used_again_when_it_recovers(
    two: tuple[FakeModelServer, FakeModelServer],
) -> None:
    a, b = two
    port = a.port
    await a.stop()
    c = classifier([a, b], [1, 1])
    try:
        for i in range(4):  # a refuses: everything goes to b, with no error
            assert (await c.classify(request(POLICIES[i % 2], f"t{i}"))).status is VerdictStatus.DECIDED
        name = f"http://127.0.0.1:{port}"
        assert c.pool.health()[name] is not None
        revived = await FakeOllama(latency=0.05).start(port)
        try:
            async with asyncio.timeout(5):
                while c.pool.health()[name] is not None:  # the probe finds it
                    await asyncio.sleep(0.02)
            # Two calls at once with a bound of one each: the revived endpoint takes one.
            await asyncio.gather(*(c.classify(request(POLICIES[2], f"u{i}")) for i in range(2)))
            assert revived.answered >= 1
            assert revived.rec.find("GET", "/api/tags")  # brought back by a probe, not by a call
        finally:
            await revived.stop()
    finally:
        await c.aclose()


async def test_a_stuck_call_is_asked_again_on_another_endpoint(two: tuple[FakeModelServer, FakeModelServer]) -> None:
    a, b = two
    a.hang = True
    c = classifier([a, b], [1, 1], timeout=0.3)
    try:
        # The first policy's home is a (the first endpoint); it hangs, b answers.
        verdict = await asyncio.wait_for(c.classify(request(POLICIES[0], "you idiot")), 10)
    finally:
        await c.aclose()
    assert verdict.status is VerdictStatus.DECIDED and verdict.violation
    assert len(a.rec.find("POST", "/api/chat")) == 1 and b.answered == 1
    await a.wait_for_disconnects(1)


async def test_a_model_missing_on_one_endpoint_sends_its_work_to_the_other(
    two: tuple[FakeModelServer, FakeModelServer],
) -> None:
    a, b = two
    assert isinstance(a, FakeOllama)
    a.missing_models = {"gpt-oss-safeguard:20b"}
    c = classifier([a, b], [1, 1])
    try:
        verdicts = [await c.classify(request(p)) for p in POLICIES]
    finally:
        await c.aclose()
    assert all(v.status is VerdictStatus.DECIDED for v in verdicts) and b.answered == 4
    assert "ollama pull" in str(c.pool.health()[f"http://127.0.0.1:{a.port}"])


async def test_with_every_endpoint_down_the_message_waits(two: tuple[FakeModelServer, FakeModelServer]) -> None:
    a, b = two
    await a.stop()
    await b.stop()
    c = classifier([a, b], [1, 1], retry=RetryPolicy(3, 0.01, 0.02))
    try:
        with pytest.raises(ModelUnavailable, match="unreachable"):
            await c.classify(request())
        assert await c.check() is not None
    finally:
        await c.aclose()


async def test_a_caller_that_gives_up_while_waiting_frees_its_place(
    two: tuple[FakeModelServer, FakeModelServer],
) -> None:
    a, b = two
    release = asyncio.Event()

    async def held(req: dict) -> Reply:  # type: ignore[type-arg]
        await release.wait()
        return Reply(verdict_json(0))

    a.responder = b.responder = held
    c = classifier([a, b], [1, 1])
    try:
        running = [asyncio.create_task(c.classify(request(p))) for p in POLICIES[:2]]
        waiting = [asyncio.create_task(c.classify(request(p))) for p in POLICIES[2:]]
        await a.rec.wait_for("POST", "/api/chat")
        await b.rec.wait_for("POST", "/v1/chat/completions")
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        release.set()
        await asyncio.gather(*running)
        assert c.in_flight == 0
        a.responder = b.responder = None
        verdicts = await asyncio.gather(*(c.classify(request(p, "idiot")) for p in POLICIES))
    finally:
        await c.aclose()
    assert all(v.violation for v in verdicts)
    assert a.answered + b.answered == 6  # the two cancelled calls never reached a server


async def test_the_fake_answers_by_content(two: tuple[FakeModelServer, FakeModelServer]) -> None:
    # Guards the helpers above: the fakes judge what the bot sent, not a fixed answer.
    a, _ = two
    c = classifier([a], [1])
    try:
        assert (await c.classify(request(text="you idiot"))).violation
        assert not (await c.classify(request(text="hello"))).violation
    finally:
        await c.aclose()
    assert content_of(a.rec.find("POST", "/api/chat")[0].json)["content"]["text"] == "you idiot"
