"""The running bot observed: `modbot run` serves /healthz and /metrics fed by the app it runs.

A real `modbot run` subprocess against a fake Ollama on loopback is scraped while it
decides messages and while the model is away; the launcher is also run in this process
with a platform whose connection the test switches off; the app's services feed the
counters they own (appeals), and a classifier that reports its own calls is not counted
twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters import launcher
from bot.app import ModbotApp
from bot.bootstrap import bootstrap
from bot.classifier import ClassificationRequest
from bot.domain import Effect, EffectContext, EffectKind, EffectOutcome, EffectResult, Effort, Policy, Verdict
from bot.observability.metrics import InstrumentedClassifier, InstrumentedSink, ModbotMetrics, endpoint_label
from bot.observability.server import ObservabilityServer
from bot.observability.wiring import connection_flag, health_checks, observability_endpoint
from bot.settings import ModbotSettings
from bot.workflow import Actor
from tests.fakes import platform as fakechat
from tests.fakes.ollama_fake import FakeOllama, Reply
from tests.helpers import REPO, RecordingSink, ScriptedClassifier, add_policy, make_message, run_modbot

POLICY_SERVER = "s1"


def sample(exposition: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels} in the exposition")


def has_sample(exposition: str, name: str, **labels: str) -> bool:
    try:
        sample(exposition, name, **labels)
    except AssertionError:
        return False
    return True


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def until(what: str, probe: Any, timeout: float = 30.0) -> Any:
    """Poll `probe` (async, returning a value or None) until it gives a value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await probe()
        if value is not None:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- a real `modbot run`


@dataclass
class RunningBot:
    proc: asyncio.subprocess.Process
    url: str
    stderr: Path
    decided: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, message_id: str, text: str, **extra: Any) -> None:
        line = {"id": message_id, "server": POLICY_SERVER, "channel": "c1", "author": f"a-{message_id}", "text": text}
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({**line, **extra}) + "\n").encode())
        await self.proc.stdin.drain()

    async def read_decisions(self, count: int) -> None:
        assert self.proc.stdout is not None
        while len(self.decided) < count:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
            assert line, f"the bot ended early:\n{self.log()}"
            self.decided.append(json.loads(line))

    def log(self) -> str:
        return self.stderr.read_text()

    async def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.stdin.wait_closed()

    async def metrics(self) -> str:
        status, body = await get(self.url + "/metrics")
        assert status == 200
        return body

    async def health(self) -> tuple[int, dict[str, Any]]:
        status, body = await get(self.url + "/healthz")
        return status, json.loads(body)


@asynccontextmanager
async def modbot_run(env: dict[str, str], port: int, stderr: Path) -> AsyncIterator[RunningBot]:
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.console.cli",
            "run",
            cwd=REPO,
            env={**os.environ, **env, "MODBOT_HTTP_PORT": str(port)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    bot = RunningBot(proc, f"http://127.0.0.1:{port}", stderr)

    async def listening() -> bool | None:
        assert proc.returncode is None, bot.log()
        try:
            status, _ = await get(bot.url + "/livez")
        except aiohttp.ClientConnectionError:
            return None
        return status == 200 or None

    try:
        await until("the endpoint to listen", listening)
        yield bot
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)


