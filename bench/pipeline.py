"""Pipeline benchmark: throughput with an instant model, and model-slot busy fraction.

    python bench/pipeline.py [--messages N] [--quick] [--json OUT] [--part 1|2|all] [--profile OUT.prof]

Part 1 (throughput). The real SqliteStore (in a temporary directory) and the real
ModerationPipeline with the worker count ModbotSettings gives by default; an in-process
classifier that answers at once (one message in ten is a violation, so one case in ten
carries a flag effect); an in-memory effect sink. Every message is submitted by its own
task, as a gateway dispatches events: all at once ("burst": throughput), or at a fixed
rate ("paced": the latency a message gains, from the submit() call until its case is
decided and its effects are done, seen by a pipeline observer).
The ceiling measured in the same run is the store alone: the very SqliteStore calls the
pipeline makes for each message (enqueue, record_decision, the effect's intent and its
result), issued with full concurrency from prebuilt objects. The pipeline cannot be faster
than its own durable writes; the ratio says how much of that budget the rest costs.

Part 2 (model slots). The real OllamaClassifier (the real ollama client, over loopback)
against FakeOllama with N slots and a fixed latency, MODBOT_MODEL_CONCURRENCY = N; the
whole backlog is stored before the workers start. Busy fraction = fake.busy_seconds /
(slots x wall). The fake runs with max_queue=0, so a single request beyond its slots would
be answered 503 at once and counted. The limit measured in the same run: the round trip of
one call through the same client after 50 ms of idleness (what a slot waits, at best,
between two calls when the bound equals the slots). A second set of rows sets the bound to
N + 1 against a fake that queues at most one request (max_queue=1), as Ollama queues.

Speed goes in benchmarks, not timed tests: nothing here asserts speed; it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes lives beside bot/, outside the installed package
    sys.path.insert(0, str(REPO))

from bot.bootstrap import build_classifier  # noqa: E402
from bot.classifier import ClassificationRequest  # noqa: E402
from bot.domain import (  # noqa: E402
    Author,
    Case,
    CaseStatus,
    Confidence,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    EffectResult,
    Effort,
    Message,
    Verdict,
)
from bot.pipeline import ModerationPipeline, new_case_id  # noqa: E402
from bot.policy_format import rules_in  # noqa: E402
from bot.policy_library import as_policy, install_policies, load_policies  # noqa: E402
from bot.repeats import PolicyScope, RepeatMemory  # noqa: E402
from bot.sanitise import normalise_for_repeats  # noqa: E402
from bot.settings import ModbotSettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.text import RepeatKeys  # noqa: E402
from tests.fakes.ollama_fake import FakeOllama  # noqa: E402

PLATFORM = "bench"
SERVER = "srv-1"
POLICY_DIR = REPO / "policies"
POLICY_FILES = ("spam-scams.md", "harassment.md", "hate-speech.md")
CHANNELS = 20
AUTHORS = 500
VIOLATION_EVERY = 10  # one message in ten carries the bad word
MODEL_LATENCY = 0.05


# ---------------------------------------------------------------- fixtures


class InstantClassifier:
    """The Classifier port, answering at once: flags a text containing 'badword'."""

    def __init__(self) -> None:
        self.calls = 0

    async def classify(self, request: ClassificationRequest) -> Verdict:
        self.calls += 1
        bad = "badword" in request.message.text
        # A rule the policy defines: a violation citing none goes to review (bot.judging).
        rule = next((r.id for r in rules_in(request.policy.text) if r.violates), "X1.a")
        return Verdict(
            policy=request.policy.name,
            policy_version=request.policy.version,
            violation=bad,
            policy_category=rule if bad else None,
            rule_ids=(rule,) if bad else (),
            confidence=Confidence.HIGH,
            rationale="Contains abusive wording (X1.a)." if bad else "No rule applies.",
            model="instant",
            effort=request.effort,
        )


class MemorySink:
    """The EffectSink port, in memory: every effect succeeds at once."""

    platform = PLATFORM

    def __init__(self) -> None:
        self.executed: list[tuple[str, EffectKind]] = []

    supported_effects = frozenset(EffectKind)

    async def execute(self, effect: Effect, context: EffectContext) -> EffectResult:
        self.executed.append((context.case.id, effect.kind))
        return EffectResult(outcome=EffectOutcome.DONE, detail="in memory")


def make_messages(n: int, prefix: str, raid_texts: Sequence[str] = ()) -> list[Message]:
    """Distinct texts (repeats are deduplicated by design), unless raid_texts are given."""
    out = []
    for i in range(n):
        if raid_texts:
            text = raid_texts[i % len(raid_texts)]
        else:
            # Each violation differs in its letters (digits spelled a-k): digits alone make
            # near-repeats, whose flags join one post (bot.raids), and each must act here.
            spelled = "".join("abcdefghjk"[int(d)] for d in str(i))
            bad = f" badword {spelled}" if i % VIOLATION_EVERY == 3 else ""
            text = f"{prefix} message {i}: what about map {i % 97} in season {i % 13}?{bad}"
        out.append(
            Message(
                platform=PLATFORM,
                server_id=SERVER,
                channel_id=f"ch-{i % CHANNELS}",
                message_id=f"{prefix}-{i}",
                author=Author(id=f"user-{i % AUTHORS}", name=f"user{i % AUTHORS}"),
                text=text,
            )
        )
    return out


async def open_store(directory: Path, policies: int) -> SqliteStore:
    store = await SqliteStore.open(directory / "modbot.db")
    docs = load_policies([POLICY_DIR / name for name in POLICY_FILES[:policies]])
    await install_policies(store, PLATFORM, SERVER, docs, actor="bench")
    return store


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------- part 1: throughput


@dataclass
class Run:
    messages: int
    policies: int
    workers: int
    wall_s: float
    flagged: int
    effects_done: int
    classifier_calls: int
    latency_ms: list[float] = field(repr=False)
    offered_rate: float | None = None
    delivery_lag_ms: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "policies": self.policies,
            "workers": self.workers,
            "offered_msg_per_s": self.offered_rate,
            "wall_s": round(self.wall_s, 3),
            "msg_per_s": round(len(self.latency_ms) / self.wall_s, 1),
            "cases": len(self.latency_ms),
            "flagged_cases": self.flagged,
            "effects_executed": self.effects_done,
            "classifier_calls": self.classifier_calls,
            "latency_p50_ms": round(pct(self.latency_ms, 50), 2),
            "latency_p99_ms": round(pct(self.latency_ms, 99), 2),
            "latency_max_ms": round(max(self.latency_ms), 2),
            # Paced runs: how late the benchmark's own loop called submit(), at worst.
            "delivery_lag_max_ms": round(self.delivery_lag_ms, 2),
        }


async def pipeline_run(
    n: int, policies: int, prefix: str, rate: float | None = None, profile: str | None = None
) -> Run:
    """Submit n messages, each from its own task: all at once, or `rate` per second."""
    workers = ModbotSettings().worker_count
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="modbot-bench-") as tmp:
        store = await open_store(Path(tmp), policies)
        classifier = InstantClassifier()
        sink = MemorySink()
        pipeline = ModerationPipeline(store, classifier, {PLATFORM: sink}, workers=workers)
        messages = make_messages(n, prefix)
        submitted_at: dict[str, float] = {}
        latency: list[float] = []
        lag = [0.0]
        flagged = 0
        all_done: asyncio.Future[None] = loop.create_future()
        tasks: list[asyncio.Task[None]] = []

        def observe(case: Case) -> None:
            nonlocal flagged
            latency.append((time.perf_counter() - submitted_at[case.message.message_id]) * 1000)
            flagged += case.status is CaseStatus.OPEN
            if len(latency) == n and not all_done.done():
                all_done.set_result(None)

        async def deliver(message: Message) -> None:
            submitted_at[message.message_id] = time.perf_counter()
            await pipeline.submit(message)

        def arrive(message: Message, due: float) -> None:
            lag[0] = max(lag[0], (loop.time() - due) * 1000)
            tasks.append(asyncio.create_task(deliver(message)))

        pipeline.observers.append(observe)
        await pipeline.start()
        # The benchmark's own prebuilt messages are not the pipeline's heap: keep them out of
        # the collector's full passes, whose pauses would otherwise land in the p99.
        gc.collect()
        gc.freeze()
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        if rate is None:
            tasks.extend(asyncio.create_task(deliver(m)) for m in messages)
        else:
            # Open loop: the gateway hands messages over at a fixed rate, whatever the backlog.
            t0 = loop.time() + 0.001
            for i, m in enumerate(messages):
                loop.call_at(t0 + i / rate, arrive, m, t0 + i / rate)
        await all_done
        wall = time.perf_counter() - started
        gc.unfreeze()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        await asyncio.gather(*tasks)
        await pipeline.drain()
        await pipeline.stop()
        counts = await store.queue_counts()
        await store.close()
    assert counts == {"done": n}, counts  # every message decided, its effects carried out
    return Run(
        messages=n,
        policies=policies,
        workers=workers,
        wall_s=wall,
        flagged=flagged,
        effects_done=len(sink.executed),
        classifier_calls=classifier.calls,
        latency_ms=latency,
        offered_rate=rate,
        delivery_lag_ms=lag[0],
    )


async def store_ceiling(n: int, policies: int, prefix: str) -> dict[str, Any]:
    """The pipeline's durable writes alone: the same store calls, concurrently, prebuilt."""
    with tempfile.TemporaryDirectory(prefix="modbot-bench-") as tmp:
        store = await open_store(Path(tmp), policies)
        live = await store.policies.live(PLATFORM, SERVER)
        plans = []
        for m in make_messages(n, prefix):
            bad = "badword" in m.text
            verdicts = tuple(
                Verdict(
                    policy=lp.policy.name,
                    policy_version=lp.policy.version,
                    violation=bad,
                    rule_ids=("X1.a",) if bad else (),
                    confidence=Confidence.HIGH,
                    rationale="prebuilt",
                    model="instant",
                )
                for lp in live
            )
            status = CaseStatus.OPEN if bad else CaseStatus.CLEAN
            case = Case(id=new_case_id(), message=m, status=status, verdicts=verdicts)
            flag = Effect(kind=EffectKind.FLAG, policy=live[0].policy.name)
            plans.append((m, case, [(flag, EffectOutcome.PENDING)] if bad else []))

        async def one(m: Message, case: Case, effects: list[tuple[Effect, EffectOutcome]]) -> None:
            queue_id = await store.enqueue(m)
            assert queue_id is not None
            await store.record_decision(queue_id, case, effects)
            if effects:
                await store.effects.claim(case.id, 1)
                await store.effects.set_outcome(case.id, 1, EffectOutcome.DONE, "in memory", finish_queue_id=queue_id)

        gc.collect()
        started = time.perf_counter()
        await asyncio.gather(*(one(*p) for p in plans))
        wall = time.perf_counter() - started
        counts = await store.queue_counts()
        await store.close()
    assert counts == {"done": n}, counts
    return {
        "messages": n,
        "policies": policies,
        "wall_s": round(wall, 3),
        "msg_per_s": round(n / wall, 1),
    }


