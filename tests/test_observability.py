"""Metrics, health checks, the /healthz and /metrics endpoint, and structured logs.

The endpoint is driven over loopback with aiohttp's client; metrics come from a real
pipeline, the real ollama client and a fake Ollama; logs are captured from a real
`modbot run` subprocess.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import pytest
import pytest_asyncio
import structlog
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.bootstrap import bootstrap
from bot.classifier import ClassificationRequest, ModelUnavailable, OllamaClassifier, RetryPolicy
from bot.domain import (
    Case,
    CaseStatus,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    Effort,
    Policy,
    ServerSettings,
    Verdict,
    VerdictStatus,
    utcnow,
)
from bot.observability.health import HealthCheck, run_checks
from bot.observability.logs import REDACTED, bound_ids, configure_logging, current_ids, secrets_from_environment
from bot.observability.metrics import (
    AppealOutcome,
    InstrumentedClassifier,
    InstrumentedSink,
    MessageOutcome,
    ModbotMetrics,
    endpoint_label,
    outcome_of,
)
from bot.observability.server import ObservabilityServer
from bot.pipeline import ModerationPipeline
from bot.settings import ModbotSettings
from bot.store.health import database_problem
from bot.store.ports import QueueBacklog
from bot.store.sqlite import SqliteStore
from bot.workflow import Actor
from bot.workflow.health import OllamaProbe
from tests.fakes.ollama_fake import FakeOllama, Reply
from tests.helpers import REPO, RecordingSink, ScriptedClassifier, add_policy, make_message, run_modbot

MODEL = "gpt-oss-safeguard:20b"
POLICY = "# Harassment\n\n## VIOLATES\n- HB1.a: insults aimed at a person\n\n## SAFE\n- HB0.a: banter\n"


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition; fails if it is absent."""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels} in the exposition")


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def base_url(server: ObservabilityServer) -> str:
    return f"http://127.0.0.1:{server.port}"


# ---------------------------------------------------------------- metrics from a real run


