"""Triage benchmark (issue 12 §4), the parts that need no pipeline yet.

    python bench/triage.py [--runs N] [--json OUT]

Part 1 (the screen's prompt). The screening template rendered for the eight library
policies: estimated tokens, full and compact, and the room left for a message at the
default num_ctx (8192) after the margin for reasoning, answer and chat template.

Part 2 (model calls per message). 1,000 ordinary chat lines and 50 violations (seeded,
reproducible), the eight library policies, the default rule set. The real ollama client
over loopback against FakeOllama, whose model is deterministic: per-policy calls go through
the real OllamaClassifier; the screen through a minimal ollama adapter kept in this script
(the backend's own ScreenModel comes with the wiring). `off`: every policy for every line.
`screen`: `bot.triage.triage.triage_message`, then the named policies. The fake's screen
names the policy a violation's bad word belongs to, and nothing for ordinary lines: this
checks the plumbing, not the screen's recall (that is `modbot eval --triage screen`, on a GPU).
Limits: the issue's target (1.2 calls per message for `screen`) and `off` measured in the
same run (8 per message).

Part 3 (what triage costs per message, CPU). The rule checks (default rules plus the
scam-phrases word list) and building the screen's request, per message, against the round
trip of one model call to the fake over loopback in the same run (p50 of 200 sequential
calls): how much of one model call the cheap tier costs.

Part 4 (draining a 10-minute backlog). A discrete-event simulation on a virtual clock, with
the real CapacityModel, LoadShedder and plan_judging: 2 slots, a fixed 1.5 s per call, the
eight policies, traffic at a steady rate, and a backlog of 10 minutes of that traffic at the
start. Drained means the oldest unfinished message is under 30 s old. Calls per message under
the screen are Part 2's measured mix. Limit: the fluid bound backlog / (service rate - arrival
rate) for the mode the bot ends up in. The simulation is deterministic: one run is all runs.
The pipeline itself is measured when the wiring lands.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import importlib.metadata
import json
import math
import platform
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes lives beside bot/, outside the installed package
    sys.path.insert(0, str(REPO))

import ollama  # noqa: E402

from bot.bootstrap import build_classifier  # noqa: E402
from bot.classifier import ClassificationRequest  # noqa: E402
from bot.domain import Author, Effort, Message, Policy, Verdict  # noqa: E402
from bot.policy_library import as_policy, library_files, load_policies  # noqa: E402
from bot.settings import ModbotSettings  # noqa: E402
from bot.triage.capacity import CapacityModel  # noqa: E402
from bot.triage.config import RuleSet, TriageMode, WordListRule, default_rules  # noqa: E402
from bot.triage.flood import DuplicateFloodDetector  # noqa: E402
from bot.triage.lists import load_rule_lists  # noqa: E402
from bot.triage.screener import ScreenCompletion  # noqa: E402
from bot.triage.screening import (  # noqa: E402
    ContextBudget,
    ScreenDetail,
    ScreenRequest,
    load_screen_template,
    prepare_screen,
    template_path,
)
from bot.triage.shedding import LoadShedder, SheddingConfig, SheddingRecovered, WorkKind, plan_judging  # noqa: E402
from bot.triage.triage import ServerTriage, build_server_triage, triage_message  # noqa: E402
from tests.fakes.ollama_fake import FakeOllama, Reply, content_of, system_of  # noqa: E402

POLICY_DIR = REPO / "policies"
SEED = 12
ORDINARY = 1000
VIOLATIONS = 50
CONCURRENCY = 32
# The fake flags these words under any policy; its screen names the policy each belongs to.
BAD_WORDS = {"idiot": "harassment", "scam": "spam-scams", "kill you": "violent-threats", "badword": "hate-speech"}
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------- the traffic


_SUBJECTS = ["the raid", "ranked", "the new patch", "my build", "the boss", "tonight's event", "the map", "our clan"]
_VERBS = ["was fun", "starts at nine", "needs a nerf", "is finally out", "took forever", "looks great", "is so laggy"]
_TAILS = ["lol", "gg", "anyone in?", "see you there", "", "ngl", "thoughts?", "haha", "brb", "🙂"]


def traffic(seed: int = SEED) -> list[tuple[Message, str | None]]:
    """1,050 chat lines, shuffled: each with the policy its bad word belongs to, or None."""
    rng = random.Random(seed)
    lines: list[tuple[str, str | None]] = []
    for _ in range(ORDINARY):
        text = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_TAILS)}".strip()
        lines.append((f"{text} #{rng.randrange(10_000)}", None))
    words = list(BAD_WORDS)
    for i in range(VIOLATIONS):
        word = words[i % len(words)]
        lines.append((f"you {word}, {rng.choice(_SUBJECTS)} {rng.choice(_VERBS)}", BAD_WORDS[word]))
    rng.shuffle(lines)
    return [
        (
            Message(
                platform="bench",
                server_id="srv-1",
                channel_id=f"c{rng.randrange(10)}",
                message_id=f"m{i}",
                author=Author(id=f"u{rng.randrange(200)}", name=f"user{i % 200}"),
                text=text,
                sent_at=T0 + timedelta(seconds=i),
            ),
            policy,
        )
        for i, (text, policy) in enumerate(lines)
    ]


def fake_model(fake: FakeOllama) -> Any:
    """The fake's answers: a screen names the bad word's policy; a policy call is the fake's own."""

    def respond(request: dict[str, Any]) -> Reply:
        if system_of(request).startswith("# Screening"):
            text = str(content_of(request)["content"]["text"]).casefold()
            named = sorted({p for word, p in BAD_WORDS.items() if word in text})
            answer = {"policies": named, "rule_ids": [], "rationale": "fake screen"}
            return Reply(json.dumps(answer), prompt_eval_count=2000, eval_count=20)
        return fake.default_reply(request)

    return respond


