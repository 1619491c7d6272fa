"""The revisions migration (0009) on a populated older file: nothing lost, old messages still recognised."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import aiosqlite

from bot.domain import Author, Case, CaseStatus, Message
from bot.store._migrations import available_migrations, migrate
from bot.store.ports import IntakeOutcome
from bot.store.sqlite import SqliteStore
from tests.queue.conftest import T0

REVISIONS = next(m.version for m in available_migrations() if m.name == "revisions_and_work")


def message(message_id: str, text: str, *, edited: bool = False) -> Message:
    return Message(
        platform="console",
        server_id="g1",
        channel_id="c1",
        message_id=message_id,
        author=Author(id="u1"),
        text=text,
        sent_at=T0,
        edited=edited,
        edited_at=T0 + timedelta(hours=1) if edited else None,
    )


async def _previous_version(path: Path) -> None:
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn, target=REVISIONS - 1)
        # A column added to cases by some earlier migration: it must survive the rebuild.
        await conn.execute("ALTER TABLE cases ADD COLUMN added_elsewhere TEXT NOT NULL DEFAULT ''")
        old = message("old", "you idiot")
        await conn.execute(
            "INSERT INTO queue (platform, server_id, message_id, message, state, case_id, enqueued_at, updated_at)"
            " VALUES ('console', 'g1', 'old', NULL, 'done', 'C-OLD', ?, ?)",
            (T0.isoformat(), T0.isoformat()),
        )
        await conn.execute(
            "INSERT INTO queue (platform, server_id, message_id, message, state, enqueued_at, updated_at)"
            " VALUES ('console', 'g1', 'waiting', ?, 'pending', ?, ?)",
            (message("waiting", "still queued").model_dump_json(), T0.isoformat(), T0.isoformat()),
        )
        await conn.execute(
            "INSERT INTO cases (id, platform, server_id, channel_id, message_id, author_id, text, message, status,"
            " violation, mode, created_at, added_elsewhere) VALUES ('C-OLD', 'console', 'g1', 'c1', 'old', 'u1',"
            " 'you idiot', ?, 'open', 1, 'enforce', ?, 'normalised')",
            (old.model_copy(update={"text": ""}).model_dump_json(), T0.isoformat()),
        )
        await conn.execute(
            "INSERT INTO verdicts (case_id, policy, policy_version, status, violation, rule_ids, confidence, rationale,"
            " reasoning, model, effort, latency_ms, prompt_tokens, completion_tokens, reused, created_at)"
            " VALUES ('C-OLD', 'harassment', 1, 'decided', 1, '[\"HB1.a\"]', 'high', 'insult', 'r', 'm', 'low',"
            " 5.0, 1, 1, 0, ?)",
            (T0.isoformat(),),
        )
        await conn.execute(
            "INSERT INTO effects (case_id, seq, kind, effect, outcome, updated_at, reference)"
            " VALUES ('C-OLD', 1, 'flag', '{\"kind\": \"flag\"}', 'done', ?, 'mods/1')",
            (T0.isoformat(),),
        )
        clean = message("clean", "nice weather")
        await conn.execute(
            "INSERT INTO cases (id, platform, server_id, channel_id, message_id, author_id, text, message, status,"
            " violation, mode, created_at) VALUES ('C-CLEAN', 'console', 'g1', 'c1', 'clean', 'u1',"
            " 'nice weather', ?, 'clean', 0, 'enforce', ?)",
            (clean.model_copy(update={"text": ""}).model_dump_json(), T0.isoformat()),
        )
        await conn.execute(
            "INSERT INTO verdicts (case_id, policy, policy_version, status, violation, rule_ids, confidence, rationale,"
            " reasoning, model, effort, latency_ms, prompt_tokens, completion_tokens, reused, created_at)"
            " VALUES ('C-CLEAN', 'harassment', 1, 'decided', 0, '[]', 'high', 'fine', 'a long thought', 'm', 'low',"
            " 5.0, 1, 1, 0, ?)",
            (T0.isoformat(),),
        )
        await conn.execute(
            "INSERT INTO appeals (case_id, author_id, statement, status, created_at)"
            " VALUES ('C-OLD', 'u1', 'a quote', 'pending', ?)",
            (T0.isoformat(),),
        )


async def test_the_revisions_migration_keeps_cases_their_children_and_the_queue(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    await _previous_version(path)
    store = await SqliteStore.open(path, now=lambda: T0 + timedelta(hours=2))
    try:
        case = await store.cases.get("C-OLD")
        assert case is not None and case.revision == 1 and case.message.text == "you idiot"
        assert [v.rule_ids for v in case.verdicts] == [("HB1.a",)] and case.effects[0].reference == "mods/1"
        assert (await store.appeals.for_case("C-OLD")) is not None
        assert (await store.fetchone("SELECT added_elsewhere FROM cases WHERE id = 'C-OLD'"))[0] == "normalised"  # type: ignore[index]
        assert await store.fetchall("PRAGMA foreign_key_check") == []
        # A clean verdict's reasoning moved aside, where the upkeep forgets it; it still reads the same.
        clean = await store.cases.get("C-CLEAN")
        assert clean is not None and clean.verdicts[0].reasoning == "a long thought"
        assert (await store.fetchone("SELECT reasoning FROM verdicts WHERE case_id = 'C-CLEAN'"))[0] == ""  # type: ignore[index]
        assert await store.forget_clean_reasoning(T0 + timedelta(days=1), 10) == 1
        clean = await store.cases.get("C-CLEAN")
        assert clean is not None and clean.verdicts[0].reasoning == ""
        indexes = {r[0] for r in await store.fetchall("SELECT name FROM sqlite_master WHERE tbl_name = 'cases'")}
        assert {"cases_server_time", "cases_author"} <= indexes

        # The pending message is still queued, with its text.
        [waiting] = await store.open_queue_items()
        assert (waiting.message.message_id, waiting.message.text, waiting.revision) == ("waiting", "still queued", 1)
        # A replay of the old, decided message is recognised though its text was never digested...
        assert (await store.intake(message("old", "you idiot"))).outcome is IntakeOutcome.REPEAT
        # ...and an edit of it is its second revision, with a case of its own.
        edit = await store.intake(message("old", "you nice person", edited=True))
        assert (edit.outcome, edit.revision) == (IntakeOutcome.QUEUED, 2)
        assert edit.queue_id is not None
        second = Case(id="C-NEW", message=message("old", "you nice person"), status=CaseStatus.CLEAN, revision=2)
        assert await store.record_decision(edit.queue_id, second, [])
        latest = await store.cases.for_message("console", "g1", "old")
        assert latest is not None and latest.id == "C-NEW"
    finally:
        await store.close()


async def test_a_case_is_still_unique_per_revision(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "new.db")
    try:
        taken = await store.intake(message("m1", "hello"))
        assert taken.queue_id is not None
        await store.record_decision(
            taken.queue_id, Case(id="A", message=message("m1", "hello"), status=CaseStatus.CLEAN), []
        )
        try:
            async with store.raw_transaction() as conn:
                await conn.execute(
                    "INSERT INTO cases (id, platform, server_id, channel_id, message_id, author_id, message, status,"
                    " violation, mode, created_at, revision) SELECT 'B', platform, server_id, channel_id, message_id,"
                    " author_id, message, status, violation, mode, created_at, 1 FROM cases WHERE id = 'A'"
                )
        except sqlite3.IntegrityError as exc:
            assert "UNIQUE" in str(exc)
        else:
            raise AssertionError("a second case for the same revision was accepted")
    finally:
        await store.close()