async def repeat_memory_cost(live_keys: int = 50_000, probe: int = 300) -> dict[str, Any]:
    """RepeatMemory.end() per judged message: with few keys, and once more distinct texts
    than its sweep threshold were judged inside the window (10 minutes by default)."""
    memory = RepeatMemory()
    verdict = Verdict(policy="p", policy_version=1)
    scope: PolicyScope = ("console", SERVER, "low", "p", 1)

    async def judged(first: int, count: int) -> float:
        started = time.perf_counter()
        for i in range(first, first + count):
            keys = RepeatKeys(clean=f"n:{i}", violation=f"s:{i}")
            memory.end(memory.begin(scope, keys), verdict, 600.0)
        return (time.perf_counter() - started) / count

    below = await judged(0, live_keys)
    above = await judged(live_keys, probe)
    return {
        "live_keys": live_keys,
        "end_us_below_threshold": round(below * 1e6, 1),
        "end_us_above_threshold": round(above * 1e6, 1),
        "implied_msg_per_s_ceiling_above": round(1 / above),
    }


# ---------------------------------------------------------------- part 2: model slots


def _classifier_settings(concurrency: int, host: str) -> ModbotSettings:
    os.environ["MODBOT_MODEL_CONCURRENCY"] = str(concurrency)
    os.environ["OLLAMA_HOST"] = host
    settings = ModbotSettings()
    assert settings.model_concurrency == concurrency and settings.ollama_host == host
    return settings


