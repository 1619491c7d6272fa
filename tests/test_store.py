"""The SQLite store: migrations, idempotent intake, atomic decisions, group commit."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest

from bot.domain import Case, CaseStatus, Effect, EffectKind, EffectOutcome, Verdict
from bot.store._migrations import available_migrations, current_version, migrate
from bot.store.ports import PolicyContent
from bot.store.sqlite import SqliteStore
from tests.helpers import make_message

MIGRATIONS = available_migrations()
T0 = datetime(2025, 3, 3, tzinfo=UTC)


def test_migrations_are_numbered_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


@pytest.mark.parametrize("migration", MIGRATIONS, ids=lambda m: f"{m.version:04d}_{m.name}")
async def test_each_migration_applies_on_the_previous_version(tmp_path: Path, migration: object) -> None:
    version = migration.version  # type: ignore[attr-defined]
    path = tmp_path / "m.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=version - 1) == version - 1
        assert await migrate(conn, target=version) == version
        assert await current_version(conn) == version
        # Applying again is a no-op: the version is recorded in the database.
        assert await migrate(conn, target=version) == version


async def test_empty_file_reaches_the_latest_version_with_wal(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "new.db")
    try:
        assert (await store.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
        assert (await store.fetchone("PRAGMA busy_timeout"))[0] > 0  # type: ignore[index]
        rows = await store.fetchall("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    finally:
        await store.close()


async def test_data_survives_an_upgrade_from_the_first_version(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn, target=1)
        await conn.execute(
            "INSERT INTO policies (server_id, name, version, text, created_at) VALUES ('s1', 'p', 1, 't', 'now')"
        )
    store = await SqliteStore.open(path)
    try:
        assert (await store.fetchone("SELECT text FROM policies"))[0] == "t"  # type: ignore[index]
        assert (await store.fetchone("SELECT MAX(version) FROM schema_migrations"))[0] == len(MIGRATIONS)  # type: ignore[index]
    finally:
        await store.close()


async def test_intake_is_idempotent_even_within_one_batch(store: SqliteStore) -> None:
    first = make_message("m1")
    ids = await asyncio.gather(*(store.enqueue(first) for _ in range(5)), store.enqueue(make_message("m2")))
    assert sum(i is not None for i in ids[:5]) == 1 and ids[5] is not None
    assert await store.enqueue(first) is None
    # Another platform or server with the same message id is another message.
    assert await store.enqueue(make_message("m1", platform="discord")) is not None
    assert await store.enqueue(make_message("m1", server="s2")) is not None
    assert (await store.queue_counts()) == {"pending": 4}


def _case(case_id: str, message_id: str) -> Case:
    verdict = Verdict(policy="p", policy_version=1, violation=True, rule_ids=("P1.a",))
    return Case(
        id=case_id, message=make_message(message_id, "secret text"), status=CaseStatus.OPEN, verdicts=(verdict,)
    )


async def test_decision_commits_case_effects_and_queue_together(store: SqliteStore) -> None:
    qid = await store.enqueue(make_message("m1", "secret text"))
    assert qid is not None
    flag = Effect(kind=EffectKind.FLAG, policy="p")
    await store.record_decision(qid, _case("C1", "m1"), [(flag, EffectOutcome.PENDING)])
    row = await store.fetchone("SELECT state, case_id FROM queue WHERE id = ?", (qid,))
    assert tuple(row) == ("acting", "C1")  # type: ignore[arg-type]
    case = await store.cases.get("C1")
    assert case is not None and case.message.text == "secret text" and case.effects[0].outcome is EffectOutcome.PENDING
    await store.effects.set_outcome("C1", 1, EffectOutcome.DONE, "ok", finish_queue_id=qid)
    row = await store.fetchone("SELECT state FROM queue WHERE id = ?", (qid,))
    assert tuple(row) == ("done",)  # type: ignore[arg-type]
    # The message's text left the queue with its decision.
    assert await store.fetchone("SELECT 1 FROM queue_messages WHERE queue_id = ?", (qid,)) is None


async def test_a_failing_decision_writes_nothing_and_spares_its_batch(store: SqliteStore) -> None:
    q1, q2, q3 = [await store.enqueue(make_message(f"m{i}")) for i in (1, 2, 3)]
    assert q1 and q2 and q3
    await store.record_decision(q1, _case("C1", "m1"), [])
    # C1 again violates the primary key; m3's decision in the same batch must still land.
    results = await asyncio.gather(
        store.record_decision(q2, _case("C1", "m2"), []),
        store.record_decision(q3, _case("C3", "m3"), []),
        return_exceptions=True,
    )
    assert isinstance(results[0], sqlite3.IntegrityError) and results[1] is True
    states = dict(await store.fetchall("SELECT id, state FROM queue"))  # type: ignore[arg-type]
    assert states == {q1: "done", q2: "pending", q3: "done"}
    assert (await store.fetchone("SELECT COUNT(*) FROM verdicts WHERE case_id = 'C1'"))[0] == 1  # type: ignore[index]


async def test_policies_are_versioned(store: SqliteStore) -> None:
    for author, text in (("alice", "v1 text"), ("bob", "v2 text")):
        await store.policies.add_version(
            "console", "s1", PolicyContent(name="spam", text=text, description="d"), author
        )
    live = await store.policies.live("console", "s1")
    assert [(lp.policy.version, lp.policy.text, lp.policy.author) for lp in live] == [(2, "v2 text", "bob")]
    assert [p.version for p in await store.policies.versions("console", "s1", "spam")] == [1, 2]
    # Another platform's server of the same id has none of them.
    assert await store.policies.live("discord", "s1") == []


async def test_0005_keys_every_servers_rows_by_platform_and_keeps_them(tmp_path: Path) -> None:
    """On a file at version 4: each server's rows take its settings' platform, else its cases', else console."""
    path = tmp_path / "v4.db"
    at = "2025-01-01T00:00:00+00:00"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=4) == 4
        settings = '{"platform": "discord", "server_id": "g1"}'
        statements = [
            ("INSERT INTO server_settings VALUES ('g1', 'discord', ?, ?)", (settings, at)),
            ("INSERT INTO policies (server_id, name, version, text, created_at) VALUES ('g1', 'p', 1, 'x', ?)", (at,)),
            ("INSERT INTO policy_state (server_id, name, enabled) VALUES ('g1', 'p', 0)", ()),
            ("INSERT INTO policies (server_id, name, version, text, created_at) VALUES ('s2', 'p', 1, 'y', ?)", (at,)),
            ("INSERT INTO policy_state (server_id, name) VALUES ('s2', 'p')", ()),
            (
                "INSERT INTO policies (server_id, name, version, text, created_at) VALUES ('lone', 'p', 1, 'z', ?)",
                (at,),
            ),
            ("INSERT INTO policy_state (server_id, name) VALUES ('lone', 'p')", ()),
            (
                "INSERT INTO cases (id, platform, server_id, channel_id, message_id, author_id, text, message, status,"
                " violation, mode, created_at) VALUES ('C1', 'slack', 's2', 'c', 'm', 'u', 't', '{}', 'open', 1,"
                " 'enforce', ?)",
                (at,),
            ),
            (
                "INSERT INTO human_decisions (case_id, server_id, action, violation, moderator_id, at)"
                " VALUES ('C1', 's2', 'confirm', 1, 'mod', ?)",
                (at,),
            ),
            ("INSERT INTO audit_log (server_id, actor, action, subject, at) VALUES ('g1', 'a', 'x', 's', ?)", (at,)),
            ("INSERT INTO digests_sent VALUES ('g1', '2025-01-01', 'done', ?)", (at,)),
            ("INSERT INTO health_alerts VALUES ('s2', ?)", (at,)),
            (
                "INSERT INTO policy_drafts (server_id, name, text, base_version, author, summary, created_at)"
                " VALUES ('g1', 'p', 'd', 1, 'a', '{}', ?)",
                (at,),
            ),
        ]
        for sql, params in statements:
            await conn.execute(sql, params)
    store = await SqliteStore.open(path)
    try:
        assert (await store.settings.get("discord", "g1")) is not None
        assert [lp.enabled for lp in await store.policies.live("discord", "g1")] == [False]
        assert [lp.policy.text for lp in await store.policies.live("slack", "s2")] == ["y"]
        assert [lp.policy.text for lp in await store.policies.live("console", "lone")] == ["z"]
        assert await store.policies.live("console", "g1") == []
        (policy,) = await store.policies.versions("discord", "g1", "p")
        assert (policy.sensitive, policy.author_notice.value, policy.notice_text) == (False, "removal", "")
        assert [e.actor for e in await store.audit.for_server("discord", "g1")] == ["a"]
        (decision,) = await store.decisions.for_server("slack", "s2")
        assert (decision.case_id, decision.self_review) == ("C1", False)
        assert not await store.jobs.claim_digest("discord", "g1", "2025-01-01", T0)
        assert await store.jobs.alerted_servers() == {("slack", "s2")}
        assert await store.policies.get_draft("discord", "g1", 1) is not None
    finally:
        await store.close()


async def test_a_console_server_and_a_discord_guild_of_the_same_id_share_nothing(store: SqliteStore) -> None:
    from bot.domain import ServerSettings

    await store.settings.put(ServerSettings(platform="console", server_id="g1", retention_days=3), T0)
    await store.settings.put(ServerSettings(platform="discord", server_id="g1", retention_days=9), T0)
    assert [(s.platform, s.retention_days) for s in await store.settings.every()] == [("console", 3), ("discord", 9)]