class OllamaScreen:
    """A minimal ScreenModel over the real ollama client; the backend's own comes with the wiring."""

    def __init__(self, host: str, model: str, num_ctx: int) -> None:
        self.client = ollama.AsyncClient(host=host, timeout=60)
        self.model = model
        self.options = {"num_ctx": num_ctx}

    async def complete(self, request: ScreenRequest) -> ScreenCompletion:
        started = time.perf_counter()
        response = await self.client.chat(
            model=self.model,
            messages=list(request.messages),
            think=request.effort.value,
            format=request.schema,
            stream=False,
            options=self.options,
        )
        return ScreenCompletion(
            content=response.message.content or "",
            reasoning=response.message.thinking or "",
            model=self.model,
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=response.prompt_eval_count or 0,
            completion_tokens=response.eval_count or 0,
        )


# ---------------------------------------------------------------- part 1


def part1(policies: Sequence[Policy]) -> dict[str, Any]:
    template = load_screen_template(template_path(POLICY_DIR))
    budget = ContextBudget(num_ctx=8192)
    full = prepare_screen(template, policies, budget)
    compact_budget = ContextBudget(num_ctx=full.system_tokens + budget.margin + budget.min_message_tokens - 1)
    compact = prepare_screen(template, policies, compact_budget)
    assert full.detail is ScreenDetail.FULL and compact.detail is ScreenDetail.COMPACT
    return {
        "policies": len(policies),
        "full_tokens": full.system_tokens,
        "compact_tokens": compact.system_tokens,
        "margin": budget.margin,
        "room_for_message_at_8192": budget.room_for_message(full.system_tokens),
        "smallest_num_ctx_full": full.system_tokens + budget.margin + budget.min_message_tokens,
        "smallest_num_ctx_compact": compact.system_tokens + budget.margin + budget.min_message_tokens,
    }


# ---------------------------------------------------------------- part 2


def server_triage(policies: Sequence[Policy], mode: TriageMode) -> ServerTriage:
    rules = RuleSet(rules=(*default_rules(), WordListRule(lists=("scam-phrases",))))
    return build_server_triage(
        mode=mode,
        effort=Effort.LOW,
        policies=policies,
        rule_set=rules,
        lists=load_rule_lists(POLICY_DIR / "lists"),
        template=load_screen_template(template_path(POLICY_DIR)),
        budget=ContextBudget(num_ctx=8192),
    )