async def cold_round_trip(calls: int, idle: float) -> dict[str, Any]:
    """One call at a time through the real client to a fake answering at once, each after
    `idle` seconds of quiet: the least a model slot waits between two calls when the
    client's bound equals the slots (the next request leaves only once an answer is in)."""
    fake = await FakeOllama(slots=1, max_queue=0).start()
    try:
        classifier = build_classifier(_classifier_settings(1, fake.host))
        policy = as_policy(load_policies([POLICY_DIR / POLICY_FILES[0]])[0], SERVER)
        times = []
        for i, m in enumerate(make_messages(calls + 3, "rt")):
            await asyncio.sleep(idle)
            started = time.perf_counter()
            await classifier.classify(ClassificationRequest(policy, m, Effort.LOW))
            if i >= 3:  # the first calls open the connection
                times.append((time.perf_counter() - started) * 1000)
        await classifier.aclose()
    finally:
        await fake.stop()
    p50 = statistics.median(times)
    return {
        "calls": calls,
        "idle_before_each_ms": idle * 1000,
        "round_trip_p50_ms": round(p50, 2),
        "max_busy_fraction_at_bound_eq_slots": round(MODEL_LATENCY * 1000 / (MODEL_LATENCY * 1000 + p50), 3),
    }


async def slot_run(
    slots: int,
    n: int,
    policies: int,
    prefix: str,
    raid_texts: Sequence[str] = (),
    ahead: int = 0,
) -> dict[str, Any]:
    """A backlog of n messages through the real classifier; bound = slots + ahead, and the
    fake queues at most `ahead` requests beyond its slots (503 for any more)."""
    fake = await FakeOllama(slots=slots, max_queue=ahead, latency=MODEL_LATENCY).start()
    try:
        settings = _classifier_settings(slots + ahead, fake.host)
        classifier = build_classifier(settings)
        with tempfile.TemporaryDirectory(prefix="modbot-bench-") as tmp:
            store = await open_store(Path(tmp), policies)
            sink = MemorySink()
            pipeline = ModerationPipeline(store, classifier, {PLATFORM: sink}, workers=settings.worker_count)
            cases: list[Case] = []
            pipeline.observers.append(cases.append)
            # The backlog waits in the store, as a gateway burst or an earlier process left
            # it, and start() queues it first. Not pipeline.submit() before start(): that
            # queues each message twice (see BENCHMARKS.md, "Found on the way").
            backlog = make_messages(n, prefix, raid_texts)
            ids = await asyncio.gather(*(store.enqueue(m) for m in backlog))
            assert all(i is not None for i in ids)
            started = time.perf_counter()
            resumed = await pipeline.start()
            await pipeline.drain()
            wall = time.perf_counter() - started
            await pipeline.stop()
            await classifier.aclose()
            counts = await store.queue_counts()
            await store.close()
    finally:
        await fake.stop()
    assert resumed == n and counts == {"done": n}, (resumed, counts)
    ideal = fake.calls * MODEL_LATENCY / slots
    return {
        "slots": slots,
        "model_concurrency": settings.model_concurrency,
        "fake_max_queue": ahead,
        "workers": settings.worker_count,
        "latency_ms": MODEL_LATENCY * 1000,
        "messages": n,
        "policies": policies,
        "distinct_texts": len({normalise_for_repeats(t) for t in raid_texts}) if raid_texts else n,
        "cases": len(cases),
        "flagged_cases": sum(c.status is CaseStatus.OPEN for c in cases),
        "effects_executed": len(sink.executed),
        "model_calls": fake.calls,
        "reused_verdicts": sum(1 for c in cases for v in c.verdicts if v.reused),
        "wall_s": round(wall, 3),
        "ideal_wall_s": round(ideal, 3),
        "busy_seconds": round(fake.busy_seconds, 3),
        "busy_fraction": round(fake.busy_seconds / (slots * wall), 4),
        # Slot time not spent on a model call, per call: the client's round trip shows here.
        "idle_ms_per_call": round((slots * wall - fake.busy_seconds) / max(1, fake.calls) * 1000, 2),
        "rejected_503": fake.rejected_503,
        "server_peak_in_flight": fake.peak_in_flight,
        "client_peak_in_flight": classifier.peak_in_flight,
    }


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = "unknown"
    mem_kb = 0
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        **{
            name: importlib.metadata.version(name)
            for name in ("aiosqlite", "ollama", "httpx", "httpcore", "anyio", "pydantic")
        },
        "sniffio_installed": _installed("sniffio"),
    }


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def show_run(label: str, r: dict[str, Any]) -> None:
    ratio = f"  {r['ratio_to_ceiling']:.2f} of ceiling" if "ratio_to_ceiling" in r else ""
    lag = f", submit lag <= {r['delivery_lag_max_ms']:.1f} ms" if r["offered_msg_per_s"] else ""
    print(
        f"  {label:<30} {r['msg_per_s']:>7.0f} msg/s{ratio}  p50 {r['latency_p50_ms']:.1f} ms"
        f"  p99 {r['latency_p99_ms']:.1f} ms  ({r['messages']} msgs, {r['flagged_cases']} flagged,"
        f" {r['effects_executed']} effects, {r['workers']} workers{lag})",
        flush=True,
    )


