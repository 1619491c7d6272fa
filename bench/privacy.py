"""What privacy costs: zeroed deletes on the write path, retention that removes every copy, erasure.

    python bench/privacy.py [--messages N] [--cases N] [--runs R] [--json OUT]

1. The write path with `PRAGMA secure_delete = ON` (as the store opens) against OFF. The
   pipeline's durable writes for each message (bench/pipeline.py's store ceiling: enqueue,
   record_decision with a verdict of realistic size, a flag's claim and result for one in
   ten), issued with full concurrency. Limit: the same writes with secure_delete OFF, in the
   same round; runs alternate, so both see the same machine. Figure: ON / OFF throughput.
2. Retention of N cases past their limit, each with a verdict (rationale, reasoning, raw
   output), a flag whose reason repeats the rationale, and one case in ten appealed: the
   purge as it is now (text, rationale, reasoning, raw output, statements, effect reasons,
   then the WAL truncated). Limit: the purge as it was (the text column only) on an
   identical copy of the file, in the same round. Figure: now / before, in seconds.
3. Erasure of one member's cases (1 % of N) in a server of N cases, the WAL truncated after.
   Limit: reading the same member's records (what `privacy export` reads) from the same file
   just before. Figure: erasure / that read, in seconds.

Nothing here asserts speed; it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.pipeline import PLATFORM, SERVER, make_messages, open_store  # noqa: E402
from bot.domain import (  # noqa: E402
    Author,
    Case,
    CaseStatus,
    Confidence,
    Effect,
    EffectKind,
    EffectOutcome,
    Message,
    Verdict,
)
from bot.pipeline import new_case_id  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402

RATIONALE = "The message calls another member a worthless idiot and tells them to leave (HB1.a). " * 2
REASONING = "The policy's rule HB1.a covers insults aimed at a member; this text is one. " * 10
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def verdict(violation: bool) -> Verdict:
    return Verdict(
        policy="harassment",
        policy_version=1,
        violation=violation,
        rule_ids=("HB1.a",) if violation else (),
        confidence=Confidence.HIGH,
        rationale=RATIONALE if violation else "No rule applies.",
        reasoning=REASONING,
        raw_output=json.dumps({"violation": int(violation), "rationale": RATIONALE}),
        model="bench",
    )


# ---------------------------------------------------------------- 1. the write path


async def writes(n: int, prefix: str, secure_delete: bool) -> tuple[float, float]:
    """Messages per second through the store's durable writes, and CPU microseconds per message.

    The CPU figure counts this process's threads (aiosqlite's included): it holds still when
    other processes share the machine; the wall figure does not.
    """
    with tempfile.TemporaryDirectory(prefix="modbot-bench-") as tmp:
        store = await open_store(Path(tmp), policies=1)
        if not secure_delete:
            await store.connection.execute("PRAGMA secure_delete = OFF")
        plans = []
        for i, m in enumerate(make_messages(n, prefix)):
            bad = i % 10 == 0
            case = Case(
                id=new_case_id(),
                message=m,
                status=CaseStatus.OPEN if bad else CaseStatus.CLEAN,
                verdicts=(verdict(bad),),
            )
            flag = Effect(kind=EffectKind.FLAG, policy="harassment", reason=RATIONALE)
            plans.append((m, case, [(flag, EffectOutcome.PENDING)] if bad else []))

        async def one(m: Message, case: Case, effects: list[tuple[Effect, EffectOutcome]]) -> None:
            queue_id = await store.enqueue(m)
            assert queue_id is not None
            await store.record_decision(queue_id, case, effects)
            if effects:
                await store.effects.claim(case.id, 1)
                await store.effects.set_outcome(case.id, 1, EffectOutcome.DONE, "in memory", finish_queue_id=queue_id)

        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(*p) for p in plans))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        await store.close()
    return n / wall, cpu / n * 1e6


async def write_path(n: int, runs: int) -> dict[str, Any]:
    await writes(min(n, 500), "warm", True)
    on: list[tuple[float, float]] = []
    off: list[tuple[float, float]] = []
    for i in range(runs):
        off.append(await writes(n, f"off{i}", secure_delete=False))
        on.append(await writes(n, f"on{i}", secure_delete=True))
    pairs = list(zip(on, off, strict=True))
    return {
        "messages": n,
        "runs": runs,
        "secure_delete_on_msg_per_s": spread([w for w, _ in on]),
        "secure_delete_off_msg_per_s": spread([w for w, _ in off]),
        "ratio_on_to_off_wall": spread([a[0] / b[0] for a, b in pairs]),
        "secure_delete_on_cpu_us_per_msg": spread([c for _, c in on]),
        "secure_delete_off_cpu_us_per_msg": spread([c for _, c in off]),
        # Throughput by CPU: OFF's CPU per message / ON's (below 1: ON costs more).
        "ratio_on_to_off_cpu": spread([b[1] / a[1] for a, b in pairs]),
    }


# ---------------------------------------------------------------- 2 and 3. retention and erasure


async def old_cases(path: Path, n: int, members: int) -> None:
    """N decided cases at T0 by `members` authors, with verdicts, flags and (one in ten) appeals."""
    store = await SqliteStore.open(path, now=lambda: T0)
    try:
        plans = []
        for i in range(n):
            author = f"member-{i % members}"
            m = Message(
                platform=PLATFORM,
                server_id=SERVER,
                channel_id="general",
                message_id=f"m{i}",
                author=Author(id=author, name=author),
                text=f"message {i}: you worthless idiot, leave this server now",
                sent_at=T0,
            )
            case = Case(id=f"C{i}", message=m, status=CaseStatus.OPEN, verdicts=(verdict(True),), created_at=T0)
            plans.append((m, case, [(Effect(kind=EffectKind.FLAG, reason=RATIONALE), EffectOutcome.DONE)]))
        for start in range(0, n, 1000):
            ids = await asyncio.gather(*(store.enqueue(m) for m, _, _ in plans[start : start + 1000]))
            await asyncio.gather(
                *(
                    store.record_decision(q, c, e)
                    for q, (_, c, e) in zip(ids, plans[start : start + 1000], strict=True)
                    if q is not None
                )
            )
        for i in range(0, n, 10):
            await store.appeals.add(f"C{i}", f"member-{i % members}", "it was a joke " * 20, T0)
    finally:
        await store.close()


async def timed_purge(path: Path, old_style: bool) -> float:
    store = await SqliteStore.open(path, now=lambda: T0 + timedelta(days=40))
    try:
        cutoff = T0 + timedelta(days=1)
        started = time.perf_counter()
        if old_style:
            async with store.raw_transaction() as conn:
                await conn.execute(
                    "UPDATE cases SET text = NULL, text_purged_at = ? WHERE platform = ? AND server_id = ?"
                    " AND text IS NOT NULL AND created_at < ?",
                    (cutoff.isoformat(), PLATFORM, SERVER, cutoff.isoformat()),
                )
        else:
            await store.cases.purge_text(PLATFORM, SERVER, cutoff, cutoff)
        return time.perf_counter() - started
    finally:
        await store.close()


async def timed_erasure(path: Path, member: str) -> tuple[float, float]:
    """Seconds to read the member's records, then seconds to erase them."""
    store = await SqliteStore.open(path, now=lambda: T0 + timedelta(days=2))
    try:
        started = time.perf_counter()
        records = await store.privacy.member_records(PLATFORM, SERVER, member)
        read = time.perf_counter() - started
        assert records.cases
        started = time.perf_counter()
        async with store.transaction() as tx:
            await tx.privacy.erase_member(PLATFORM, SERVER, member, T0 + timedelta(days=2))
        await store.privacy.scrub_free_space()
        return read, time.perf_counter() - started
    finally:
        await store.close()


