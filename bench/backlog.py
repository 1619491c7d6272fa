"""Backlog benchmark: memory as the queue grows, time to stop, bytes per decided message, appeals behind a backlog.

    python bench/backlog.py [--runs 3] [--baseline /path/to/other/checkout] [--quick] [--json OUT]

Part 1 (memory and stopping). A real `modbot run` subprocess with the model server down
(OLLAMA_HOST names a closed port), so nothing is decided and the queue only grows. Chat
lines are written to its stdin; once the database holds 4,000 and then 24,000 of them, the
process's resident memory (VmRSS) is read. Then SIGTERM, and the time until the process
has exited. Limit measured in the same run: the same process stopped idle (an empty
queue), so the ratio says what a long backlog and a dead model add to a stop. With
--baseline, the same measurements run in another checkout (the code before this change).

Part 2 (storage). `modbot replay` of chat lines (one in ten flagged) through the real
pipeline and client against FakeOllama, whose answers carry 600 characters of reasoning
as a real model's do. Database bytes per decided message, against the input's own bytes
per message in the same run; then after the upkeep clears clean verdicts' reasoning and
gives the freed pages back.

Part 3 (interactive work behind a backlog). The app (bootstrap) with the real client
against FakeOllama, 2 slots and a fixed latency per call; 10,000 messages wait in the
queue. Each run files an appeal and times (a) until `file()` returns and (b) until its
second opinion reaches the mod channel. Limit measured in the same run: one high-effort
call through the same client with nothing else running.

Nothing here asserts speed: it reports min / median / max of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests.fakes lives beside bot/, outside the installed package
    sys.path.insert(0, str(REPO))

from bot.domain import Author, Message, ServerSettings, utcnow  # noqa: E402
from tests.fakes.ollama_fake import FakeOllama, Reply, verdict_json  # noqa: E402

SERVER = "s1"
CHAT = [
    "anyone up for a game tonight?",
    "the patch notes are out, the new map looks great",
    "lol that was close",
    "can someone explain how the ranking works",
    "good morning everyone",
    "I think the server is lagging again",
    "thanks for the help yesterday!",
    "who's streaming later",
    "did you see the trailer",
    "brb dinner",
]
REASONING = "The message is checked against each rule of the policy in turn. " * 10  # ~600 characters


def chat_line(i: int, *, flagged_every: int = 10) -> str:
    text = f"{CHAT[i % len(CHAT)]} #{i}" + (" you idiot" if i % flagged_every == 0 else "")
    return json.dumps({"id": f"m{i}", "server": SERVER, "channel": f"c{i % 20}", "author": f"u{i % 500}", "text": text})


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def fmt(values: Sequence[float], unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    s = spread(values)
    return " / ".join(f"{s[k] * scale:.{digits}f}" for k in ("min", "median", "max")) + unit


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


# ---------------------------------------------------------------- part 1


@dataclass
class MemoryRun:
    rss_4k: int
    rss_24k: int
    stop_backlog_s: float | None  # None: it had not stopped after the guard
    stop_idle_s: float | None
    exit_code: int | None


def _env(tree: Path, db: Path, model: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(tree),
        "OLLAMA_HOST": model,
        "MODBOT_DB": str(db),
        "MODBOT_LOG_LEVEL": "ERROR",
    }


async def _start_run(tree: Path, db: Path, model: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.console.cli",
        "run",
        cwd=tree,
        env=_env(tree, db, model),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _seed(tree: Path, db: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.console.cli",
        "policy",
        "install",
        "harassment",
        "--server",
        SERVER,
        "--actor",
        "bench",
        "--admin",
        cwd=tree,
        env=_env(tree, db, closed_port_url()),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"seeding failed in {tree}: {err.decode()[-500:]}")


async def _feed_until(proc: asyncio.subprocess.Process, db: Path, start: int, end: int, guard: float) -> None:
    assert proc.stdin is not None
    for chunk in range(start, end, 1000):
        proc.stdin.write("".join(chat_line(i) + "\n" for i in range(chunk, min(end, chunk + 1000))).encode())
        await proc.stdin.drain()
    deadline = time.monotonic() + guard
    while count(db, "SELECT COUNT(*) FROM queue") < end:
        if time.monotonic() > deadline or proc.returncode is not None:
            raise RuntimeError(f"the queue never reached {end} messages")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # let the allocator settle after the burst


async def _stop(proc: asyncio.subprocess.Process, guard: float) -> float | None:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), guard)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    return time.monotonic() - t0


async def memory_run(tree: Path, small: int, large: int, guard: float) -> MemoryRun:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "backlog.db"
        await _seed(tree, db)
        idle = await _start_run(tree, db, closed_port_url())
        await asyncio.sleep(3.0)  # started and idle
        stop_idle = await _stop(idle, guard)
        proc = await _start_run(tree, db, closed_port_url())
        await _feed_until(proc, db, 0, small, guard)
        rss_small = rss_bytes(proc.pid)
        await _feed_until(proc, db, small, large, guard)
        rss_large = rss_bytes(proc.pid)
        stop_backlog = await _stop(proc, guard)
        return MemoryRun(rss_small, rss_large, stop_backlog, stop_idle, proc.returncode)


# ---------------------------------------------------------------- part 2


@dataclass
class StorageFigures:
    messages: int
    input_bytes_per_message: float
    decided_bytes_per_message: float
    after_upkeep_bytes_per_message: float


def _file_bytes(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.stat().st_size


async def storage(messages: int) -> StorageFigures:
    from bot.store.sqlite import SqliteStore

    def answer(request: dict[str, Any]) -> Reply:
        text = json.dumps(request["messages"][-1]["content"])
        flagged = "idiot" in text
        return Reply(
            verdict_json(int(flagged), ["HB1.a"] if flagged else [], "high", "Insult (HB1.a)." if flagged else "Fine."),
            thinking=REASONING,
        )

    fake = await FakeOllama(responder=answer).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db, lines = Path(tmp) / "storage.db", Path(tmp) / "chat.jsonl"
            lines.write_text("".join(chat_line(i) + "\n" for i in range(messages)), encoding="utf-8")
            await _seed(REPO, db)
            empty = _file_bytes(db)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "adapters.console.cli",
                "replay",
                str(lines),
                "--quiet-effects",
                cwd=REPO,
                env=_env(REPO, db, fake.host),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(err.decode()[-1000:])
            decided = _file_bytes(db) - empty
            store = await SqliteStore.open(db)
            try:
                # What the running bot's upkeep does a day later: clean reasoning goes, pages go back.
                later = utcnow() + timedelta(days=2)
                while await store.forget_clean_reasoning(later, 1000) == 1000:
                    pass
                while await store.reclaim_space(1 << 16) > 0:
                    pass
            finally:
                await store.close()
            kept = _file_bytes(db) - empty
            return StorageFigures(
                messages=messages,
                input_bytes_per_message=lines.stat().st_size / messages,
                decided_bytes_per_message=decided / messages,
                after_upkeep_bytes_per_message=kept / messages,
            )
    finally:
        await fake.stop()


# ---------------------------------------------------------------- part 3


@dataclass
class AppealFigures:
    backlog: int
    latency_s: float
    single_call_s: list[float] = field(default_factory=list)
    file_returns_s: list[float] = field(default_factory=list)
    second_opinion_s: list[float] = field(default_factory=list)
    backlog_at_each: list[int] = field(default_factory=list)


async def appeals_behind_a_backlog(backlog: int, runs: int, latency: float) -> AppealFigures:
    from bot.bootstrap import bootstrap
    from bot.classifier import ClassificationRequest
    from bot.domain import EffectKind, EffectOutcome, EffectResult, Effort
    from bot.notices import SecondOpinion
    from bot.settings import ModbotSettings
    from bot.store.ports import PolicyContent
    from bot.store.sqlite import SqliteStore
    from bot.workflow import Actor

    class Adapter:
        platform = "console"
        supported_effects = frozenset(EffectKind)

        def __init__(self) -> None:
            self.arrived: dict[str, float] = {}
            self.event = asyncio.Event()

        async def execute(self, effect: Any, context: Any) -> EffectResult:
            return EffectResult(outcome=EffectOutcome.DONE)

        async def post(self, server: ServerSettings, notice: Any) -> EffectResult:
            if isinstance(notice, SecondOpinion):
                self.arrived[notice.appeal.case_id] = time.monotonic()
                self.event.set()
            return EffectResult(outcome=EffectOutcome.DONE)

    figures = AppealFigures(backlog=backlog, latency_s=latency)
    fake = await FakeOllama(slots=2, latency=latency).start()
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteStore.open(Path(tmp) / "appeals.db")
        policy_text = (REPO / "policies" / "harassment.md").read_text(encoding="utf-8")
        policy = await store.policies.add_version(
            "console", SERVER, PolicyContent(name="harassment", text=policy_text), "bench"
        )
        await store.settings.put(
            ServerSettings(platform="console", server_id=SERVER, mod_channel_id="mods", moderator_role_ids=("mods",)),
            utcnow(),
        )
        adapter = Adapter()
        settings = ModbotSettings(db=Path(tmp) / "appeals.db", ollama_host=fake.host, model_concurrency=2)
        app = await bootstrap(settings, {"console": adapter}, store=store, run_jobs=False)  # type: ignore[dict-item]
        try:
            async with app:
                flagged = [
                    Message(
                        platform="console",
                        server_id=SERVER,
                        channel_id="c1",
                        message_id=f"flag{i}",
                        author=Author(id=f"author{i}"),
                        text=f"you idiot number {i}",
                    )
                    for i in range(runs)
                ]
                for m in flagged:
                    await app.pipeline.submit(m)
                await app.pipeline.drain()
                cases = [await store.cases.for_message("console", SERVER, m.message_id) for m in flagged]
                # The limit: one high-effort call through the same client, nothing else running.
                probe = ClassificationRequest(policy, flagged[0], Effort.HIGH, ())
                for _ in range(5):
                    t0 = time.monotonic()
                    await app.classifier.classify(probe)
                    figures.single_call_s.append(time.monotonic() - t0)
                await asyncio.gather(
                    *(
                        app.pipeline.submit(
                            Message(
                                platform="console",
                                server_id=SERVER,
                                channel_id=f"c{i % 20}",
                                message_id=f"bulk{i}",
                                author=Author(id=f"u{i % 500}"),
                                text=f"{CHAT[i % len(CHAT)]} #{i}",
                            )
                        )
                        for i in range(backlog)
                    )
                )
                for case, message in zip(cases, flagged, strict=True):
                    assert case is not None
                    author = Actor(id=message.author.id, platform="console", server_id=SERVER)
                    figures.backlog_at_each.append((await store.queue_backlog()).depth)
                    t0 = time.monotonic()
                    await app.appeals.file(case.id, author, "I was quoting someone")
                    figures.file_returns_s.append(time.monotonic() - t0)
                    while case.id not in adapter.arrived:
                        adapter.event.clear()
                        await adapter.event.wait()
                    figures.second_opinion_s.append(adapter.arrived[case.id] - t0)
        finally:
            await app.aclose()
            await fake.stop()
    return figures


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure part 1 against")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--part", choices=("1", "2", "3", "all"), default="all")
    args = parser.parse_args()
    small, large = (1_000, 4_000) if args.quick else (4_000, 24_000)
    guard = 120.0
    out: dict[str, Any] = {"machine": machine()}
    print("machine:", out["machine"])

    if args.part in ("1", "all"):
        trees = [("this tree", REPO)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
        out["memory"] = {}
        for name, tree in trees:
            runs = [await memory_run(tree, small, large, guard) for _ in range(args.runs)]
            growth = [(r.rss_24k - r.rss_4k) / (large - small) for r in runs]
            stops = [r.stop_backlog_s for r in runs if r.stop_backlog_s is not None]
            idles = [r.stop_idle_s for r in runs if r.stop_idle_s is not None]
            print(f"part 1, {name} ({tree}), model down, {args.runs} runs (min / median / max)")
            print(f"  RSS with {small:,} queued       {fmt([r.rss_4k for r in runs], ' MB', 1e-6, 1)}")
            print(f"  RSS with {large:,} queued      {fmt([r.rss_24k for r in runs], ' MB', 1e-6, 1)}")
            print(
                f"  ratio {large // 1000}k / {small // 1000}k               {fmt([r.rss_24k / r.rss_4k for r in runs])}"
            )
            print(f"  growth per queued message  {fmt(growth, ' bytes', 1, 0)}")
            print(f"  exit codes after SIGTERM   {[r.exit_code for r in runs]}")
            if stops and idles:
                print(f"  SIGTERM to exit, {large:,} queued {fmt(stops, ' s')}")
                print(f"  SIGTERM to exit, idle (limit) {fmt(idles, ' s')}")
                print(f"  ratio backlog / idle       {fmt([s / statistics.median(idles) for s in stops])}")
            else:
                print(f"  did not stop within {guard:.0f} s in {args.runs - len(stops)} of {args.runs} runs")
            out["memory"][name] = [r.__dict__ for r in runs]

    if args.part in ("2", "all"):
        figures = await storage(1_000 if args.quick else 4_000)
        print(f"part 2, storage: {figures.messages:,} messages replayed, one in ten flagged")
        print(f"  input, bytes per message (limit)      {figures.input_bytes_per_message:,.0f}")
        print(
            f"  database, bytes per decided message   {figures.decided_bytes_per_message:,.0f}"
            f"  ({figures.decided_bytes_per_message / figures.input_bytes_per_message:.1f} x input)"
        )
        print(
            f"  after the upkeep (a day later)        {figures.after_upkeep_bytes_per_message:,.0f}"
            f"  ({figures.after_upkeep_bytes_per_message / figures.input_bytes_per_message:.1f} x input)"
        )
        out["storage"] = figures.__dict__

    if args.part in ("3", "all"):
        backlog = 2_000 if args.quick else 10_000
        figures3 = await appeals_behind_a_backlog(backlog, max(args.runs, 5), latency=0.2)
        limit = statistics.median(figures3.single_call_s)
        call_ms = figures3.latency_s * 1000
        print(f"part 3, appeals with {backlog:,} messages queued, FakeOllama 2 slots, {call_ms:.0f} ms a call")
        print(f"  one high-effort call alone (limit)   {fmt(figures3.single_call_s, ' s', digits=3)}")
        print(f"  file() returns                        {fmt(figures3.file_returns_s, ' s', digits=3)}")
        print(f"  second opinion in the mod channel     {fmt(figures3.second_opinion_s, ' s', digits=3)}")
        print(f"  ratio to one call                     {fmt([s / limit for s in figures3.second_opinion_s])}")
        print(f"  messages waiting at each filing       {figures3.backlog_at_each}")
        out["appeals"] = figures3.__dict__

    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