@pytest.mark.slow
async def test_modbot_run_serves_health_and_metrics_that_follow_its_work(tmp_path: Path, free_port: int) -> None:
    ollama = await FakeOllama().start()
    env = {
        "OLLAMA_HOST": ollama.host,
        "MODBOT_DB": str(tmp_path / "run.db"),
        "MODBOT_LOG_FORMAT": "json",
    }
    try:
        code, _, err = await run_modbot(
            "policy", "install", "harassment", "-s", POLICY_SERVER, "-a", "o", "--admin", env=env
        )
        assert code == 0, err
        async with modbot_run(env, free_port, tmp_path / "stderr.log") as bot:
            status, report = await bot.health()
            assert status == 200, report
            assert set(report["checks"]) == {"model", "database"}  # the console has no connection to check
            before = await bot.metrics()
            assert sample(before, "modbot_messages_total", outcome="classified") == 0

            await bot.send("m1", "hello there, how was your day")
            await bot.send("m2", "you idiot")
            await bot.send("m3", "beep boop", author_is_bot=True)
            await bot.read_decisions(3)

            after = await bot.metrics()
            endpoint = endpoint_label(ollama.host)
            assert sample(after, "modbot_messages_total", outcome="classified") == 2
            assert sample(after, "modbot_messages_total", outcome="skipped") == 1
            assert sample(after, "modbot_model_calls_total", endpoint=endpoint, result="ok") == ollama.calls == 2
            assert sample(after, "modbot_model_latency_seconds_count", effort="low", endpoint=endpoint) == 2
            assert sample(after, "modbot_model_tokens_total", direction="in") == 2 * Reply("").prompt_eval_count
            assert sample(after, "modbot_model_tokens_total", direction="out") == 2 * Reply("").eval_count
            assert sample(after, "modbot_model_endpoint_up", endpoint=endpoint) == 1
            assert sample(after, "modbot_effects_total", kind="flag", result="done") == 1
            assert sample(after, "modbot_queue_depth") == 0
            assert sample(after, "modbot_queue_oldest_age_seconds") == 0

            # The model server goes away: /healthz says so, and a message waits in the queue.
            await ollama.stop()

            async def failing() -> dict[str, Any] | None:
                status, report = await bot.health()
                return report if status == 503 else None

            report = await until("/healthz to fail", failing)
            assert not report["checks"]["model"]["ok"] and "unreachable" in report["checks"]["model"]["problem"]
            assert report["checks"]["database"]["ok"]
            await bot.send("m4", "a message while the model is away")

            async def waiting() -> str | None:
                body = await bot.metrics()
                return body if sample(body, "modbot_queue_oldest_age_seconds") > 0 else None

            body = await until("the queue to show a waiting message", waiting)
            assert sample(body, "modbot_queue_depth") == 1
            # The /healthz probe marks the endpoint down while the call waits to be retried.
            assert sample(body, "modbot_model_endpoint_up", endpoint=endpoint) == 0

            # It comes back: /healthz passes again, and the waiting message is decided.
            ollama = await FakeOllama().start(port=ollama.port)

            async def passing() -> bool | None:
                status, _ = await bot.health()
                return status == 200 or None

            await until("/healthz to pass again", passing)
            await bot.read_decisions(4)
            body = await bot.metrics()
            assert sample(body, "modbot_queue_depth") == 0
            assert sample(body, "modbot_messages_total", outcome="classified") == 3
            assert sample(body, "modbot_model_endpoint_up", endpoint=endpoint) == 1
            await bot.close_stdin()  # the end of stdin, its only source: the bot stops
            assert await asyncio.wait_for(bot.proc.wait(), 30) == 0, bot.log()
    finally:
        await ollama.stop()


# ---------------------------------------------------------------- the launcher, in this process


@pytest.fixture
def fake_platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(
        launcher, "PLATFORMS", (*launcher.PLATFORMS, launcher.PlatformEntry(fakechat.NAME, "tests.fakes.platform"))
    )
    fakechat.inbox = asyncio.Queue()
    fakechat.connected.clear()
    yield
    fakechat.inbox = None


async def test_a_platform_that_loses_its_connection_fails_healthz_and_its_effects_are_counted(
    fake_platform: None, tmp_path: Path, fake_ollama: FakeOllama, free_port: int
) -> None:
    db = tmp_path / "run.db"
    settings = ModbotSettings(db=db, ollama_host=fake_ollama.host, workers=2, http_port=free_port)
    seeded = await bootstrap(settings, run_jobs=False)
    await add_policy(seeded.store, "w1", platform=fakechat.NAME)
    await seeded.aclose()
    stop = asyncio.Event()
    running = asyncio.create_task(launcher.run(settings, environ={fakechat.TOKEN: "t"}, stop=stop))
    url = f"http://127.0.0.1:{free_port}"
    try:

        async def healthy() -> dict[str, Any] | None:
            try:
                status, body = await get(url + "/healthz")
            except aiohttp.ClientConnectionError:
                return None
            return json.loads(body) if status == 200 else None

        report = await until("/healthz to pass", healthy)
        assert set(report["checks"]) == {"model", "database", "adapter:fakechat"}
        assert fakechat.inbox is not None
        await fakechat.inbox.put(make_message("m1", "you idiot", platform=fakechat.NAME, server="w1"))
        (chat,) = fakechat.connected

        async def flagged() -> str | None:
            _, body = await get(url + "/metrics")
            return body if sample(body, "modbot_effects_total", kind="flag", result="done") == 1 else None

        body = await until("the flag to be counted", flagged)
        assert [e.kind for _, e in chat.adapter.executed] == [EffectKind.FLAG]  # counted once, carried out once
        assert sample(body, "modbot_adapter_connected", platform=fakechat.NAME) == 1

        chat.connected = False

        async def failing() -> dict[str, Any] | None:
            status, body = await get(url + "/healthz")
            return json.loads(body) if status == 503 else None

        report = await until("/healthz to fail", failing)
        assert report["checks"]["adapter:fakechat"]["problem"] == "fakechat adapter is not connected"
        assert report["checks"]["model"]["ok"] and report["checks"]["database"]["ok"]
        _, body = await get(url + "/metrics")
        assert sample(body, "modbot_adapter_connected", platform=fakechat.NAME) == 0
    finally:
        stop.set()
        assert await asyncio.wait_for(running, 10) == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(url + "/livez")  # the endpoint stopped with the bot