async def retention_and_erasure(n: int, runs: int) -> dict[str, Any]:
    members = 100
    now_s: list[float] = []
    before_s: list[float] = []
    erase_s: list[float] = []
    read_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="modbot-bench-") as tmp:
        seed = Path(tmp) / "seed.db"
        await old_cases(seed, n, members)
        for i in range(runs):
            copies = {name: Path(tmp) / f"{name}{i}.db" for name in ("now", "before", "erase")}
            for target in copies.values():
                shutil.copy2(seed, target)
            before_s.append(await timed_purge(copies["before"], old_style=True))
            now_s.append(await timed_purge(copies["now"], old_style=False))
            read, erase = await timed_erasure(copies["erase"], "member-7")
            read_s.append(read)
            erase_s.append(erase)
    return {
        "cases": n,
        "runs": runs,
        "purge_now_s": spread(now_s),
        "purge_text_only_s": spread(before_s),
        "ratio_purge_now_to_text_only": spread([a / b for a, b in zip(now_s, before_s, strict=True)]),
        "erased_member_cases": n // members,
        "erase_s": spread(erase_s),
        "read_member_records_s": spread(read_s),
        "ratio_erase_to_read": spread([a / b for a, b in zip(erase_s, read_s, strict=True)]),
    }


def machine() -> dict[str, Any]:
    import os

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {
        "machine": machine(),
        "write_path": await write_path(args.messages, args.runs),
        "retention_and_erasure": await retention_and_erasure(args.cases, args.runs),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