async def test_a_pipeline_run_shows_in_the_metrics(store: SqliteStore, fake_ollama: FakeOllama) -> None:
    await add_policy(store, "s1", "harassment", POLICY)
    metrics = ModbotMetrics()
    ollama = OllamaClassifier(fake_ollama.host, MODEL)
    classifier = InstrumentedClassifier(ollama, metrics, endpoint=fake_ollama.host)
    recording = RecordingSink()
    pipeline = ModerationPipeline(store, classifier, {"console": InstrumentedSink(recording, metrics)}, workers=4)
    pipeline.observers.append(metrics.observe_case)
    metrics.track_queue(store.queue_backlog)
    await pipeline.start()
    try:
        await pipeline.submit(make_message("m1", "hello there"))
        await pipeline.drain()
        await pipeline.submit(make_message("m2", "you idiot"))
        await pipeline.drain()
        await pipeline.submit(make_message("m3", "you idiot", author="u2"))  # a repeat: reused
        await pipeline.submit(make_message("m4", "beep", is_bot=True))  # skipped
        await pipeline.drain()
    finally:
        await pipeline.stop()
        await classifier.aclose()

    async with ObservabilityServer(metrics, [], port=0) as server:
        status, content_type, body = await get(base_url(server) + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    endpoint = endpoint_label(fake_ollama.host)
    assert sample(body, "modbot_messages_total", outcome="classified") == 2
    assert sample(body, "modbot_messages_total", outcome="reused") == 1
    assert sample(body, "modbot_messages_total", outcome="skipped") == 1
    assert sample(body, "modbot_messages_total", outcome="failed") == 0
    assert sample(body, "modbot_model_calls_total", endpoint=endpoint, result="ok") == fake_ollama.calls == 2
    assert sample(body, "modbot_model_latency_seconds_count", effort="low", endpoint=endpoint) == 2
    assert sample(body, "modbot_model_tokens_total", direction="in") == 2 * Reply("").prompt_eval_count
    assert sample(body, "modbot_model_tokens_total", direction="out") == 2 * Reply("").eval_count
    assert sample(body, "modbot_model_endpoint_up", endpoint=endpoint) == 1
    flags = sum(1 for _, effect in recording.executed if effect.kind is EffectKind.FLAG)
    assert flags == 1  # the violation; its repeat joins that flag instead of posting (bot.raids)
    assert sample(body, "modbot_effects_total", kind="flag", result="done") == flags
    assert sample(body, "modbot_queue_depth") == 0
    assert sample(body, "process_resident_memory_bytes") > 0


async def test_an_unreachable_model_counts_as_unavailable_and_marks_the_endpoint_down(unused_port: int) -> None:
    metrics = ModbotMetrics(process_metrics=False)
    host = f"http://modbot:hunter2@127.0.0.1:{unused_port}/"
    ollama = OllamaClassifier(host, MODEL, retry=RetryPolicy(max_attempts=1))
    classifier = InstrumentedClassifier(ollama, metrics, endpoint=host)
    metrics.set_endpoint_up(classifier.endpoint, True)
    policy = Policy(server_id="s1", name="harassment", version=1, text=POLICY)
    request = ClassificationRequest(policy, make_message(), Effort.LOW)
    with pytest.raises(ModelUnavailable):
        await classifier.classify(request)
    await classifier.aclose()
    body, _ = metrics.exposition()
    text = body.decode()
    assert classifier.endpoint == f"http://127.0.0.1:{unused_port}"
    assert "hunter2" not in text  # credentials in the URL never become a label
    assert sample(text, "modbot_model_calls_total", endpoint=classifier.endpoint, result="unavailable") == 1
    assert sample(text, "modbot_model_endpoint_up", endpoint=classifier.endpoint) == 0


async def test_the_sink_wrapper_counts_results_and_errors() -> None:
    metrics = ModbotMetrics(process_metrics=False)
    case = Case(id="C1", message=make_message(), status=CaseStatus.OPEN)
    context = EffectContext(case=case, settings=ServerSettings(platform="console", server_id="s1"))

    class Unsupporting:
        platform = "console"
        supported_effects = frozenset({EffectKind.FLAG})

        async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
            if effect.kind is EffectKind.DELETE:
                raise RuntimeError("the platform's API fell over")
            return EffectResult(outcome=EffectOutcome.UNSUPPORTED, detail="no timeouts here")

    sink = InstrumentedSink(Unsupporting(), metrics)
    assert sink.platform == "console" and sink.supported_effects == frozenset({EffectKind.FLAG})
    await sink.execute(Effect(kind=EffectKind.TIMEOUT), context)
    with pytest.raises(RuntimeError):
        await sink.execute(Effect(kind=EffectKind.DELETE), context)
    text = metrics.exposition()[0].decode()
    assert sample(text, "modbot_effects_total", kind="timeout", result="unsupported") == 1
    assert sample(text, "modbot_effects_total", kind="delete", result="error") == 1
    assert sample(text, "modbot_effects_total", kind="delete", result="done") == 0


def _verdict(**update: Any) -> Verdict:
    return Verdict(policy="harassment", policy_version=1).model_copy(update=update)


@pytest.mark.parametrize(
    ("status", "verdicts", "reason", "expected"),
    [
        (CaseStatus.SKIPPED, (), "author is a bot", MessageOutcome.SKIPPED),
        (CaseStatus.CLEAN, (_verdict(),), None, MessageOutcome.CLASSIFIED),
        (CaseStatus.OPEN, (_verdict(violation=True),), None, MessageOutcome.CLASSIFIED),
        (CaseStatus.OPEN, (_verdict(violation=True, reused=True),), None, MessageOutcome.REUSED),
        (CaseStatus.NEEDS_REVIEW, (_verdict(status=VerdictStatus.NEEDS_REVIEW),), None, MessageOutcome.FAILED),
        (CaseStatus.NEEDS_REVIEW, (), "internal error: RuntimeError: x", MessageOutcome.FAILED),
    ],
)
def test_each_case_has_one_message_outcome(
    status: CaseStatus, verdicts: tuple[Verdict, ...], reason: str | None, expected: MessageOutcome
) -> None:
    case = Case(id="C1", message=make_message(), status=status, verdicts=verdicts, skipped_reason=reason)
    assert outcome_of(case) is expected


async def test_appeals_adapters_the_queue_and_the_drain_estimate_are_exposed() -> None:
    metrics = ModbotMetrics(process_metrics=False)
    connected = {"discord": True}
    metrics.track_adapter("discord", lambda: connected["discord"])
    metrics.track_adapter("slack", lambda: 1 / 0 == 0)  # a flag that raises reads as disconnected
    metrics.track_backlog_drain(lambda: 42.0)
    now = utcnow()

    async def backlog() -> QueueBacklog:
        return QueueBacklog(depth=7, oldest_enqueued_at=now - timedelta(seconds=12.5))

    metrics.track_queue(backlog, clock=lambda: now)
    metrics.observe_appeal(AppealOutcome.FILED)
    metrics.observe_appeal("filed")  # the appeals service's hook passes the word
    metrics.observe_appeal(AppealOutcome.OVERTURNED)
    text = metrics.exposition()[0].decode()
    assert sample(text, "modbot_adapter_connected", platform="discord") == 1
    assert sample(text, "modbot_adapter_connected", platform="slack") == 0
    assert sample(text, "modbot_queue_depth") == 0  # asked of the store only when refreshed
    connected["discord"] = False
    await metrics.refresh()
    text = metrics.exposition()[0].decode()
    assert sample(text, "modbot_adapter_connected", platform="discord") == 0
    assert sample(text, "modbot_backlog_drain_seconds") == 42
    assert sample(text, "modbot_queue_depth") == 7
    assert sample(text, "modbot_queue_oldest_age_seconds") == 12.5
    assert sample(text, "modbot_appeals_total", outcome="filed") == 2
    assert sample(text, "modbot_appeals_total", outcome="overturned") == 1
    assert sample(text, "modbot_appeals_total", outcome="upheld") == 0


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("http://ollama:11434", "http://ollama:11434"),
        ("http://ollama:11434/", "http://ollama:11434"),
        ("ollama:11434", "http://ollama:11434"),
        ("https://user:secret@vllm.internal/v1?key=abc", "https://vllm.internal/v1"),
    ],
)
def test_an_endpoint_label_never_carries_credentials(url: str, label: str) -> None:
    assert endpoint_label(url) == label


