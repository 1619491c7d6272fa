"""What operations cost: metrics and log ids per message, a scrape, a container healthcheck.

    python bench/observability.py [--messages N] [--runs R] [--json OUT]

1. Instrumentation overhead. bench/pipeline.py's burst run (real SqliteStore, real
   ModerationPipeline, an instant in-process classifier, an in-memory sink), once plain and
   once instrumented as the app wires it: InstrumentedClassifier and InstrumentedSink (metrics
   and bound log ids per call), the observe_case observer, track_queue, and the structured
   logging configured (JSON, to a null stream). Runs alternate, so both see the same machine.
   Limit: the plain run in the same round; the figures are instrumented / plain
   throughput, by wall time and by this process's CPU time per message (the CPU figure
   holds still when other processes share the machine; the wall figure does not).
   The same cost in isolation, which holds still on a shared machine: the microseconds the
   instrumentation adds to one message (a wrapped classify, a wrapped effect for one message
   in ten, the case observer), the best of several repeats, against the plain pipeline's
   CPU per message from part 1.
2. A scrape: GET /metrics over loopback with aiohttp's client, the registry holding the
   series of a busy bot (every effect kind x result, three endpoints, four efforts' worth
   of latency buckets); then the same with the queue's gauges read from a real store
   holding a backlog (--waiting open items beside --done finished ones), as `modbot run`
   does at every scrape. Limit: Prometheus' default scrape interval (15 s); the figure is
   the share of one core that scraping costs.
3. The container's HEALTHCHECK command against a live /healthz, as a fresh process. Limit:
   `python -c pass`, the interpreter's own start-up, in the same run.

Nothing here asserts speed; it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from bench.pipeline import (  # noqa: E402
    PLATFORM,
    POLICY_DIR,
    POLICY_FILES,
    SERVER,
    VIOLATION_EVERY,
    InstantClassifier,
    MemorySink,
    make_messages,
    open_store,
)
from bot.classifier import ClassificationRequest  # noqa: E402
from bot.domain import Case, CaseStatus, Effect, EffectContext, EffectKind, Effort, ServerSettings  # noqa: E402
from bot.observability.health import HealthCheck  # noqa: E402
from bot.observability.logs import configure_logging  # noqa: E402
from bot.observability.metrics import (  # noqa: E402
    EFFECT_RESULTS,
    InstrumentedClassifier,
    InstrumentedSink,
    MessageOutcome,
    ModbotMetrics,
    ModelCallResult,
)
from bot.observability.server import ObservabilityServer  # noqa: E402
from bot.pipeline import ModerationPipeline  # noqa: E402
from bot.policy_library import as_policy, load_policies  # noqa: E402
from bot.ports import Classifier, EffectSink  # noqa: E402
from bot.settings import ModbotSettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


async def burst(n: int, prefix: str, instrumented: bool) -> tuple[float, float]:
    """Every message submitted at once, until every case is decided: messages per second of
    wall time, and CPU microseconds per message (this process, all its threads)."""
    with tempfile.TemporaryDirectory(prefix="modbot-bench-") as tmp:
        store = await open_store(Path(tmp), policies=1)
        classifier: Classifier = InstantClassifier()
        sink: EffectSink = MemorySink()
        metrics = ModbotMetrics()
        if instrumented:
            classifier = InstrumentedClassifier(classifier, metrics, endpoint="http://ollama:11434")
            sink = InstrumentedSink(sink, metrics)
        pipeline = ModerationPipeline(store, classifier, {PLATFORM: sink}, workers=ModbotSettings().worker_count)
        decided = 0
        done = asyncio.get_running_loop().create_future()

        def count(_: object) -> None:
            nonlocal decided
            decided += 1
            if decided == n and not done.done():
                done.set_result(None)

        pipeline.observers.append(count)
        if instrumented:
            pipeline.observers.append(metrics.observe_case)
            metrics.track_queue(store.queue_backlog)
        await pipeline.start()
        messages = make_messages(n, prefix)
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        tasks = [asyncio.create_task(pipeline.submit(m)) for m in messages]
        await done
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        await asyncio.gather(*tasks)
        await pipeline.stop()
        await store.close()
    if instrumented:
        assert metrics.messages.labels(outcome="classified")._value.get() == n  # every case counted
    return n / wall, cpu / n * 1e6


async def overhead(n: int, runs: int) -> dict[str, Any]:
    configure_logging("INFO", "json", stream=io.StringIO(), secrets=[])
    await burst(min(n, 1000), "warm", instrumented=True)  # imports, first connections
    plain: list[tuple[float, float]] = []
    instrumented: list[tuple[float, float]] = []
    for i in range(runs):
        plain.append(await burst(n, f"p{i}", instrumented=False))
        instrumented.append(await burst(n, f"i{i}", instrumented=True))
    pairs = list(zip(instrumented, plain, strict=True))
    return {
        "messages": n,
        "runs": runs,
        "plain_msg_per_s": spread([p[0] for p in plain]),
        "instrumented_msg_per_s": spread([i[0] for i in instrumented]),
        "ratio_instrumented_to_plain_wall": spread([i[0] / p[0] for i, p in pairs]),
        # CPU per message holds still when other processes share the cores; wall time does not.
        "plain_cpu_us_per_msg": spread([p[1] for p in plain]),
        "instrumented_cpu_us_per_msg": spread([i[1] for i in instrumented]),
        "ratio_instrumented_to_plain_cpu": spread([p[1] / i[1] for i, p in pairs]),
    }


async def added_cost(loops: int, repeats: int) -> dict[str, float]:
    """Microseconds per message that the instrumentation adds, by direct timing."""
    policy = as_policy(load_policies([POLICY_DIR / POLICY_FILES[0]])[0], SERVER)
    message = make_messages(1, "cost")[0]
    request = ClassificationRequest(policy, message, Effort.LOW)
    metrics = ModbotMetrics()
    plain_classifier = InstantClassifier()
    wrapped_classifier = InstrumentedClassifier(plain_classifier, metrics, endpoint="http://ollama:11434")
    plain_sink = MemorySink()
    wrapped_sink = InstrumentedSink(plain_sink, metrics)
    verdict = await plain_classifier.classify(request)
    case = Case(id="C1", message=message, status=CaseStatus.CLEAN, verdicts=(verdict,))
    context = EffectContext(case=case, settings=ServerSettings(platform=PLATFORM, server_id=SERVER))
    flag = Effect(kind=EffectKind.FLAG)

    async def per_call(call: Callable[[], Awaitable[object]]) -> float:
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(loops):
                await call()
            best = min(best, (time.process_time() - started) / loops)
        return best * 1e6

    async def observe() -> None:
        metrics.observe_case(case)

    classify = await per_call(lambda: wrapped_classifier.classify(request)) - await per_call(
        lambda: plain_classifier.classify(request)
    )
    effect = await per_call(lambda: wrapped_sink.execute(flag, context)) - await per_call(
        lambda: plain_sink.execute(flag, context)
    )
    observer = await per_call(observe)
    return {
        "classify_us": classify,
        "effect_us": effect,
        "observe_case_us": observer,
        "per_message_us": classify + effect / VIOLATION_EVERY + observer,
    }


def busy_registry() -> ModbotMetrics:
    metrics = ModbotMetrics()
    for endpoint in ("http://vllm-a:8000/v1", "http://vllm-b:8000/v1", "http://ollama:11434"):
        for effort in Effort:
            for result in ModelCallResult:
                metrics.observe_model_call(
                    endpoint=endpoint, effort=effort, result=result, seconds=1.7, tokens_in=900, tokens_out=120
                )
    for kind in EffectKind:
        for result in EFFECT_RESULTS:
            metrics.observe_effect(kind, result)
    for outcome in MessageOutcome:
        metrics.observe_message(outcome)
    metrics.track_adapter("discord", lambda: True)
    metrics.track_adapter("slack", lambda: True)
    return metrics


async def backlog_store(directory: Path, waiting: int, done: int) -> SqliteStore:
    """A store whose queue holds `done` finished items (history) and `waiting` open ones."""
    store = await open_store(directory, policies=1)
    finished = make_messages(done, "done")
    ids = await asyncio.gather(*(store.enqueue(m) for m in finished))
    for queue_id in ids:
        assert queue_id is not None
        await store.finish_queue_item(queue_id)
    await asyncio.gather(*(store.enqueue(m) for m in make_messages(waiting, "waiting")))
    return store


async def timed_scrapes(metrics: ModbotMetrics, samples: int) -> tuple[list[float], bytes]:
    times: list[float] = []
    async with ObservabilityServer(metrics, []) as server, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{server.port}/metrics"
        for _ in range(samples + 5):
            started = time.perf_counter()
            async with session.get(url) as response:
                body = await response.read()
            times.append(time.perf_counter() - started)
    return times[5:], body  # the first requests open the connection


async def scrape(samples: int, waiting: int, done: int) -> dict[str, Any]:
    """A scrape of a busy registry, then the same with the queue's gauges asked of a store with a backlog."""
    interval = 15.0
    registry_only, body = await timed_scrapes(busy_registry(), samples)
    with tempfile.TemporaryDirectory(prefix="modbot-bench-") as tmp:
        store = await backlog_store(Path(tmp), waiting, done)
        try:
            started = time.perf_counter()
            backlog = await store.queue_backlog()
            query_ms = (time.perf_counter() - started) * 1000
            assert backlog.depth == waiting
            metrics = busy_registry()
            metrics.track_queue(store.queue_backlog)
            with_store, _ = await timed_scrapes(metrics, samples)
        finally:
            await store.close()
    return {
        "series_lines": sum(1 for line in body.decode().splitlines() if line and not line.startswith("#")),
        "bytes": len(body),
        "scrape_ms": spread([t * 1000 for t in registry_only]),
        "share_of_a_core_at_15s_interval": spread([t / interval for t in registry_only]),
        "queue_waiting": waiting,
        "queue_done": done,
        "first_backlog_query_ms": query_ms,
        "scrape_with_backlog_query_ms": spread([t * 1000 for t in with_store]),
        "share_of_a_core_at_15s_interval_with_query": spread([t / interval for t in with_store]),
    }


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