@dataclass
class CallCount:
    mode: str
    messages: int = 0
    model_calls: int = 0
    rule_decided: int = 0
    screened_out: int = 0
    violations_judged: int = 0  # violations whose policy was judged and found violating
    per_message_calls: list[int] = field(default_factory=list)

    @property
    def calls_per_message(self) -> float:
        return self.model_calls / self.messages


async def count_calls(policies: Sequence[Policy], mode: TriageMode) -> CallCount:
    by_name = {p.name: p for p in policies}
    fake = FakeOllama()
    fake.responder = fake_model(fake)
    await fake.start()
    classifier = build_classifier(ModbotSettings(ollama_host=fake.host, model_concurrency=8))
    screen = OllamaScreen(fake.host, "gpt-oss-safeguard:20b", 8192)
    srv = server_triage(policies, mode)
    floods = DuplicateFloodDetector()
    count = CallCount(mode.value)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(message: Message, bad_policy: str | None) -> None:
        async with gate:
            result = await triage_message(message, srv, screen_model=screen, floods=floods)
            verdicts: list[Verdict] = await asyncio.gather(
                *(
                    classifier.classify(ClassificationRequest(by_name[name], message, result.plan.effort))
                    for name in result.policies
                )
            )
        count.messages += 1
        count.per_message_calls.append(result.model_calls)
        count.rule_decided += result.decided_by_rule
        count.screened_out += result.screened_out
        if bad_policy is not None and any(v.policy == bad_policy and v.violation for v in verdicts):
            count.violations_judged += 1

    try:
        await asyncio.gather(*(one(m, p) for m, p in traffic()))
        count.model_calls = fake.calls
        assert count.model_calls == sum(count.per_message_calls), "the fake saw calls triage did not count"
    finally:
        await classifier.aclose()
        await fake.stop()
    return count


async def part2(policies: Sequence[Policy]) -> dict[str, CallCount]:
    return {mode.value: await count_calls(policies, mode) for mode in (TriageMode.OFF, TriageMode.SCREEN)}


# ---------------------------------------------------------------- part 3


async def part3(policies: Sequence[Policy], runs: int) -> dict[str, Any]:
    srv = server_triage(policies, TriageMode.SCREEN)
    assert srv.rules is not None and srv.screen is not None
    messages = [m for m, _ in traffic()]
    fake = await FakeOllama().start()
    classifier = build_classifier(ModbotSettings(ollama_host=fake.host, model_concurrency=1))
    rows: list[dict[str, float]] = []
    try:
        request = ClassificationRequest(policies[0], messages[0], Effort.LOW)
        for _ in range(20):  # warm the connection
            await classifier.classify(request)
        for _ in range(runs):
            trips = []
            for _ in range(200):
                started = time.perf_counter()
                await classifier.classify(request)
                trips.append(time.perf_counter() - started)
            floods = DuplicateFloodDetector()
            started = time.perf_counter()
            for m in messages:
                srv.rules.check(m, floods)
            rules_each = (time.perf_counter() - started) / len(messages)
            started = time.perf_counter()
            for m in messages:
                srv.screen.request(m)
            screen_each = (time.perf_counter() - started) / len(messages)
            call = statistics.median(trips)
            rows.append(
                {
                    "model_call_ms": call * 1000,
                    "rules_us": rules_each * 1e6,
                    "screen_request_us": screen_each * 1e6,
                    "rules_ratio": rules_each / call,
                    "screen_request_ratio": screen_each / call,
                }
            )
    finally:
        await classifier.aclose()
        await fake.stop()
    return {key: _spread([r[key] for r in rows]) for key in rows[0]}


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


# ---------------------------------------------------------------- part 4


@dataclass
class _SimMessage:
    arrived: float
    violation: bool
    pending: int = 0
    after_screen: int = 0  # policy calls the screen will name