# ---------------------------------------------------------------- /healthz, /livez, /metrics


def fixed(problem: str | None) -> HealthCheck:
    async def check() -> str | None:
        return problem

    return HealthCheck("fixed", check)


async def test_healthz_is_200_when_every_check_passes_and_503_naming_the_one_that_fails(
    store: SqliteStore, fake_ollama: FakeOllama
) -> None:
    probe = OllamaProbe(fake_ollama.host, MODEL)
    connected = {"discord": True}
    checks = [
        HealthCheck("model", probe.check),
        HealthCheck("database", lambda: database_problem(store)),
        HealthCheck.adapter("discord", lambda: connected["discord"]),
    ]
    try:
        async with ObservabilityServer(ModbotMetrics(process_metrics=False), checks, cache_seconds=0) as server:
            status, content_type, body = await get(base_url(server) + "/healthz")
            assert status == 200 and content_type.startswith("application/json"), body
            report = json.loads(body)
            assert report["status"] == "ok"
            assert {name: r["ok"] for name, r in report["checks"].items()} == {
                "model": True,
                "database": True,
                "adapter:discord": True,
            }

            connected["discord"] = False
            status, _, body = await get(base_url(server) + "/healthz")
            assert status == 503
            assert json.loads(body)["checks"]["adapter:discord"]["problem"] == "discord adapter is not connected"

            connected["discord"] = True
            await fake_ollama.stop()
            status, _, body = await get(base_url(server) + "/healthz")
            report = json.loads(body)
            assert status == 503 and report["status"] == "failing"
            assert "unreachable" in report["checks"]["model"]["problem"]
            assert report["checks"]["database"]["ok"] and report["checks"]["adapter:discord"]["ok"]
    finally:
        await probe.aclose()


async def test_the_database_check_fails_on_a_read_only_database(tmp_path: Path) -> None:
    writable = await SqliteStore.open(tmp_path / "modbot.db")
    try:
        assert await database_problem(writable) is None
        assert "nearly full" in (await database_problem(writable, min_free_bytes=2**62) or "")
    finally:
        await writable.close()
    # Root ignores file modes, so read-only is asked of SQLite itself.
    conn = await aiosqlite.connect(f"file:{tmp_path / 'modbot.db'}?mode=ro", uri=True, isolation_level=None)
    read_only = SqliteStore(conn, tmp_path / "modbot.db", now=utcnow)
    try:
        problem = await database_problem(read_only)
    finally:
        await conn.close()
    assert problem is not None and "not writable" in problem and "readonly" in problem


