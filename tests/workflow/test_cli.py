"""The workflow's CLI: thin commands over the services, refusals as messages with exit code 2."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner, Result

import adapters.console.policy_admin_cli
import adapters.console.workflow_cli  # noqa: F401
from adapters.console.cli import app
from bot.domain import Case, CaseStatus, Effect, EffectKind, EffectOutcome
from bot.store.sqlite import SqliteStore
from tests.conftest import REPO
from tests.fakes.ollama_fake import FakeOllama, Reply, content_of, verdict_json
from tests.workflow.conftest import AUTHOR, DATA, SERVER, configure, policy_text, seed_case

T = TypeVar("T")
ADMIN = ["--actor", "admin-1", "--admin"]
MOD = ["--actor", "mod-1", "--role", "mods"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def with_store(db: Path, work: Callable[[SqliteStore], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        store = await SqliteStore.open(db)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def modbot(db: Path, *args: str) -> Result:
    env = {"MODBOT_DB": str(db), "MODBOT_POLICY_DIR": str(DATA), "OLLAMA_HOST": "http://127.0.0.1:9"}
    return CliRunner().invoke(app, list(args), env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(result: Result, *expected: str) -> str:
    assert result.exit_code == 2, result.output
    for text in expected:
        assert text in result.stderr, result.stderr
    return result.stderr


def seeded(db: Path, **kwargs: Any) -> Case:
    async def go(store: SqliteStore) -> Case:
        await configure(store)
        return await seed_case(store, **kwargs)

    return with_store(db, go)


def test_policy_lifecycle_from_the_command_line(db: Path, tmp_path: Path) -> None:
    assert "harassment (~" in ok(modbot(db, "policy", "templates"))
    refused(modbot(db, "policy", "install", "harassment", "-s", SERVER, "--actor", "nobody"), "nobody may not install")
    assert "harassment v1 on g1" in ok(modbot(db, "policy", "install", "harassment", "-s", SERVER, *ADMIN))
    ok(modbot(db, "settings", "set", "-s", SERVER, *ADMIN, 'moderator_role_ids=["mods"]', "mod_channel_id=C1"))

    v2 = tmp_path / "harassment.md"
    v2.write_text(policy_text().replace("Insulting a target", "Belittling a target"), encoding="utf-8")
    assert "harassment: v1 -> v2 on g1" in ok(modbot(db, "policy", "set", str(v2), "-s", SERVER, *MOD))
    assert "unchanged" in ok(modbot(db, "policy", "set", str(v2), "-s", SERVER, *MOD))
    assert "Belittling a target" in ok(modbot(db, "policy", "show", "-s", SERVER, "-n", "harassment"))
    assert "Insulting a target" in ok(modbot(db, "policy", "show", "-s", SERVER, "-n", "harassment", "-v", "1"))
    diff = ok(modbot(db, "policy", "diff", "-s", SERVER, "-n", "harassment", "1", "2"))
    assert "+- HB1.a: Belittling a target" in diff
    assert "v3 is the text of v1" in ok(
        modbot(db, "policy", "rollback", "-s", SERVER, "-n", "harassment", "--to", "1", *MOD)
    )
    ok(modbot(db, "policy", "disable", "-s", SERVER, "-n", "harassment", *MOD))
    ok(modbot(db, "policy", "mode", "-s", SERVER, "-n", "harassment", "shadow", *MOD))
    assert "harassment v3 disabled, shadow" in ok(modbot(db, "policy", "list", "-s", SERVER))
    history = ok(modbot(db, "policy", "history", "-s", SERVER, "-n", "harassment"))
    assert "mod-1 policy.rollback_to_v1: v2 -> v3" in history
    assert "admin-1 policy.set: - -> v1" in history
    audit = ok(modbot(db, "audit", "-s", SERVER, "--json"))
    assert [json.loads(line)["action"] for line in audit.splitlines()] == [
        "policy.set",
        "settings.set",
        "policy.set",
        "policy.rollback_to_v1",
        "policy.switch",
        "policy.switch",
    ]


def test_policy_refusals_name_what_where_and_what_to_do(db: Path, tmp_path: Path) -> None:
    seeded(db)
    bad = tmp_path / "bad.md"
    bad.write_text(policy_text().replace("## SAFE (0)", "## SAVE (0)"), encoding="utf-8")
    before = ok(modbot(db, "policy", "history", "-s", SERVER, "-n", "harassment"))
    message = refused(modbot(db, "policy", "set", str(bad), "-s", SERVER, *MOD), f"{bad}:", "unknown section 'SAVE'")
    assert "fix these and run the command again" in message
    refused(modbot(db, "policy", "set", str(bad), "-s", SERVER, "--actor", "x"), "x may not change policies")
    refused(modbot(db, "policy", "set", str(tmp_path / "missing.md"), "-s", SERVER, *MOD), "cannot read")
    refused(modbot(db, "policy", "show", "-s", SERVER, "-n", "nope"), "no policy named 'nope'; it has: harassment")
    assert ok(modbot(db, "policy", "history", "-s", SERVER, "-n", "harassment")) == before


def test_review_from_the_command_line(db: Path) -> None:
    case = seeded(db)
    listed = ok(modbot(db, "review", "list", "-s", SERVER, *MOD))
    assert f"case {case.id} [open]" in listed and "you are an idiot" in listed
    refused(modbot(db, "review", "list", "-s", SERVER, "--actor", "member"), "member may not list cases")
    out = ok(modbot(db, "review", "confirm", case.id, "-s", SERVER, *MOD, "--timeout", "30", "--note", "insult"))
    assert "confirm by mod-1; status now confirmed" in out
    assert "timeout 30min by mod-1: done" in out
    refused(
        modbot(db, "review", "dismiss", case.id, "-s", SERVER, "--actor", "mod-2", "--role", "mods"),
        "confirm by mod-1 at",
    )
    shown = json.loads(ok(modbot(db, "review", "show", case.id, "-s", SERVER, *MOD, "--json")))
    assert shown["status"] == "confirmed" and shown["decisions"][0]["note"] == "insult"
    assert shown["verdicts"][0]["reasoning"] == "The message insults a member."


def test_appeal_decisions_and_labels_from_the_command_line(db: Path) -> None:
    case = seeded(db, effects=[(Effect(kind=EffectKind.TIMEOUT, timeout_minutes=10_000), EffectOutcome.DONE)])

    async def appeal_without_text(store: SqliteStore) -> None:
        # A purged message is appealed without the model (which this test does not run).
        async with store.raw_transaction() as conn:
            await conn.execute(
                "INSERT INTO appeals (case_id, author_id, statement, status, created_at)"
                " VALUES (?, ?, 'a quote', 'pending', ?)",
                (case.id, AUTHOR, store.now().isoformat()),
            )
            await conn.execute("UPDATE cases SET status = 'appealed' WHERE id = ?", (case.id,))

    with_store(db, appeal_without_text)
    assert "statement: 'a quote'" in ok(modbot(db, "appeal", "list", "-s", SERVER, *MOD))
    refused(
        modbot(db, "appeal", "overturn", case.id, "-s", SERVER, "--actor", AUTHOR), f"{AUTHOR} may not decide appeals"
    )
    out = ok(modbot(db, "appeal", "overturn", case.id, "-s", SERVER, *MOD, "--note", "quoted to report"))
    assert "status now overturned" in out
    assert "lift_timeout 10000min by mod-1: done" in out and "notify_appeal_outcome by mod-1: done" in out
    refused(modbot(db, "appeal", "uphold", case.id, "-s", SERVER, *MOD), "overturn by mod-1")
    labels = [json.loads(line) for line in ok(modbot(db, "export", "--labels")).splitlines()]
    assert [(r["case_id"], r["label"]["action"], r["label"]["violation"], r["text"]) for r in labels] == [
        (case.id, "overturn", False, "you are an idiot")
    ]
    assert labels[0]["model_verdict"]["rule_ids"] == ["HB1.a"] and labels[0]["policy_version"] == 1
    # The plain export still lists cases.
    assert json.loads(ok(modbot(db, "export")).splitlines()[0])["status"] == CaseStatus.OVERTURNED.value


def test_settings_from_the_command_line(db: Path) -> None:
    seeded(db)
    ladder = '{"enabled": true, "window_days": 14, "steps": [{"strikes": 3, "timeout_minutes": 1440}]}'
    out = json.loads(
        ok(modbot(db, "settings", "set", "-s", SERVER, *MOD, f"strike_ladder={ladder}", "retention_days=14"))
    )
    assert out["retention_days"] == 14 and out["strike_ladder"]["window_days"] == 14
    shown = json.loads(ok(modbot(db, "settings", "show", "-s", SERVER)))
    assert shown["strike_ladder"]["steps"][0]["strikes"] == 3
    refused(
        modbot(db, "settings", "set", "-s", SERVER, *MOD, "retention_days=0"),
        "retention_days=0 is out of range: give a whole number from 1 to 3650 (days)",
    )
    refused(modbot(db, "settings", "set", "-s", SERVER, *MOD, "retention_days"), "is not KEY=VALUE")
    refused(modbot(db, "settings", "set", "-s", SERVER, *MOD, 'admin_user_ids=["me"]'), "only admins may")


def test_jobs_run_once_at_a_given_time(db: Path) -> None:
    case = seeded(db)
    created = case.created_at
    later = (created.replace(hour=9, minute=5) + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S")
    result = modbot(db, "jobs", "run-once", "retention", "digest", "health", "--at", later, "--json")
    ok(result)
    notices = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [n["notice"]["kind"] for n in notices]
    assert kinds == ["digest"]  # the health probe fails (nothing listens) but no alert on the first failure
    refused(modbot(db, "jobs", "run-once", "nonsense"), "no job named nonsense; jobs are retention, reminders")
    text = ok(modbot(db, "jobs", "run-once", "retention", "health", "--at", later))
    assert "retention: nothing to purge" in text and "model failing since" in text

    async def purged(store: SqliteStore) -> str | None:
        row = await store.fetchone("SELECT text FROM cases WHERE id = ?", (case.id,))
        return row[0] if row else "missing"

    assert with_store(db, purged) is None


# ---------------------------------------------------------------- with the model: subprocesses


async def run_modbot(db: Path, fake: FakeOllama, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "MODBOT_DB": str(db),
        "OLLAMA_HOST": fake.host,
        "MODBOT_POLICY_DIR": str(DATA),
        "MODBOT_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from adapters.console.cli import main; main()",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def seed_async(db: Path, **kwargs: Any) -> Case:
    store = await SqliteStore.open(db)
    try:
        await configure(store)
        return await seed_case(store, **kwargs)
    finally:
        await store.close()


@pytest.mark.slow
async def test_appeal_file_from_the_command_line_asks_the_model_at_high_effort(
    db: Path, fake_ollama: FakeOllama
) -> None:
    case = await seed_async(db)
    fake_ollama.responder = lambda req: Reply(verdict_json(0, ["HB0.b"], "high", "A quote (HB0.b)."))
    code, out, err = await run_modbot(
        db, fake_ollama, "appeal", "file", case.id, "--actor", "someone-else", "--statement", "x"
    )
    assert code == 2 and "someone-else may not appeal" in err
    code, out, err = await run_modbot(
        db, fake_ollama, "appeal", "file", case.id, "--actor", AUTHOR, "--statement", "I was quoting it"
    )
    assert code == 0, err
    # Filed at once; the second opinion is queued for the running bot's workers.
    assert fake_ollama.chat_requests() == []
    assert "second opinion: queued" in out and "[mod channel g1] new appeal" in err
    # A moderator at the console need not wait for the bot: they ask for it now.
    code, out, err = await run_modbot(db, fake_ollama, "appeal", "second-opinion", case.id, "-s", SERVER, *MOD)
    assert code == 0, err
    (request,) = fake_ollama.chat_requests()
    assert request["think"] == "high" and content_of(request)["appeal"] == "I was quoting it"
    assert "second opinion: harassment v1 [high]: ok HB0.b (high) A quote (HB0.b)." in out


@pytest.mark.slow
async def test_preview_and_apply_from_the_command_line(db: Path, fake_ollama: FakeOllama, tmp_path: Path) -> None:
    await seed_async(db, text="you are a clown", status=CaseStatus.CLEAN)
    fake_ollama.bad_words.add("clown")
    draft = tmp_path / "harassment.md"
    draft.write_text(policy_text().replace("Insulting a target", "Calling a target a clown"), encoding="utf-8")
    code, out, err = await run_modbot(
        db, fake_ollama, "policy", "preview", str(draft), "-s", SERVER, *MOD, "--last", "10"
    )
    assert code == 0, err
    assert "1 newly flagged, 0 no longer flagged" in out
    assert "newly flagged: case" in out and "'you are a clown'" in out
    draft_id = out.split("draft ", 1)[1].split(" ", 1)[0]
    code, out, err = await run_modbot(db, fake_ollama, "policy", "apply", draft_id, "-s", SERVER, *MOD)
    assert code == 0, err
    assert f"harassment: draft {draft_id} is live as v2" in out


def test_a_decision_from_the_command_line_updates_the_flag_post_through_its_stored_reference(db: Path) -> None:
    case = seeded(db, effects=[(Effect(kind=EffectKind.FLAG), EffectOutcome.DONE)])

    async def posted(store: SqliteStore) -> None:
        await store.effects.set_outcome(case.id, 1, EffectOutcome.DONE, reference="mod-channel/777")

    with_store(db, posted)
    result = modbot(db, "review", "confirm", case.id, "-s", SERVER, *MOD, "--note", "insult")
    assert "update_flag by mod-1: done" in ok(result)
    assert f"[effect] case {case.id} update_flag" in result.stderr
    assert "post=mod-channel/777 status=confirmed by=mod-1" in result.stderr

    async def effects(store: SqliteStore) -> list[tuple[str, str]]:
        stored = await store.cases.get(case.id)
        assert stored is not None
        return [(r.effect.kind.value, r.outcome.value) for r in stored.effects]

    assert with_store(db, effects) == [("flag", "done"), ("update_flag", "done")]


def test_every_command_that_acts_names_its_server_and_another_servers_case_is_not_found(db: Path) -> None:
    case = seeded(db)
    refused(modbot(db, "review", "confirm", case.id, "-s", "other-server", "--actor", "admin-1", "--admin"), "no case")
    refused(modbot(db, "review", "confirm", case.id, "-s", SERVER, "--platform", "discord", *ADMIN), "no case")
    missing = modbot(db, "review", "dismiss", case.id, *MOD)
    assert missing.exit_code == 2 and "--server" in missing.output