@dataclass
class DrainResult:
    rate: float
    shedding: bool
    backlog: int
    drained_at: float | None  # seconds after the start, None: not within the horizon
    limit: float  # fluid bound for the mode the bot ended in
    episodes: int
    notices: int  # shedding-started notices + all-clears to the one server
    shed_at_end: bool
    calls_per_message_screen: float

    @property
    def ratio(self) -> float | None:
        if self.drained_at is None or math.isinf(self.limit):
            return None
        return self.drained_at / self.limit


def simulate_drain(
    rate: float,
    *,
    shedding: bool,
    screen_mix: float,
    violation_share: float,
    slots: int = 2,
    seconds_per_call: float = 1.5,
    policies: int = 8,
    backlog_minutes: float = 10,
    horizon: float = 4 * 3600,
    workers: int = CONCURRENCY,
) -> DrainResult:
    """Serve a backlog of `backlog_minutes` of traffic at `rate` msg/s while the traffic goes on."""
    capacity = CapacityModel(slots)
    shedder = LoadShedder(SheddingConfig(enabled=shedding))
    server = ("bench", "srv-1")
    every = max(1, round(1 / violation_share))
    seq = 0

    def new_message(at: float) -> _SimMessage:
        nonlocal seq
        seq += 1
        capacity.record_demand(at, {Effort.LOW: policies})
        return _SimMessage(arrived=at, violation=seq % every == 0)

    backlog_count = round(backlog_minutes * 60 * rate)
    waiting: deque[_SimMessage] = deque(new_message(-backlog_minutes * 60 + i / rate) for i in range(backlog_count))
    in_flight: list[_SimMessage] = []
    ready: deque[tuple[_SimMessage, str]] = deque()
    completions: list[tuple[float, int, _SimMessage, str]] = []
    free = slots
    now = 0.0
    next_arrival = 0.0
    next_tick = 0.0
    events = 0
    notices = 0
    drained_at: float | None = None
    tie = 0

    def observe() -> None:
        # As the wiring will: the shedder sees the drain time whenever work is taken from
        # the queue, and once a second besides, so a backlog found at start is shed at once.
        nonlocal events, notices
        unshed = (len(waiting) + len(in_flight)) * policies
        event = shedder.observe(now, capacity.drain_seconds({Effort.LOW: unshed}, now))
        if event is not None:
            events += 1
            if isinstance(event, SheddingRecovered):
                notices += len(event.servers)  # the all-clear to each server told at the start

    def admit() -> None:
        nonlocal notices
        while waiting and len(in_flight) < workers:
            observe()
            msg = waiting.popleft()
            plan = plan_judging(WorkKind.CHAT, triage=TriageMode.OFF, effort=Effort.LOW, shedding=shedder.active)
            if plan.shed and shedder.note_shed(server):
                notices += 1
            if plan.triage is TriageMode.SCREEN:
                msg.pending, msg.after_screen = 1, int(msg.violation)
                ready.append((msg, "screen"))
            else:
                msg.pending = policies
                ready.extend((msg, "policy") for _ in range(policies))
            in_flight.append(msg)

    def dispatch() -> None:
        nonlocal free, tie
        while free and ready:
            msg, kind = ready.popleft()
            free -= 1
            tie += 1
            heapq.heappush(completions, (now + seconds_per_call, tie, msg, kind))

    while now < horizon:
        now = min(t for t in (next_arrival, next_tick, completions[0][0] if completions else math.inf))
        if completions and completions[0][0] == now:
            _, _, msg, kind = heapq.heappop(completions)
            free += 1
            capacity.record_call(Effort.LOW, seconds_per_call)
            msg.pending -= 1
            if kind == "screen" and msg.after_screen:
                msg.pending += msg.after_screen
                ready.extend((msg, "policy") for _ in range(msg.after_screen))
            if msg.pending == 0:
                in_flight.remove(msg)
        elif now == next_arrival:
            waiting.append(new_message(now))
            next_arrival += 1 / rate
        else:
            observe()
            oldest = min((m.arrived for m in (*in_flight, *waiting)), default=now)
            if drained_at is None and now - oldest < 30:
                drained_at = now
                if not shedder.active:
                    break
            # Drained: stop once shedding has ended, or ten minutes on if it goes on (it
            # must, while the traffic needs more than the slots give at full service).
            if drained_at is not None and (not shedder.active or now > drained_at + 600):
                break
            next_tick += 1.0
        admit()
        dispatch()

    ended_shed = shedder.active
    cpm = screen_mix if ended_shed or (shedding and drained_at is not None) else policies
    service = slots / (cpm * seconds_per_call)
    limit = backlog_count / (service - rate) if service > rate else math.inf
    return DrainResult(
        rate=rate,
        shedding=shedding,
        backlog=backlog_count,
        drained_at=drained_at,
        limit=limit,
        episodes=(events + 1) // 2,
        notices=notices,
        shed_at_end=ended_shed,
        calls_per_message_screen=screen_mix,
    )