async def test_a_check_that_hangs_or_raises_is_a_failing_check_not_a_hanging_endpoint() -> None:
    async def hangs() -> str | None:
        await asyncio.Event().wait()
        return None

    async def raises() -> str | None:
        raise RuntimeError("probe exploded")

    report = await run_checks([HealthCheck("hangs", hangs, timeout_seconds=0.05), HealthCheck("raises", raises)])
    problems = {r.name: r.problem for r in report.results}
    assert not report.ok
    assert problems == {"hangs": "no answer within 0.05 s", "raises": "check failed: RuntimeError: probe exploded"}


async def test_concurrent_probes_share_one_round_of_checks() -> None:
    runs = 0
    release = asyncio.Event()

    async def slow() -> str | None:
        nonlocal runs
        runs += 1
        await release.wait()
        return None

    async with ObservabilityServer(ModbotMetrics(process_metrics=False), [HealthCheck("slow", slow)]) as server:
        probes = [asyncio.create_task(get(base_url(server) + "/healthz")) for _ in range(5)]
        while runs == 0:
            await asyncio.sleep(0.01)
        release.set()
        statuses = [status for status, _, _ in await asyncio.gather(*probes)]
    assert statuses == [200] * 5 and runs == 1


async def test_livez_and_openmetrics_negotiation() -> None:
    async with ObservabilityServer(ModbotMetrics(process_metrics=False), [fixed("model down")]) as server:
        assert (await get(base_url(server) + "/livez"))[0] == 200  # liveness ignores the model
        assert (await get(base_url(server) + "/healthz"))[0] == 503
        status, content_type, body = await get(
            base_url(server) + "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert status == 200 and content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF") and "modbot_messages_total" in body


def test_health_check_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        ObservabilityServer(ModbotMetrics(process_metrics=False), [fixed(None), fixed(None)])


def test_the_endpoint_is_off_unless_a_port_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODBOT_HTTP_PORT", raising=False)
    assert ModbotSettings().http_port is None
    monkeypatch.setenv("MODBOT_HTTP_PORT", "")
    assert ModbotSettings().http_port is None
    monkeypatch.setenv("MODBOT_HTTP_PORT", "9464")
    settings = ModbotSettings()
    assert settings.http_port == 9464 and settings.http_host == "127.0.0.1"


# ---------------------------------------------------------------- the container's healthcheck command