async def test_a_port_in_use_stops_the_start_and_leaves_nothing_open(tmp_path: Path, free_port: int) -> None:
    settings = ModbotSettings(db=tmp_path / "busy.db", http_port=free_port)
    metrics = ModbotMetrics(process_metrics=False)
    adapter = ClosingAdapter()
    app = await bootstrap(
        settings, {"console": adapter}, classifier=ScriptedClassifier(), run_jobs=False, metrics=metrics
    )
    app.endpoint = observability_endpoint(app, metrics, settings, {})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        with pytest.raises(OSError):
            async with app:
                raise AssertionError("the app must not run without its endpoint")
    assert adapter.closed  # the adapters and the store were closed on the way out


# ---------------------------------------------------------------- what the app's parts feed


@dataclass
class ClosingAdapter(RecordingSink):
    closed: bool = False

    async def aclose(self) -> None:
        self.closed = True


async def test_appeals_are_counted_once_filed_and_once_decided(tmp_path: Path) -> None:
    metrics = ModbotMetrics(process_metrics=False)
    settings = ModbotSettings(db=tmp_path / "app.db", workers=1)
    app = await bootstrap(
        settings, {"console": RecordingSink()}, classifier=ScriptedClassifier(), run_jobs=False, metrics=metrics
    )
    admin = Actor(id="admin", platform="console", server_id="s1", is_admin=True)
    author = Actor(id="u1", platform="console", server_id="s1")
    await add_policy(app.store, "s1", text="# H\n\n## VIOLATES\n- HB1.a: insults\n")
    async with app:
        await app.pipeline.submit(make_message("m1", "you idiot"))
        await app.pipeline.submit(make_message("m2", "you idiot again", author="u1"))
        await app.pipeline.drain()
        first, second = sorted(await app.reviews.open_cases(admin), key=lambda c: c.message.message_id)
        await app.appeals.file(first.id, author, "I was quoting someone")
        await app.appeals.file(second.id, author, "context matters")
        await app.appeals.uphold(first.id, admin)
        await app.appeals.overturn(second.id, admin)
        text = metrics.exposition()[0].decode()
    assert sample(text, "modbot_appeals_total", outcome="filed") == 2
    assert sample(text, "modbot_appeals_total", outcome="upheld") == 1
    assert sample(text, "modbot_appeals_total", outcome="overturned") == 1
    # Each effect of the cases and the decisions went through the counted sink.
    assert sample(text, "modbot_effects_total", kind="flag", result="done") == 2
    assert sample(text, "modbot_messages_total", outcome="classified") == 2


@dataclass
class SelfReportingClassifier(ScriptedClassifier):
    """A classifier that reports each call to its observer, as the multi-endpoint one does."""

    reports_model_calls = True
    observer: Any = None

    async def classify(self, request: ClassificationRequest) -> Verdict:
        verdict = await super().classify(request)
        self.observer.endpoint_health("gpu-a:8000", True)
        self.observer.model_call(_Call("gpu-a:8000", request.effort.value, "timeout", 30.0))
        self.observer.model_call(_Call("gpu-b:8000", request.effort.value, "ok", 1.25, 300, 40))
        return verdict


@dataclass(frozen=True)
class _Call:
    endpoint: str
    effort: str
    result: str
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0


async def test_a_classifier_that_reports_its_own_calls_is_not_counted_twice(tmp_path: Path) -> None:
    metrics = ModbotMetrics(process_metrics=False)
    classifier = SelfReportingClassifier(observer=metrics)
    assert metrics.instrument_classifier(classifier, "http://unused:11434") is classifier
    assert isinstance(
        metrics.instrument_classifier(ScriptedClassifier(), "http://ollama:11434"), InstrumentedClassifier
    )
    policy = Policy(server_id="s1", name="harassment", version=1, text="# H\n")
    await classifier.classify(ClassificationRequest(policy, make_message(), Effort.MEDIUM))
    text = metrics.exposition()[0].decode()
    assert sample(text, "modbot_model_calls_total", endpoint="gpu-a:8000", result="timeout") == 1
    assert sample(text, "modbot_model_calls_total", endpoint="gpu-b:8000", result="ok") == 1
    assert not has_sample(text, "modbot_model_calls_total", endpoint="http://unused:11434")
    # Only an answer is latency: the timed-out call's 30 s would read as a slow model.
    assert sample(text, "modbot_model_latency_seconds_count", effort="medium", endpoint="gpu-b:8000") == 1
    assert not has_sample(text, "modbot_model_latency_seconds_count", effort="medium", endpoint="gpu-a:8000")
    assert sample(text, "modbot_model_tokens_total", direction="in") == 300
    assert sample(text, "modbot_model_endpoint_up", endpoint="gpu-a:8000") == 1