async def healthcheck(runs: int) -> dict[str, Any]:
    async def ok() -> str | None:
        return None

    async with ObservabilityServer(ModbotMetrics(), [HealthCheck("model", ok)]) as server:
        env = {"PATH": "/usr/bin:/bin", "MODBOT_HTTP_PORT": str(server.port)}
        cmd = [sys.executable, "-m", "bot.observability.healthcheck"]
        floor, check = [], []
        for _ in range(runs):
            floor.append(await asyncio.to_thread(wall, [sys.executable, "-c", "pass"], env))
            check.append(await asyncio.to_thread(wall, cmd, env))
    return {
        "runs": runs,
        "python_c_pass_ms": spread([t * 1000 for t in floor]),
        "healthcheck_ms": spread([t * 1000 for t in check]),
        "ratio_to_interpreter_start": spread([c / f for c, f in zip(check, floor, strict=True)]),
    }


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--waiting", type=int, default=24_000, help="open queue items for the scrape's query")
    parser.add_argument("--done", type=int, default=24_000, help="finished queue items (history) beside them")
    args = parser.parse_args()
    pipeline_run = await overhead(args.messages, args.runs)
    added = await added_cost(loops=20_000, repeats=args.runs)
    plain_cpu = pipeline_run["plain_cpu_us_per_msg"]["min"]
    added["plain_pipeline_cpu_us_per_msg"] = plain_cpu
    added["throughput_ratio"] = plain_cpu / (plain_cpu + added["per_message_us"])
    result = {
        "machine": machine(),
        "overhead": pipeline_run,
        "added_cost": added,
        "scrape": await scrape(200, args.waiting, args.done),
        "healthcheck": await healthcheck(args.runs * 2),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
