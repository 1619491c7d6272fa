"""Crash safety: `modbot replay` killed with SIGKILL mid-run, then run again."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.fakes.ollama_fake import FakeOllama
from tests.helpers import REPO

MESSAGES = 60


@pytest.mark.slow
async def test_sigkill_mid_run_then_restart_decides_every_message_exactly_once(tmp_path: Path) -> None:
    fake = await FakeOllama(slots=2, latency=0.03).start()
    rows = [
        {
            "id": f"m{i}",
            "server": "s1",
            "channel": f"c{i % 3}",
            "author": f"u{i % 7}",
            # Each insult differs in its letters (digits spelled a-j): no two are near-repeats
            # that would join one flag, so each violation has exactly one effect.
            "text": f"message number {i}"
            + (f" you idiot {''.join(chr(97 + int(d)) for d in str(i))}" if i % 4 == 0 else ""),
        }
        for i in range(MESSAGES)
    ]
    file = tmp_path / "in.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    db = tmp_path / "crash.db"
    env = {**os.environ, "OLLAMA_HOST": fake.host, "MODBOT_MODEL_CONCURRENCY": "2"}
    args = [
        sys.executable,
        "-m",
        "adapters.console.cli",
        "replay",
        str(file),
        "--db",
        str(db),
        "--json",
        "-p",
        str(REPO / "policies" / "harassment.md"),
    ]
    try:
        first = await asyncio.create_subprocess_exec(
            *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert first.stdout is not None and first.stderr is not None
        decided_before_kill = 0
        while decided_before_kill < 15:
            line = await asyncio.wait_for(first.stdout.readline(), 30)
            assert line, "replay ended before it could be killed"
            decided_before_kill += 1
        first.send_signal(signal.SIGKILL)
        await first.wait()
        first_err = (await first.stderr.read()).decode()
        assert first.returncode == -signal.SIGKILL

        with sqlite3.connect(db) as conn:
            done_at_kill = conn.execute("SELECT COUNT(*) FROM queue WHERE state = 'done'").fetchone()[0]
        assert 0 < done_at_kill < MESSAGES, "the kill must land mid-run"

        second = await asyncio.create_subprocess_exec(
            *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(second.communicate(), 120)
        assert second.returncode == 0, err.decode()
    finally:
        await fake.stop()

    printed = [json.loads(line) for line in out.decode().splitlines()]
    assert sorted(r["message_id"] for r in printed) == sorted(r["id"] for r in rows)

    with sqlite3.connect(db) as conn:
        per_message = conn.execute("SELECT message_id, COUNT(*) FROM cases GROUP BY message_id").fetchall()
        states = conn.execute("SELECT state, COUNT(*) FROM queue GROUP BY state").fetchall()
        violations = conn.execute("SELECT COUNT(*) FROM cases WHERE violation = 1").fetchone()[0]
        outcomes = dict(conn.execute("SELECT outcome, COUNT(*) FROM effects GROUP BY outcome").fetchall())
    assert len(per_message) == MESSAGES and all(count == 1 for _, count in per_message)
    assert states == [("done", MESSAGES)]
    assert violations == MESSAGES // 4
    assert set(outcomes) <= {"done", "interrupted"} and sum(outcomes.values()) == violations

    # Each effect was carried out at most once across both processes.
    executed = re.findall(r"\[effect\] case (\w+) flag", first_err + err.decode())
    assert len(executed) == len(set(executed))
    assert len(executed) == outcomes.get("done", 0)
