"""`modbot run` and `modbot replay` as real subprocesses: hostile input, stops, one bot per database, edits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import pytest
import pytest_asyncio

from bot.store.sqlite import SqliteStore
from tests.fakes.ollama_fake import FakeOllama
from tests.helpers import REPO, add_policy
from tests.helpers_hostile import hostile_lines, hostile_texts

pytestmark = pytest.mark.slow

# Lines of the hostile corpus that are fine once made valid at the boundary (a lone
# surrogate, a NUL, a byte-order mark); every other one must be refused.
ACCEPTED = {"line-lone-surrogate", "line-nul-escape", "line-bom"}
HANG_GUARD = 60  # seconds: only ever reached when a process does not stop


def line(message_id: str, text: str, **extra: object) -> str:
    return json.dumps({"id": message_id, "server": "s", "channel": "c", "author": "u", "text": text, **extra})


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "run.db"
    store = await SqliteStore.open(path)
    await add_policy(store, "s")
    await store.close()
    yield path


def env_for(model_host: str, db: Path, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "OLLAMA_HOST": model_host,
        "MODBOT_DB": str(db),
        "MODBOT_LOG_LEVEL": "INFO",
        "MODBOT_MODEL_CONCURRENCY": "2",
        **more,
    }


async def modbot(*args: str, env: dict[str, str], stdin: int | IO[Any] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.console.cli",
        *args,
        cwd=REPO,
        env=env,
        stdin=stdin if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def wait_for_rows(db: Path, sql: str, at_least: int) -> None:
    for _ in range(HANG_GUARD * 10):
        if rows(db, sql)[0][0] >= at_least:  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{sql} never reached {at_least}")


def closed_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed


# ---------------------------------------------------------------- hostile input


async def test_run_reads_a_regular_file_on_stdin_and_skips_each_bad_line_by_name(
    db: Path, tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    corpus = hostile_lines()
    lines = []
    for i, case in enumerate(corpus):
        lines += [line(f"ok{i}", f"fine line {i}"), case.value]
    lines.append(line("last", "you idiot"))
    file = tmp_path / "in.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    with file.open("rb") as stdin:
        proc = await modbot("run", env=env_for(fake_ollama.host, db), stdin=stdin)
        out, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD)
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    for n, case in enumerate(corpus):
        named = f"stdin:{2 * n + 2}:" in stderr
        assert named is (case.name not in ACCEPTED), f"{case.name}: {stderr[-2000:]}"
    decided = {json.loads(row)["message_id"] for row in out.decode().splitlines()}
    good = {f"ok{i}" for i in range(len(corpus))} | {"last", "m1", "m2", "m3"}
    assert decided == good
    assert rows(db, "SELECT COUNT(*) FROM queue WHERE state = 'done'") == [(len(good),)]


async def test_replay_refuses_a_file_with_bad_lines_naming_every_one(
    db: Path, tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    corpus = [c for c in hostile_lines() if c.name not in ACCEPTED]
    file = tmp_path / "bad.jsonl"
    body = "\n".join([line("ok", "fine"), *(c.value for c in corpus)]).encode("utf-8") + b"\n\xff\xfe not utf-8\n"
    file.write_bytes(body)
    proc = await modbot("replay", str(file), "--db", str(db), env=env_for(fake_ollama.host, db))
    _, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD)
    stderr = err.decode()
    assert proc.returncode == 2 and "Traceback" not in stderr
    assert "nothing was replayed" in stderr
    for n in range(len(corpus)):
        assert f"{file}:{n + 2}:" in stderr
    assert f"{file}:{len(corpus) + 2}: not UTF-8" in stderr
    assert rows(db, "SELECT COUNT(*) FROM queue") == [(0,)] and fake_ollama.chat_requests() == []


async def test_hostile_texts_are_decided_and_printed_as_valid_json(
    db: Path, tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    texts = hostile_texts()
    file = tmp_path / "texts.jsonl"
    file.write_text(
        "".join(
            json.dumps({"id": f"t{i}", "server": "s", "channel": "c", "author": "u", "text": c.value}) + "\n"
            for i, c in enumerate(texts)
        ),
        encoding="utf-8",
    )
    proc = await modbot("replay", str(file), "--db", str(db), "--json", env=env_for(fake_ollama.host, db))
    out, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD * 3)
    assert proc.returncode == 0, err.decode()[-3000:]
    printed = [json.loads(row) for row in out.decode().splitlines()]
    assert sorted(r["message_id"] for r in printed) == sorted(f"t{i}" for i in range(len(texts)))


async def test_a_failing_intake_ends_the_run_with_an_error(db: Path, tmp_path: Path, fake_ollama: FakeOllama) -> None:
    unreadable = os.open(tmp_path / "write-only", os.O_WRONLY | os.O_CREAT)  # reading it fails: EBADF
    try:
        proc = await modbot("run", env=env_for(fake_ollama.host, db), stdin=unreadable)
        _, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD)
    finally:
        os.close(unreadable)
    assert proc.returncode == 1
    assert "stdin could not be read" in err.decode()


# ---------------------------------------------------------------- stopping


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_stops_the_bot_with_the_model_down_and_the_backlog_stays_queued(
    db: Path, fake_ollama: FakeOllama, signum: signal.Signals
) -> None:
    backlog = 2000
    proc = await modbot("run", env=env_for(closed_port(), db), stdin=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write("".join(line(f"m{i}", f"message {i}") + "\n" for i in range(backlog)).encode())
    await proc.stdin.drain()
    await wait_for_rows(db, "SELECT COUNT(*) FROM queue", backlog)  # accepted: durable
    proc.send_signal(signum)
    _, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD)  # would hang if it drained
    assert proc.returncode == 0, err.decode()[-2000:]
    assert rows(db, "SELECT state, COUNT(*) FROM queue GROUP BY state") == [("pending", backlog)]
    assert rows(db, "SELECT COUNT(*) FROM cases") == [(0,)]

    # The next start, with the model back, decides every one of them, once.
    again = await modbot("run", env=env_for(fake_ollama.host, db))
    _, err = await asyncio.wait_for(again.communicate(), HANG_GUARD * 3)
    assert again.returncode == 0, err.decode()[-2000:]
    assert rows(db, "SELECT state, COUNT(*) FROM queue GROUP BY state") == [("done", backlog)]
    assert rows(db, "SELECT COUNT(DISTINCT message_id), COUNT(*) FROM cases") == [(backlog, backlog)]


# ---------------------------------------------------------------- one bot per database


async def test_a_second_bot_on_the_same_database_refuses_and_admin_commands_still_work(
    db: Path, fake_ollama: FakeOllama
) -> None:
    env = env_for(fake_ollama.host, db)
    first = await modbot("run", env=env, stdin=asyncio.subprocess.PIPE)
    assert first.stdin is not None
    first.stdin.write((line("m1", "you idiot") + "\n").encode())
    await first.stdin.drain()
    await wait_for_rows(db, "SELECT COUNT(*) FROM cases", 1)

    second = await modbot("run", env=env, stdin=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(second.communicate(b""), HANG_GUARD)
    assert second.returncode == 2
    assert "another modbot process is already running" in err.decode() and "modbot run, pid" in err.decode()
    replay = await modbot("replay", os.devnull, "--db", str(db), env=env)
    _, err = await asyncio.wait_for(replay.communicate(), HANG_GUARD)
    assert replay.returncode == 2 and "another modbot process is already running" in err.decode()

    # Admin commands work beside the running bot.
    review = ("review", "list", "--server", "s", "--actor", "mod", "--admin")
    for args in (review, ("settings", "show", "--server", "s"), ("status",)):
        admin = await modbot(*args, env=env)
        _, err = await asyncio.wait_for(admin.communicate(), HANG_GUARD)
        assert admin.returncode == 0, (args, err.decode())

    first.send_signal(signal.SIGTERM)
    await asyncio.wait_for(first.communicate(), HANG_GUARD)
    assert first.returncode == 0
    # Released on exit: the next bot starts.
    third = await modbot("run", env=env)
    _, err = await asyncio.wait_for(third.communicate(), HANG_GUARD)
    assert third.returncode == 0, err.decode()


# ---------------------------------------------------------------- edits in the input


async def test_replay_judges_each_message_as_it_finally_reads(
    db: Path, tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    file = tmp_path / "edits.jsonl"
    file.write_text(
        "\n".join(
            [
                line("m1", "see you tomorrow"),
                line("m2", "hello"),
                line("m1", "see you tomorrow, idiot"),  # same id, other text: an edit
                line("m2", "hello there", edited=True),
                line("m2", "hello there", edited=True),  # the same revision again
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    env = env_for(fake_ollama.host, db)
    proc = await modbot("replay", str(file), "--db", str(db), "--json", env=env)
    out, err = await asyncio.wait_for(proc.communicate(), HANG_GUARD)
    assert proc.returncode == 0, err.decode()
    printed = {r["message_id"]: r for r in map(json.loads, out.decode().splitlines())}
    assert (printed["m1"]["revision"], printed["m1"]["violation"]) == (2, True)
    assert (printed["m2"]["revision"], printed["m2"]["violation"]) == (2, False)
    assert len(fake_ollama.chat_requests()) == 2  # the latest revision of each, once
    assert rows(db, "SELECT state, COUNT(*) FROM queue GROUP BY state ORDER BY state") == [
        ("done", 2),
        ("superseded", 2),
    ]