def show_slots(label: str, r: dict[str, Any]) -> None:
    print(
        f"  {label:<34} busy {r['busy_fraction']:.3f}  idle/call {r['idle_ms_per_call']:.1f} ms"
        f"  wall {r['wall_s']:.2f}s (ideal {r['ideal_wall_s']:.2f}s)"
        f"  calls {r['model_calls']}/{r['messages']} msgs  503s {r['rejected_503']}"
        f"  peak in flight server {r['server_peak_in_flight']} client {r['client_peak_in_flight']}"
        f" (bound {r['model_concurrency']})",
        flush=True,
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    n = args.messages or (2_000 if quick else 10_000)
    paced_seconds = 1.5 if quick else 4.0
    slot_seconds = 1.25 if quick else 5.0  # ideal duration of each slot run
    per_slot_run = int(slot_seconds / MODEL_LATENCY)  # model calls per slot per run
    results: dict[str, Any] = {"machine": machine(), "argv": sys.argv[1:]}
    print(f"machine: {results['machine']}", flush=True)

    if args.part in ("1", "all"):
        results["throughput"] = await part_throughput(args, quick, n, paced_seconds)
    if args.part in ("2", "all"):
        results["model_slots"] = await part_model_slots(quick, per_slot_run)
    return results


async def part_throughput(args: argparse.Namespace, quick: bool, n: int, paced_seconds: float) -> dict[str, Any]:
    print("part 1: whole pipeline, instant in-process model", flush=True)
    await pipeline_run(min(500, n), 1, "warm")  # imports and first use do not count
    throughput: dict[str, Any] = {"target_msg_per_s": 2_000}
    for policies in (1, 3):
        ceiling = await store_ceiling(n, policies, f"ceil{policies}")
        print(f"  {f'ceiling: store alone, {policies} pol':<30} {ceiling['msg_per_s']:>7.0f} msg/s")
        burst = (
            await pipeline_run(n, policies, f"b{policies}", profile=args.profile if policies == 1 else None)
        ).summary()
        burst["ratio_to_ceiling"] = round(burst["msg_per_s"] / ceiling["msg_per_s"], 3)
        show_run(f"burst, {policies} pol", burst)
        throughput[f"ceiling_{policies}_policies"] = ceiling
        throughput[f"burst_{policies}_policies"] = burst
    for rate in (1_000.0, 2_000.0):
        paced = (await pipeline_run(int(rate * paced_seconds), 1, f"p{rate:.0f}", rate=rate)).summary()
        show_run(f"paced {rate:.0f} msg/s, 1 pol", paced)
        throughput[f"paced_{rate:.0f}_1_policy"] = paced
    sweep = await repeat_memory_cost()
    print(
        f"  repeat memory, end() per judged msg: {sweep['end_us_below_threshold']:.0f} us;"
        f" with {sweep['live_keys']} texts judged in the window: {sweep['end_us_above_threshold']:.0f} us"
        f" (alone caps the loop at {sweep['implied_msg_per_s_ceiling_above']} msg/s)",
        flush=True,
    )
    throughput["repeat_memory"] = sweep
    return throughput


async def part_model_slots(quick: bool, per_slot_run: int) -> dict[str, Any]:
    print(f"part 2: real OllamaClassifier vs FakeOllama, {MODEL_LATENCY * 1000:.0f} ms a call", flush=True)
    rt = await cold_round_trip(10 if quick else 30, MODEL_LATENCY)
    print(
        f"  limit: one call's round trip after {rt['idle_before_each_ms']:.0f} ms idle"
        f" p50 {rt['round_trip_p50_ms']:.2f} ms -> busy fraction <= {rt['max_busy_fraction_at_bound_eq_slots']:.3f}"
        " while bound = slots",
        flush=True,
    )
    rows = []
    # (slots, policies per message, requests allowed to wait at the server beyond its slots)
    # ahead 0 is the brief: MODBOT_MODEL_CONCURRENCY = slots. ahead > 0 keeps a request
    # queued at the server, so a slot that frees up never waits for the client's round trip.
    plan = [(2, 1, 0), (4, 1, 0), (2, 3, 0), (2, 1, 1), (4, 1, 1), (4, 1, 2), (2, 3, 1)]
    for slots, policies, ahead in plan:
        count = per_slot_run * slots // policies
        r = await slot_run(slots, count, policies, f"s{slots}p{policies}a{ahead}", ahead=ahead)
        rows.append(r)
        show_slots(f"{slots} slots, bound {slots + ahead}, {policies} pol, {count} msgs", r)
    raid_n = 100 if quick else 400
    raid_texts = [
        "FREE NITRO for everyone 👉 discorcl.gift/claim badword",
        "free   nitro for EVERYONE 👉 discorcl.gift/claim badword",  # the same, once normalised
        "join my server, best trades: discord.gg/xyz",
        "@everyone giveaway ends in 5 minutes, click now",
    ]
    raid = await slot_run(2, raid_n, 1, "raid", raid_texts)
    show_slots(f"spam raid: {raid_n} msgs, 4 texts", raid)
    return {"round_trip_limit": rt, "runs": rows, "spam_raid": raid}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=None, help="messages per burst run")
    parser.add_argument("--quick", action="store_true", help="smaller runs, under 20 s")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--part", choices=("1", "2", "all"), default="all", help="1: throughput, 2: model slots")
    parser.add_argument("--profile", default=None, help="cProfile the 1-policy burst into this")
    arguments = parser.parse_args()
    t0 = time.perf_counter()
    figures = asyncio.run(main(arguments))
    figures["total_s"] = round(time.perf_counter() - t0, 1)
    print(f"total {figures['total_s']:.1f} s", flush=True)
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