async def healthcheck(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.observability.healthcheck",
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_the_healthcheck_command_asks_healthz_when_the_port_is_set(unused_port: int) -> None:
    problem: dict[str, str | None] = {"now": None}

    async def check() -> str | None:
        return problem["now"]

    metrics = ModbotMetrics(process_metrics=False)
    async with ObservabilityServer(metrics, [HealthCheck("model", check)], host="0.0.0.0", cache_seconds=0) as server:
        env = {"MODBOT_HTTP_PORT": str(server.port), "MODBOT_HTTP_HOST": "0.0.0.0"}
        code, out = await healthcheck(env)
        assert code == 0 and json.loads(out)["status"] == "ok"
        problem["now"] = "model server unreachable"
        code, out = await healthcheck(env)
        assert code == 1 and "model server unreachable" in out
    code, out = await healthcheck({"MODBOT_HTTP_PORT": str(unused_port)})
    assert code == 1 and "did not answer" in out


async def test_the_healthcheck_command_without_a_port_checks_the_database(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "modbot.db")
    try:
        code, out = await healthcheck({"MODBOT_DB": str(tmp_path / "modbot.db")})
    finally:
        await store.close()
    assert code == 0 and "writable" in out
    code, out = await healthcheck({"MODBOT_DB": str(tmp_path / "missing.db")})
    assert code == 1 and "does not exist" in out


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- logs


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Configure the product's logging into a buffer; put the test runner's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


async def test_json_lines_carry_the_bound_ids_into_tasks_and_not_beyond(captured_logs: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=captured_logs, secrets=[])
    log = logging.getLogger("modbot.test")

    async def model_call() -> None:
        logging.getLogger("bot.classifier").warning("malformed model output; asking once more")

    with bound_ids(platform="discord", server_id="g1", message_id="m1", queue_id=7):
        log.info("deciding")
        with bound_ids(case_id="C1"):
            structlog.get_logger("modbot.structured").info("case recorded", effects=2)
            assert current_ids() == {
                "platform": "discord",
                "server_id": "g1",
                "message_id": "m1",
                "case_id": "C1",
                "queue_id": 7,
            }
        await asyncio.gather(asyncio.create_task(model_call()))
    log.info("idle")

    deciding, recorded, model, idle = json_lines(captured_logs)
    assert list(deciding)[:4] == ["timestamp", "level", "logger", "event"]
    assert deciding["timestamp"].endswith("Z") and deciding["level"] == "info"
    assert {k: deciding[k] for k in ("message_id", "queue_id", "server_id")} == {
        "message_id": "m1",
        "queue_id": 7,
        "server_id": "g1",
    }
    assert "case_id" not in deciding
    assert recorded["case_id"] == "C1" and recorded["effects"] == 2 and recorded["logger"] == "modbot.structured"
    assert model["message_id"] == "m1" and model["level"] == "warning" and "case_id" not in model
    assert not {"message_id", "case_id", "queue_id"} & set(idle)


@dataclass
class TalkativeSink(RecordingSink):
    """A platform sink that logs as an adapter does, and whose platform API fails at deletes."""

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        logging.getLogger("adapters.talkative").info("carrying out %s", effect.kind.value)
        if effect.kind is EffectKind.DELETE:
            raise RuntimeError("the platform's API fell over")
        return await super().execute(effect, context)


class SecondOpinionsFail(ScriptedClassifier):
    async def classify(self, request: ClassificationRequest) -> Verdict:
        if request.effort is Effort.HIGH:
            raise RuntimeError("the model server fell over")
        return await super().classify(request)


async def test_lines_about_a_case_carry_its_ids_from_the_effect_runner_the_sinks_and_the_appeals(
    captured_logs: io.StringIO, tmp_path: Path
) -> None:
    configure_logging("INFO", "json", stream=captured_logs, secrets=[])
    app = await bootstrap(
        ModbotSettings(db=tmp_path / "ids.db", workers=1),
        {"console": TalkativeSink()},
        classifier=SecondOpinionsFail(),
        run_jobs=False,
    )
    await add_policy(app.store, "s1", text=POLICY)
    admin = Actor(id="admin", platform="console", server_id="s1", is_admin=True)
    async with app:
        await app.pipeline.submit(make_message("m1", "you idiot", channel="c7", author="u1"))
        await app.pipeline.drain()
        (case,) = await app.reviews.open_cases(admin)
        await app.reviews.confirm(case.id, admin, delete=True)  # the delete fails in the sink
        await app.appeals.file(case.id, Actor(id="u1", platform="console", server_id="s1"), "it was a joke")
        await app.pipeline.drain()  # the second opinion is queued work: it runs (and fails) here
    about_case = [
        line
        for line in json_lines(captured_logs)
        if line["logger"].startswith(("adapters.", "bot.effect_runner", "bot.workflow"))
    ]
    events = [line["event"] for line in about_case]
    assert "carrying out flag" in events and "carrying out delete" in events, events
    assert any(e.startswith("effect delete of case") for e in events), events
    assert any(e.startswith("second opinion for case") for e in events), events
    expected = {"platform": "console", "server_id": "s1", "channel_id": "c7", "message_id": "m1", "case_id": case.id}
    for line in about_case:
        assert {k: line.get(k) for k in expected} == expected, line
    assert "you idiot" not in captured_logs.getvalue() and "it was a joke" not in captured_logs.getvalue()


def test_console_lines_are_readable_and_carry_the_ids(captured_logs: io.StringIO) -> None:
    configure_logging("INFO", "console", stream=captured_logs, secrets=[])
    with bound_ids(case_id="C9", message_id="m9"):
        logging.getLogger("modbot.test").info("effect flag done")
    line = captured_logs.getvalue().strip()
    assert "[info" in line and "effect flag done" in line and "case_id=C9" in line and "message_id=m9" in line
    assert not line.startswith("{")


def test_configuring_twice_never_duplicates_lines_and_the_level_applies(captured_logs: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=io.StringIO(), secrets=[])
    configure_logging("WARNING", "json", stream=captured_logs, secrets=[])
    logging.getLogger("modbot.test").info("hidden")
    logging.getLogger("modbot.test").warning("shown")
    assert [line["event"] for line in json_lines(captured_logs)] == ["shown"]


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_secrets_are_redacted_in_messages_and_tracebacks(
    captured_logs: io.StringIO, log_format: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "discord_token"
    token_file.write_text("file-held-discord-secret-1234\n", encoding="utf-8")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret-abcdef123456")
    monkeypatch.setenv("DISCORD_TOKEN_FILE", str(token_file))
    configure_logging("INFO", log_format, stream=captured_logs)  # type: ignore[arg-type]
    log = logging.getLogger("adapters.test")
    log.warning("signature check used %s", "signing-secret-abcdef123456")
    log.warning("connecting with file-held-discord-secret-1234")
    log.warning("slack said no to xoxb-2222222222-3333333333-abcdefABCDEF and xapp-1-A01-123-abcdef")
    log.warning("authorization: Bearer sk-proj-abcdefghijklmnopqrstu")

    discord_token = ".".join(["MTAxMDAwMDAwMDAwMDAwMDAw", "GaBcDe", "x" * 30])  # shaped like a bot token

    def handler(message_text: str) -> None:
        # The traceback shows this line's source, never the values: the token is a variable.
        raise RuntimeError(f"gateway refused {discord_token} for {message_text[:0]}")

    private_text = "a chat message that must stay private"  # a local of the frames below
    try:
        handler(private_text)
    except RuntimeError:
        log.exception("adapter crashed")
    output = captured_logs.getvalue()
    for secret in (
        "signing-secret-abcdef123456",
        "file-held-discord-secret-1234",
        "xoxb-2222222222",
        "xapp-1-A01",
        "sk-proj-abcdefghijklmnopqrstu",
        "GaBcDe",
        # structlog's default traceback renderer shows local variables: ours must not.
        "a chat message that must stay private",
    ):
        assert secret not in output, secret
    assert output.count(REDACTED) >= 6 and "adapter crashed" in output and "RuntimeError" in output


def test_secrets_come_from_token_secret_and_key_variables_only(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("from-a-file-123456\n", encoding="utf-8")
    environ = {
        "DISCORD_TOKEN": "discord-token-123456",
        "SLACK_APP_TOKEN": "short",  # too short to redact safely
        "OPENAI_API_KEY": "sk-local-123456789",
        "SLACK_BOT_TOKEN_FILE": str(tmp_path / "f"),
        "SLACK_SIGNING_SECRET_FILE": str(tmp_path / "missing"),
        "MODBOT_MODEL": "gpt-oss-safeguard:20b",
        "OLLAMA_HOST": "http://ollama:11434",
    }
    assert secrets_from_environment(environ) == {"discord-token-123456", "sk-local-123456789", "from-a-file-123456"}


# ---------------------------------------------------------------- a full run's logs


TEXTS = (
    "hello everyone, lovely weather today",
    "you absolute idiot, nobody wants you here",
    "my phone number is 555-0100, call me",
    "you absolute idiot, nobody wants you here",  # a repeat
    "this answer will come back malformed",
)
DISCORD_TEST_TOKEN = "MTExMTExMTExMTExMTExMTEx.Gq1w2e.abcdefghijklmnopqrstuvwxyz0123"
SLACK_TEST_TOKEN = "xoxb-1111111111-2222222222-testtokenvalue"
OPENAI_TEST_KEY = "sk-test-openai-key-0123456789"


@pytest_asyncio.fixture
async def flaky_ollama() -> AsyncIterator[FakeOllama]:
    """A fake Ollama that fails once with a 500 and answers one message with prose."""
    fake = await FakeOllama().start()

    def respond(request: dict[str, Any]) -> Reply:
        if "malformed" in json.dumps(request):
            return Reply("I think the message 'this answer will come back malformed' is fine.")
        return fake.default_reply(request)

    fake.responder = respond
    fake.rec.inject("POST", "/api/chat", lambda: web.json_response({"error": "runner crashed"}, status=500))
    yield fake
    await fake.stop()


# Lines written while one message is handled: each must say which message (and case) it is about.
PER_MESSAGE_LOGGERS = ("bot.classifier", "bot.pipeline", "bot.effect_runner", "bot.workflow.appeals", "adapters.")


@pytest.mark.slow
async def test_a_full_run_logs_json_with_no_message_text_and_no_secret(
    tmp_path: Path, flaky_ollama: FakeOllama, unused_port: int
) -> None:
    env = {
        "OLLAMA_HOST": flaky_ollama.host,
        "MODBOT_DB": str(tmp_path / "run.db"),
        "MODBOT_LOG_FORMAT": "json",
        "MODBOT_LOG_LEVEL": "INFO",
        "MODBOT_HTTP_PORT": str(unused_port),  # as in the image: the endpoint and its metrics are on
        # A Discord-shaped secret under a *_TOKEN name the launcher does not read: DISCORD_TOKEN
        # would start the Discord adapter (tests/discord/test_run.py runs that, token unlogged).
        "MODBOT_TEST_DISCORD_TOKEN": DISCORD_TEST_TOKEN,
        "SLACK_BOT_TOKEN": SLACK_TEST_TOKEN,
        "OPENAI_API_KEY": OPENAI_TEST_KEY,
    }
    code, _, err = await run_modbot("policy", "install", "harassment", "-s", "s1", "-a", "owner", "--admin", env=env)
    assert code == 0, err
    stdin = "".join(
        json.dumps({"id": f"m{i}", "server": "s1", "channel": "c1", "author": f"u{i}", "text": text}) + "\n"
        for i, text in enumerate(TEXTS)
    ).encode()
    code, out, err = await run_modbot("run", env=env, stdin=stdin)
    assert code == 0, err
    assert len(out.splitlines()) == len(TEXTS)  # every message decided

    # The console adapter prints the effects it would carry out on stderr; every other line
    # is a log line, and JSON, libraries' lines included.
    effects = [line for line in err.splitlines() if line.startswith("[effect] ")]
    assert effects, err
    lines = [json.loads(line) for line in err.splitlines() if line not in effects]
    levels = {line["level"] for line in lines}
    assert "info" in levels and "warning" in levels, err  # the 500 and the malformed answer were logged
    assert all({"timestamp", "level", "logger", "event"} <= set(line) for line in lines)
    per_message = [line for line in lines if line["logger"].startswith(PER_MESSAGE_LOGGERS)]
    assert len(per_message) >= 3, err  # the 500 retried, the malformed answer twice
    for line in per_message:
        assert line.get("message_id") in {f"m{i}" for i in range(len(TEXTS))} and line.get("server_id") == "s1", line
    for secret in (*TEXTS, DISCORD_TEST_TOKEN, SLACK_TEST_TOKEN, OPENAI_TEST_KEY, "Gq1w2e", "testtokenvalue"):
        assert secret not in err, f"{secret!r} leaked into the logs"
    # Fragments too: a log line quoting part of a message is a leak all the same.
    for text in TEXTS:
        for fragment in ("lovely weather", "absolute idiot", "555-0100", "come back malformed"):
            if fragment in text:
                assert fragment not in err, f"{fragment!r} leaked into the logs"


async def test_model_call_log_lines_carry_the_message_ids(
    captured_logs: io.StringIO, store: SqliteStore, flaky_ollama: FakeOllama
) -> None:
    configure_logging("INFO", "json", stream=captured_logs, secrets=[])
    await add_policy(store, "s1", "harassment", POLICY)
    metrics = ModbotMetrics(process_metrics=False)
    ollama = OllamaClassifier(flaky_ollama.host, MODEL, retry=RetryPolicy(initial_seconds=0.01, max_seconds=0.02))
    classifier = InstrumentedClassifier(ollama, metrics, endpoint=flaky_ollama.host)
    pipeline = ModerationPipeline(store, classifier, {"console": RecordingSink()}, workers=2)
    await pipeline.start()
    try:
        await pipeline.submit(make_message("m-bad", "this answer will come back malformed", server="s1"))
        await pipeline.drain()
    finally:
        await pipeline.stop()
        await classifier.aclose()
    model_lines = [line for line in json_lines(captured_logs) if line["logger"].startswith("bot.classifier")]
    assert len(model_lines) >= 3  # the 500 retried, then the malformed answer twice
    assert all(line["message_id"] == "m-bad" and line["server_id"] == "s1" for line in model_lines)
    assert "come back malformed" not in captured_logs.getvalue()
    text = metrics.exposition()[0].decode()
    endpoint = endpoint_label(flaky_ollama.host)
    assert sample(text, "modbot_model_calls_total", endpoint=endpoint, result="needs_review") == 1
