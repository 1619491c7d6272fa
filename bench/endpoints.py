"""Several model endpoints (MODBOT_MODEL_ENDPOINTS): slot use with a backlog, policy affinity, an endpoint dying.

    python bench/endpoints.py [--runs 3] [--messages 150] [--quick] [--json OUT]

Two fake Ollama servers on loopback, of different speed: "fast" answers in 50 ms, "slow" in
150 ms, each with 2 slots and room for one more request in its queue (as Ollama queues), and
each configured with bound = slots + 1 (the README's recommendation). The bot side is the
real thing: build_classifier() from MODBOT_MODEL_ENDPOINTS, the real ollama client, the real
ModerationPipeline and SqliteStore (in a temporary directory), 3 policies per message.

Each run has four parts:

1. Limits, measured in the same run: each endpoint alone (a pool of one, same bound), with
   a backlog. Its busy fraction = slot-seconds spent on model calls / (slots x wall), over
   the window from 10 % to 90 % of the calls (the ramp-up and the drain are not a backlog).
2. Backlog through both endpoints: each endpoint's busy fraction over the same window, as a
   ratio to its limit from part 1; throughput in calls/s against the sum of the two
   endpoints' throughputs alone; the peak in flight at each server against its bound.
3. Paced at half the two endpoints' capacity: affinity, the share of each policy's calls
   served by the endpoint that served most of them (1.0: every call at its home, so the
   server's prefix cache keeps the policy).
4. A backlog during which the fast endpoint dies (every connection reset, port closed) at
   40 % of the calls: messages decided (every one must have its case with one verdict per
   policy: nothing lost), verdicts against answers delivered (nothing doubled), answers the
   servers generated that never arrived (wasted work), and the calls retried elsewhere.

Speed goes in benchmarks, not timed tests: nothing here asserts speed. It asserts only that
nothing is lost or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes and bench.pipeline live beside bot/, outside the installed package
    sys.path.insert(0, str(REPO))

from bench.pipeline import MemorySink, machine, make_messages, open_store  # noqa: E402
from bot.classifier.backend import ModelCall  # noqa: E402
from bot.classifier.factory import build_classifier  # noqa: E402
from bot.pipeline import ModerationPipeline  # noqa: E402
from bot.settings import ModbotSettings  # noqa: E402
from tests.fakes.ollama_fake import FakeOllama  # noqa: E402

MODEL = "gpt-oss-safeguard:20b"
POLICIES = 3
WINDOW = (0.10, 0.90)  # the part of a backlog run whose slot use is measured


@dataclass(frozen=True)
class EndpointShape:
    label: str
    latency: float
    slots: int
    ahead: int = 1  # requests the server queues beyond its slots; the bot's bound is slots + ahead

    @property
    def bound(self) -> int:
        return self.slots + self.ahead

    @property
    def calls_per_s(self) -> float:
        return self.slots / self.latency


FAST = EndpointShape("fast", 0.05, 2)
SLOW = EndpointShape("slow", 0.15, 2)


@dataclass
class Calls:
    """A ModelCallObserver: counts every call by how it ended, and the answers delivered by endpoint."""

    results: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)

    def model_call(self, call: ModelCall) -> None:
        self.results[call.result] += 1
        if call.result in ("ok", "malformed"):
            self.delivered[call.endpoint] += 1

    def endpoint_health(self, endpoint: str, up: bool) -> None:
        pass

    @property
    def answered(self) -> int:
        return sum(self.delivered.values())


def settings_for(fakes: Sequence[tuple[EndpointShape, FakeOllama]]) -> ModbotSettings:
    os.environ["MODBOT_MODEL_ENDPOINTS"] = "; ".join(
        f"ollama {fake.host} {MODEL} bound={shape.bound} name={shape.label}" for shape, fake in fakes
    )
    os.environ["MODBOT_MODEL_TIMEOUT"] = "30"
    return ModbotSettings()


def affinity(fakes: Sequence[FakeOllama]) -> float:
    """Mean over policies of the share of its calls served by its most-used endpoint."""
    by_policy: dict[str, Counter[int]] = {}
    for n, fake in enumerate(fakes):
        for request in fake.chat_requests():
            title = request["messages"][0]["content"].split("\n", 1)[0]
            by_policy.setdefault(title, Counter())[n] += 1
    return statistics.mean(max(c.values()) / sum(c.values()) for c in by_policy.values())


async def run(
    shapes: Sequence[EndpointShape],
    messages: int,
    prefix: str,
    *,
    rate: float | None = None,
    kill: tuple[str, float] | None = None,
) -> dict[str, Any]:
    """One pipeline run through the endpoints `shapes`: a stored backlog, or `rate` messages/s offered live."""
    fakes = [
        (shape, await FakeOllama(slots=shape.slots, max_queue=shape.ahead, latency=shape.latency).start())
        for shape in shapes
    ]
    calls = Calls()
    total_calls = messages * POLICIES
    window: dict[str, tuple[float, dict[str, float]]] = {}
    killed_at_calls: int | None = None
    try:
        classifier = build_classifier(settings_for(fakes), observer=calls)
        with tempfile.TemporaryDirectory(prefix="modbot-bench-endpoints-") as tmp:
            store = await open_store(Path(tmp), POLICIES)
            sink = MemorySink()
            pipeline = ModerationPipeline(store, classifier, {sink.platform: sink}, workers=64)
            backlog = make_messages(messages, prefix)

            async def watch() -> None:
                nonlocal killed_at_calls
                marks = {"start": WINDOW[0] * total_calls, "end": WINDOW[1] * total_calls}
                while len(window) < len(marks) or (kill and killed_at_calls is None):
                    done = calls.answered
                    for name, at in marks.items():
                        if name not in window and done >= at:
                            now = time.perf_counter()
                            window[name] = (now, {shape.label: fake.busy_seconds_now() for shape, fake in fakes})
                    if kill and killed_at_calls is None and done >= kill[1] * total_calls:
                        killed_at_calls = done
                        await next(fake for shape, fake in fakes if shape.label == kill[0]).kill()
                    await asyncio.sleep(0.002)

            if rate is None:
                ids = await asyncio.gather(*(store.enqueue(m) for m in backlog))
                assert all(i is not None for i in ids)
            watcher = asyncio.create_task(watch())
            started = time.perf_counter()
            await pipeline.start()
            if rate is not None:
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                for i, message in enumerate(backlog):
                    delay = t0 + i / rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    assert await pipeline.submit(message)
            await pipeline.drain()
            wall = time.perf_counter() - started
            await asyncio.wait_for(watcher, 5)
            await pipeline.stop()
            client_peaks = {e.name: e.peak_in_flight for e in classifier.pool.endpoints}
            await classifier.aclose()
            counts = await store.queue_counts()
            verdicts = [(case.message.message_id, len(case.verdicts)) async for case in store.cases.every()]
            await store.close()
    finally:
        for _, fake in fakes:
            await fake.stop()

    # Nothing lost: every message decided, with one verdict per policy. Nothing doubled:
    # every verdict came from exactly one answer delivered to the bot.
    assert counts == {"done": messages}, counts
    assert len(verdicts) == messages and all(n == POLICIES for _, n in verdicts), verdicts[:5]
    assert calls.results["ok"] == total_calls, calls.results
    (t1, busy1), (t2, busy2) = window["start"], window["end"]
    span = t2 - t1
    per_endpoint = {}
    for shape, fake in fakes:
        per_endpoint[shape.label] = {
            "latency_ms": shape.latency * 1000,
            "slots": shape.slots,
            "bound": shape.bound,
            "busy_fraction": round((busy2[shape.label] - busy1[shape.label]) / (shape.slots * span), 4),
            "answers_delivered": calls.delivered[shape.label],
            "answers_generated": fake.answered,
            "server_peak_in_flight": fake.peak_in_flight,  # requests holding a slot
            "client_peak_in_flight": client_peaks[shape.label],  # requests sent, the queued one included
            "rejected_503": fake.rejected_503,
        }
    return {
        "endpoints": [s.label for s in shapes],
        "messages": messages,
        "policies": POLICIES,
        "offered_msg_per_s": rate,
        "wall_s": round(wall, 3),
        "calls_per_s_in_window": round((WINDOW[1] - WINDOW[0]) * total_calls / span, 2),
        "affinity": round(affinity([fake for _, fake in fakes]), 4),
        "verdicts": sum(n for _, n in verdicts),
        "answers_delivered": calls.answered,
        "answers_generated": sum(fake.answered for _, fake in fakes),
        "calls_failed_over": calls.results["unavailable"],
        "killed": kill[0] if kill else None,
        "killed_at_answers": killed_at_calls,
        "per_endpoint": per_endpoint,
    }


async def one_round(n: int, messages: int) -> dict[str, Any]:
    print(f"round {n}", flush=True)
    alone = {}
    for shape in (FAST, SLOW):
        count = max(20, int(messages * shape.calls_per_s / (FAST.calls_per_s + SLOW.calls_per_s)))
        alone[shape.label] = await run([shape], count, f"r{n}-{shape.label}")
        r = alone[shape.label]["per_endpoint"][shape.label]
        print(f"  limit: {shape.label} alone, {count} msgs: busy {r['busy_fraction']:.3f}", flush=True)
    both = await run([FAST, SLOW], messages, f"r{n}-both")
    ideal_calls_per_s = sum(alone[s]["calls_per_s_in_window"] for s in alone)
    both["throughput_ratio_to_sum_alone"] = round(both["calls_per_s_in_window"] / ideal_calls_per_s, 4)
    for label, r in both["per_endpoint"].items():
        r["busy_ratio_to_alone"] = round(r["busy_fraction"] / alone[label]["per_endpoint"][label]["busy_fraction"], 4)
        print(
            f"  backlog, both: {label} busy {r['busy_fraction']:.3f} ({r['busy_ratio_to_alone']:.3f} of alone),"
            f" {r['answers_delivered']} answers, peak in flight {r['client_peak_in_flight']} (bound {r['bound']}),"
            f" {r['rejected_503']} 503s",
            flush=True,
        )
    print(
        f"  backlog, both: {both['calls_per_s_in_window']:.1f} calls/s = {both['throughput_ratio_to_sum_alone']:.3f}"
        f" of the two alone ({ideal_calls_per_s:.1f}); affinity {both['affinity']:.3f}",
        flush=True,
    )
    capacity_msg_per_s = (FAST.calls_per_s + SLOW.calls_per_s) / POLICIES
    paced = await run([FAST, SLOW], messages, f"r{n}-paced", rate=capacity_msg_per_s / 2)
    offered = capacity_msg_per_s / 2
    print(f"  paced at half capacity ({offered:.1f} msg/s): affinity {paced['affinity']:.3f}", flush=True)
    death = await run([FAST, SLOW], messages, f"r{n}-death", kill=("fast", 0.4))
    print(
        f"  fast dies at {death['killed_at_answers']} answers: {death['messages']} msgs decided,"
        f" {death['verdicts']} verdicts from {death['answers_delivered']} answers delivered,"
        f" {death['answers_generated'] - death['answers_delivered']} generated but lost with the server,"
        f" {death['calls_failed_over']} calls failed over",
        flush=True,
    )
    return {"alone": alone, "both": both, "paced": paced, "death": death}


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "argv": sys.argv[1:]}
    print(f"machine: {results['machine']}", flush=True)
    await run([FAST], 10, "warm")  # imports and first connections do not count
    rounds = [await one_round(n, args.messages) for n in range(1, args.runs + 1)]
    results["rounds"] = rounds
    summary: dict[str, Any] = {}
    for label in ("fast", "slow"):
        alone = [r["alone"][label]["per_endpoint"][label] for r in rounds]
        both = [r["both"]["per_endpoint"][label] for r in rounds]
        summary[f"{label}_busy_alone"] = spread([e["busy_fraction"] for e in alone])
        summary[f"{label}_busy_both"] = spread([e["busy_fraction"] for e in both])
        summary[f"{label}_busy_ratio"] = spread([e["busy_ratio_to_alone"] for e in both])
    summary["throughput_ratio"] = spread([r["both"]["throughput_ratio_to_sum_alone"] for r in rounds])
    summary["affinity_backlog"] = spread([r["both"]["affinity"] for r in rounds])
    summary["affinity_paced"] = spread([r["paced"]["affinity"] for r in rounds])
    summary["death_wasted_generations"] = spread(
        [r["death"]["answers_generated"] - r["death"]["answers_delivered"] for r in rounds]
    )
    summary["death_failed_over"] = spread([r["death"]["calls_failed_over"] for r in rounds])
    results["summary"] = summary
    print("summary (min / median / max):", flush=True)
    for key, value in summary.items():
        print(f"  {key:<28} {value['min']:.3f} / {value['median']:.3f} / {value['max']:.3f}", flush=True)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds (each: limits, backlog, paced, death)")
    parser.add_argument("--messages", type=int, default=150, help="messages per two-endpoint run")
    parser.add_argument("--quick", action="store_true", help="one round of 60 messages")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.runs, arguments.messages = 1, 60
    t0 = time.perf_counter()
    figures = asyncio.run(main(arguments))
    figures["total_s"] = round(time.perf_counter() - t0, 1)
    print(f"total {figures['total_s']:.1f} s", flush=True)
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