async def test_the_counted_sink_stands_in_for_the_adapter_it_wraps() -> None:
    @dataclass
    class Adapter(RecordingSink):
        connected: bool = True
        posted: list[str] = field(default_factory=list)

        async def post(self, server: Any, notice: Any) -> EffectResult:
            self.posted.append(notice)
            return EffectResult(outcome=EffectOutcome.DONE)

    adapter = Adapter()
    wrapped = InstrumentedSink(adapter, ModbotMetrics(process_metrics=False))
    assert await wrapped.post(None, "a notice") == EffectResult(outcome=EffectOutcome.DONE)  # type: ignore[attr-defined]
    assert adapter.posted == ["a notice"]
    assert wrapped.connected is True  # type: ignore[attr-defined]
    adapter.connected = False
    assert wrapped.connected is False  # type: ignore[attr-defined]
    # What the adapter lacks, the wrapper lacks: the router's getattr(..., None) still works.
    assert getattr(InstrumentedSink(RecordingSink(), ModbotMetrics(process_metrics=False)), "post", None) is None


def test_a_platform_connection_is_read_on_the_running_platform_or_its_adapter() -> None:
    @dataclass
    class Adapter:
        connected: bool = True

    @dataclass
    class Running:
        adapter: Any

    @dataclass
    class RunningWithFlag:
        adapter: Any
        connected: bool = False

    adapter = Adapter()
    flag = connection_flag(Running(adapter))
    assert flag is not None and flag() is True
    adapter.connected = False
    assert flag() is False
    on_platform = connection_flag(RunningWithFlag(Adapter(connected=True)))
    assert on_platform is not None and on_platform() is False  # the platform's own flag first
    assert connection_flag(Running(RecordingSink())) is None  # nothing to check (the console)


async def test_a_platform_health_coroutine_is_its_check(tmp_path: Path) -> None:
    @dataclass
    class Running:
        adapter: Any
        problem: str | None = None

        async def health(self) -> str | None:
            return self.problem

    metrics = ModbotMetrics(process_metrics=False)
    settings = ModbotSettings(db=tmp_path / "h.db")
    app: ModbotApp = await bootstrap(settings, classifier=ScriptedClassifier(), run_jobs=False, metrics=metrics)
    try:
        running = Running(RecordingSink(), problem="gateway resuming")
        checks = {c.name: c for c in health_checks(app, metrics, {"chat": running})}
        assert set(checks) == {"database", "adapter:chat"}  # no probe: an admin app's model is not checked
        assert await checks["adapter:chat"].check() == "gateway resuming"
        assert await checks["database"].check() is None
        async with ObservabilityServer(metrics, list(checks.values())) as server:
            status, body = await get(f"http://127.0.0.1:{server.port}/healthz")
        assert status == 503 and "gateway resuming" in body
    finally:
        await app.aclose()


async def test_the_effect_of_a_failing_sink_is_counted_as_an_error_and_recorded_failed(tmp_path: Path) -> None:
    @dataclass
    class Broken(RecordingSink):
        async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
            raise RuntimeError("the platform fell over")

    metrics = ModbotMetrics(process_metrics=False)
    app = await bootstrap(
        ModbotSettings(db=tmp_path / "b.db", workers=1),
        {"console": Broken()},
        classifier=ScriptedClassifier(),
        run_jobs=False,
        metrics=metrics,
    )
    await add_policy(app.store, "s1", text="# H\n\n## VIOLATES\n- HB1.a: insults\n")
    async with app:
        await app.pipeline.submit(make_message("m1", "you idiot"))
        await app.pipeline.drain()
        case = await app.store.cases.for_message("console", "s1", "m1")
    assert case is not None and [r.outcome for r in case.effects] == [EffectOutcome.FAILED]
    text = metrics.exposition()[0].decode()
    assert sample(text, "modbot_effects_total", kind="flag", result="error") == 1
