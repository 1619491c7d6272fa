"""Every column of the database is accounted for: which hold a member's words or id, and who removes them.

A new column fails this test until it is classified here. A column that holds a member's
words must be removed by retention (`_redact_copies_of_text` in bot/store/sqlite.py) and by
erasure (`SqlitePrivacy.erase_member`); one that holds a member's id must be replaced by
erasure. The retention and erasure tests then prove it on disk.
"""

from __future__ import annotations

from pathlib import Path

from bot.store.sqlite import SqliteStore

# The member's words, or the model's words about them: gone at retention and at erasure.
WORDS = {
    ("cases", "text"),
    ("cases", "message"),  # the Message as JSON, text left out at write; name, roles, attachments erased
    ("queue_messages", "message"),  # a waiting revision's Message; deleted once decided; anonymised at erasure
    ("queue", "text_digest"),  # a hash of the text (recognises a replayed event): cleared with the text
    ("clean_reasoning", "reasoning"),  # a clean verdict's reasoning: deleted after a day, at retention, at erasure
    ("clean_reasoning", "raw_output"),
    ("verdicts", "rationale"),
    ("verdicts", "reasoning"),
    ("verdicts", "raw_output"),
    ("appeals", "statement"),
    ("effects", "effect"),  # its reason repeats the rationale
}
# The member's id: replaced by "(erased)" at erasure.
MEMBER_ID = {("cases", "author_id"), ("appeals", "author_id")}
# Moderators' words about a member's case: kept by retention (the label's reasons), cleared at the
# member's erasure; a platform's detail may name the member and has that id replaced.
ABOUT_THE_MEMBER = {("human_decisions", "note"), ("appeals", "note"), ("effects", "detail"), ("effects", "reference")}
# Staff: who decided or changed what. Kept: the server's accountability record.
STAFF = {
    ("appeals", "decided_by"),
    ("cases", "decided_by"),
    ("human_decisions", "moderator_id"),
    ("audit_log", "actor"),
    ("audit_log", "before"),
    ("audit_log", "after"),
    ("policies", "author"),
    ("policy_drafts", "author"),
    ("policy_drafts", "applied_by"),
    ("server_settings", "settings"),  # admin_user_ids: said in an erasure's result, left to the admin
    # Interactive work: a second opinion's case id, or a preview's policy text and the moderator
    # who asked for it; the input is emptied once the work is finished.
    ("work", "payload"),
    ("work", "subject"),  # "appeal 12", "preview of harassment by <moderator>"
}
# Everything else: ids of our own, platform ids of places and messages, policies, counts, times.
OTHER = {
    ("appeal_reminders", c) for c in ("appeal_id", "reminders", "last_sent_at")
} | {
    ("appeals", c) for c in ("id", "case_id", "status", "created_at", "decided_at")
} | {
    ("audit_log", c) for c in ("id", "server_id", "action", "subject", "at", "platform")
} | {
    ("cases", c)
    for c in (
        "id", "platform", "server_id", "channel_id", "message_id", "status", "violation", "skipped_reason", "mode",
        "decided_at", "created_at", "text_purged_at",
        # What judging did, in words without message content (bot.text's record), naming at most
        # the rule ids the model cited, kept as the verdicts' rule ids are; the flag a raid repeat
        # joined (its authors are the joined cases' author_id, replaced at erasure).
        "judging_notes", "joined_case_id",
        # Which revision of the message the case judged.
        "revision",
    )
} | {
    ("digests_sent", c) for c in ("platform", "server_id", "day", "outcome", "sent_at")
} | {
    ("effects", c) for c in ("case_id", "seq", "kind", "outcome", "updated_at")
} | {
    ("health_alerts", c) for c in ("platform", "server_id", "alerted_at")
} | {
    ("human_decisions", c)
    for c in ("id", "case_id", "server_id", "action", "violation", "at", "platform", "self_review")
} | {
    ("model_health", c) for c in ("id", "failing_since", "healthy_since", "last_problem", "probed_at")
} | {
    ("policies", c)
    for c in (
        "platform", "server_id", "name", "version", "text", "description", "created_at", "sensitive",
        "author_notice", "notice_text",
    )
} | {
    ("policy_drafts", c)
    for c in (
        "id", "server_id", "name", "text", "description", "base_version", "summary", "created_at", "applied_at",
        "applied_version", "platform", "sensitive", "author_notice", "notice_text",
    )
} | {
    ("policy_state", c) for c in ("platform", "server_id", "name", "enabled", "mode")
} | {
    ("queue", c)
    for c in (
        "id", "platform", "server_id", "message_id", "state", "case_id", "enqueued_at", "updated_at",
        # Revisions: their number and time, a held revision's due time, the author's deletion time.
        "revision", "revised_at", "not_before", "deleted_at",
    )
} | {
    ("queue_messages", "queue_id"),
} | {
    ("case_notes", c) for c in ("id", "case_id", "kind", "revision", "at")  # "edited", "deleted": no text
} | {
    ("work", c)
    for c in ("id", "kind", "platform", "server_id", "state", "attempts", "detail", "created_at", "updated_at")
} | {
    ("clean_reasoning", c) for c in ("verdict_id", "created_at")
} | {
    ("schema_migrations", c) for c in ("version", "name", "applied_at")
} | {
    ("server_settings", c) for c in ("platform", "server_id", "updated_at")
} | {
    ("verdicts", c)
    for c in (
        "id", "case_id", "appeal_id", "policy", "policy_version", "status", "violation", "policy_category",
        "rule_ids", "confidence", "model", "effort", "latency_ms", "prompt_tokens", "completion_tokens", "reused",
        "created_at",
    )
}  # fmt: skip


async def test_every_column_is_classified_for_retention_and_erasure(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "inventory.db")
    try:
        columns = set()
        for (table,) in await store.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ):
            columns |= {(table, r[1]) for r in await store.fetchall(f"PRAGMA table_info({table})")}
    finally:
        await store.close()
    classified = WORDS | MEMBER_ID | ABOUT_THE_MEMBER | STAFF | OTHER
    new = sorted(columns - classified)
    assert not new, (
        f"columns {new} are not classified in {__file__}: say whether each holds a member's words or id, "
        "and if so remove it in retention and erasure (bot/store/sqlite.py)"
    )
    assert not sorted(classified - columns), "classified columns that no longer exist"