# ---------------------------------------------------------------- report


def machine() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ollama": importlib.metadata.version("ollama"),
        "pydantic": importlib.metadata.version("pydantic"),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of part 3 (min/median/max)")
    parser.add_argument("--json", type=Path, help="write every figure here as JSON")
    args = parser.parse_args(argv)
    policies = [as_policy(d, "srv-1") for d in load_policies(library_files(POLICY_DIR))]
    report: dict[str, Any] = {"machine": machine()}

    p1 = report["part1"] = part1(policies)
    print("## Part 1: the screen's prompt, eight library policies (estimated tokens)")
    print(f"full {p1['full_tokens']}, compact {p1['compact_tokens']}, margin {p1['margin']}, ")
    print(f"room for a message at num_ctx 8192: {p1['room_for_message_at_8192']}; ")
    print(f"smallest num_ctx for full {p1['smallest_num_ctx_full']}, compact {p1['smallest_num_ctx_compact']}")

    counts = asyncio.run(part2(policies))
    report["part2"] = {k: {**v.__dict__, "calls_per_message": v.calls_per_message} for k, v in counts.items()}
    for c in report["part2"].values():
        c.pop("per_message_calls")
    off, screen = counts["off"], counts["screen"]
    print("\n## Part 2: model calls per message (1,000 chat lines + 50 violations, 8 policies)")
    print("| triage | calls | per message | vs target 1.2 | vs off | violations judged | screened out | rule decided |")
    print("|---|---|---|---|---|---|---|---|")
    for c in (off, screen):
        print(
            f"| {c.mode} | {c.model_calls} | {c.calls_per_message:.3f} | {c.calls_per_message / 1.2:.2f} "
            f"| {c.calls_per_message / off.calls_per_message:.3f} | {c.violations_judged} of {VIOLATIONS} "
            f"| {c.screened_out} | {c.rule_decided} |"
        )

    p3 = report["part3"] = asyncio.run(part3(policies, args.runs))
    print(f"\n## Part 3: triage's CPU per message against one model round trip ({args.runs} runs: min / median / max)")
    for key in ("model_call_ms", "rules_us", "screen_request_us", "rules_ratio", "screen_request_ratio"):
        s = p3[key]
        print(f"{key}: {s['min']:.4g} / {s['median']:.4g} / {s['max']:.4g}")

    mix = screen.calls_per_message
    share = VIOLATIONS / (ORDINARY + VIOLATIONS)
    print("\n## Part 4: draining a 10-minute backlog (2 slots, 1.5 s per call, 8 policies; simulated)")
    print("| traffic | shedding | backlog | drained after | fluid bound | ratio | episodes | notices | shed at end |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for rate in (1.0, 0.1):
        for shedding in (False, True):
            r = simulate_drain(rate, shedding=shedding, screen_mix=mix, violation_share=share)
            rows.append({**r.__dict__, "ratio": r.ratio})
            drained = "not within 4 h" if r.drained_at is None else f"{r.drained_at:.0f} s"
            bound = "never" if math.isinf(r.limit) else f"{r.limit:.0f} s"
            ratio = "n/a" if r.ratio is None else f"{r.ratio:.2f}"
            print(
                f"| {rate:g} msg/s | {'on' if shedding else 'off'} | {r.backlog} | {drained} | {bound} | {ratio} "
                f"| {r.episodes} | {r.notices} | {'yes' if r.shed_at_end else 'no'} |"
            )
    report["part4"] = rows
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
