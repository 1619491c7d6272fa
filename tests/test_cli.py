"""The `modbot` command end to end: a subprocess, the real ollama client, a fake Ollama."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

from tests.fakes.ollama_fake import FakeOllama, Reply, verdict_json
from tests.helpers import REPO, run_modbot

HARASSMENT = str(REPO / "policies" / "harassment.md")
SPAM = str(REPO / "policies" / "spam-scams.md")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_lines(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


async def test_check_prints_one_verdict_per_policy(fake_ollama: FakeOllama) -> None:
    code, out, err = await run_modbot(
        "check", "-p", HARASSMENT, "-p", SPAM, "you idiot", env={"OLLAMA_HOST": fake_ollama.host}
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("harassment v1 [low]: VIOLATION HB1.a (high)")
    assert lines[1].startswith("spam-scams v1 [low]: VIOLATION SP1.a")
    assert {r["think"] for r in fake_ollama.chat_requests()} == {"low"}


async def test_check_json_and_effort(fake_ollama: FakeOllama) -> None:
    fake_ollama.responder = lambda req: Reply(verdict_json(0, ["HB0.a"], "medium", "Banter (HB0.a)."))
    code, out, _ = await run_modbot(
        "check", "--json", "--effort", "high", "-p", HARASSMENT, "gg you goblin", env={"OLLAMA_HOST": fake_ollama.host}
    )
    assert code == 0
    record = json.loads(out)
    assert {k: record[k] for k in ("policy", "violation", "rule_ids", "confidence", "rationale")} == {
        "policy": "harassment",
        "violation": False,
        "rule_ids": ["HB0.a"],
        "confidence": "medium",
        "rationale": "Banter (HB0.a).",
    }
    assert fake_ollama.chat_requests()[0]["think"] == "high"


async def test_check_defaults_to_every_policy_in_the_library(fake_ollama: FakeOllama) -> None:
    code, out, _ = await run_modbot("check", "--json", "hello", env={"OLLAMA_HOST": fake_ollama.host})
    assert code == 0
    names = sorted(json.loads(line)["policy"] for line in out.splitlines())
    assert names == sorted(p.stem for p in (REPO / "policies").glob("*.md"))


async def test_check_with_no_model_server_says_where_and_how_in_one_line() -> None:
    host = f"http://127.0.0.1:{free_port()}"
    code, out, err = await run_modbot("check", "-p", HARASSMENT, "hi", env={"OLLAMA_HOST": host})
    assert code != 0 and out == ""
    assert err.strip().count("\n") == 0, err
    assert host.removeprefix("http://") in err and "ollama serve" in err


async def test_check_with_the_model_not_pulled_says_ollama_pull(fake_ollama: FakeOllama) -> None:
    fake_ollama.missing_models = {"gpt-oss-safeguard:20b"}
    code, _, err = await run_modbot("check", "-p", HARASSMENT, "hi", env={"OLLAMA_HOST": fake_ollama.host})
    assert code != 0 and "ollama pull gpt-oss-safeguard:20b" in err


async def test_check_rejects_a_malformed_policy_naming_file_and_line(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\nname: bad\ncolour: red\n---\n# Bad\n", encoding="utf-8")
    code, _, err = await run_modbot("check", "-p", str(bad), "hi", env={"OLLAMA_HOST": fake_ollama.host})
    assert code == 2
    assert f"{bad}:3: error: unknown front matter key 'colour'" in err
    assert fake_ollama.chat_requests() == []


async def test_replay_runs_the_pipeline_and_prints_one_line_per_message(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    rows: list[dict[str, object]] = [
        {"id": "1", "server": "s1", "channel": "c1", "author": "ann", "text": "good morning"},
        {"id": "2", "server": "s1", "channel": "c1", "author": "bob", "text": "you idiot", "reply_to": "1"},
        {"id": "3", "server": "s1", "channel": "c1", "author": "bot", "text": "beep", "author_is_bot": True},
        {
            "id": "4",
            "server": "s2",
            "channel": "c9",
            "author": "cy",
            "text": "",
            "author_roles": ["r1"],
            "ts": "2026-11-01T10:00:00Z",
        },
    ]
    file = write_lines(tmp_path / "in.jsonl", rows)
    db = tmp_path / "r.db"
    code, out, err = await run_modbot(
        "replay", str(file), "--db", str(db), "--json", "-p", HARASSMENT, env={"OLLAMA_HOST": fake_ollama.host}
    )
    assert code == 0, err
    records = {r["message_id"]: r for r in map(json.loads, out.splitlines())}
    assert set(records) == {"1", "2", "3", "4"}
    assert records["2"]["violation"] is True and records["2"]["rule_ids"] == ["HB1.a"]
    assert records["2"]["effects"] == ["flag"] and records["2"]["case_id"]
    assert records["1"]["violation"] is False and records["1"]["effects"] == []
    assert records["3"]["skipped_reason"] == "author is a bot"
    assert records["4"]["skipped_reason"] == "empty message"
    assert all(records[k]["skipped_reason"] is None for k in ("1", "2"))
    assert len(fake_ollama.chat_requests()) == 2

    # Replaying the same file decides nothing again: same cases, no model calls.
    code, out2, _ = await run_modbot(
        "replay", str(file), "--db", str(db), "--json", "-p", HARASSMENT, env={"OLLAMA_HOST": fake_ollama.host}
    )
    assert code == 0 and len(fake_ollama.chat_requests()) == 2
    again = {r["message_id"]: r["case_id"] for r in map(json.loads, out2.splitlines())}
    assert again == {k: v["case_id"] for k, v in records.items()}

    code, out3, _ = await run_modbot("export", "--db", str(db))
    exported = {r["message_id"]: r for r in map(json.loads, out3.splitlines())}
    assert set(exported) == {"1", "2", "3", "4"}
    two = exported["2"]
    assert {
        k: two[k] for k in ("case_id", "server_id", "violation", "status", "policy", "policy_version", "rule_ids")
    } == {
        "case_id": records["2"]["case_id"],
        "server_id": "s1",
        "violation": True,
        "status": "open",
        "policy": "harassment",
        "policy_version": 1,
        "rule_ids": ["HB1.a"],
    }
    assert two["rationale"]


async def test_replay_readable_output_and_printed_effects(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    file = write_lines(
        tmp_path / "in.jsonl",
        [{"id": "9", "server": "s1", "channel": "c1", "author": "bob", "text": "you idiot @everyone"}],
    )
    code, out, err = await run_modbot(
        "replay", str(file), "--db", str(tmp_path / "x.db"), "-p", HARASSMENT, env={"OLLAMA_HOST": fake_ollama.host}
    )
    assert code == 0
    assert "s1/9" in out and "VIOLATION HB1.a -> flag[done]" in out
    assert "[effect] case" in err and " flag " in err


async def test_replay_refuses_a_bad_file_naming_every_bad_line_and_changes_nothing(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text(
        '{"id": "1", "server": "s", "channel": "c", "author": "a", "text": "ok"}\n'
        '{"id": "2", "server": "s", "channel": "c", "text": "no author"}\n'
        "not json\n"
        '{"id": "4", "server": "s", "channel": "c", "author": "a", "text": "x", "colour": 1}\n',
        encoding="utf-8",
    )
    db = tmp_path / "bad.db"
    code, out, err = await run_modbot("replay", str(file), "--db", str(db), env={"OLLAMA_HOST": fake_ollama.host})
    assert code == 2 and out == ""
    assert f"{file}:2: author: field required" in err
    assert f"{file}:3: not JSON" in err
    assert f"{file}:4: colour: extra inputs are not permitted" in err
    assert not db.exists() and fake_ollama.chat_requests() == []


async def test_replay_keeps_retrying_while_the_model_server_is_down_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    file = write_lines(
        tmp_path / "in.jsonl",
        [{"id": str(i), "server": "s1", "channel": "c1", "author": "a", "text": f"message {i}"} for i in range(3)],
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.console.cli",
        "replay",
        str(file),
        "--db",
        str(tmp_path / "d.db"),
        "--json",
        "-p",
        HARASSMENT,
        cwd=REPO,
        env={**__import__("os").environ, "OLLAMA_HOST": f"http://127.0.0.1:{port}"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None and proc.stdout is not None
    said = ""
    while "retrying" not in said:
        said += (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    assert f"127.0.0.1:{port}" in said and "ollama serve" in said
    fake = await FakeOllama().start(port)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await fake.stop()
    assert proc.returncode == 0
    assert sorted(json.loads(line)["message_id"] for line in out.decode().splitlines()) == ["0", "1", "2"]


async def test_export_without_a_database_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = await run_modbot("export", "--db", str(tmp_path / "none.db"))
    assert code == 2 and "no database at" in err


async def test_run_moderates_stdin_until_it_ends(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    db = str(tmp_path / "run.db")
    env = {"OLLAMA_HOST": fake_ollama.host, "MODBOT_DB": db}
    code, _, err = await run_modbot(
        "policy", "install", "harassment", "--server", "s1", "--actor", "owner", "--admin", env=env
    )
    assert code == 0, err
    stdin = (
        b'{"id": "1", "server": "s1", "channel": "c1", "author": "ann", "text": "hello all"}\n'
        b"this is not json\n"
        b'{"id": "2", "server": "s1", "channel": "c1", "author": "bob", "text": "you idiot"}\n'
    )
    code, out, err = await run_modbot("run", env=env, stdin=stdin)
    assert code == 0, err
    decided = {r["message_id"]: r for r in map(json.loads, out.splitlines())}
    assert set(decided) == {"1", "2"}
    assert decided["2"]["violation"] is True and decided["2"]["effects"] == ["flag"]
    assert "stdin:2: not JSON" in err and "line not submitted" in err
    assert "hello all" not in err and "you idiot" not in err  # no message text in the logs
