"""Human decisions as labelled examples: the text where retained, the policy, the model's verdict, the label."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from bot.domain import Case, primary_verdict
from bot.store import SqliteStore
from bot.store.sqlite import verdict_from_row

_VERDICT_COLUMNS = (
    "policy, policy_version, status, violation, policy_category, rule_ids, confidence, rationale, reasoning,"
    " raw_output, model, effort, latency_ms, prompt_tokens, completion_tokens, reused"
)


async def export_labels(store: SqliteStore, server_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
    """One record per human decision, oldest first. Author ids are left out: labels need no identity."""
    where = "WHERE h.server_id = ?" if server_id else ""
    rows = await store.fetchall(
        "SELECT h.id, h.case_id, h.action, h.violation, h.moderator_id, h.note, h.at, a.id, a.statement"
        " FROM human_decisions h LEFT JOIN appeals a ON a.case_id = h.case_id AND h.action IN ('uphold', 'overturn')"
        f" {where} ORDER BY h.id",
        (server_id,) if server_id else (),
    )
    cases: dict[str, Case] = {}
    for row in rows:
        case_id = row[1]
        if case_id not in cases:
            found = await store.get_case(case_id)
            if found is None:  # cannot happen: human_decisions references cases
                continue
            cases[case_id] = found
        case = cases[case_id]
        main = primary_verdict(case.verdicts)
        retained = await store.fetchone("SELECT text IS NOT NULL FROM cases WHERE id = ?", (case_id,))
        record: dict[str, Any] = {
            "decision_id": row[0],
            "case_id": case_id,
            "platform": case.message.platform,
            "server_id": case.message.server_id,
            "channel_id": case.message.channel_id,
            "message_id": case.message.message_id,
            "text": case.message.text if retained and retained[0] else None,
            "policy": main.policy if main else None,
            "policy_version": main.policy_version if main else None,
            "model_verdict": main.summary() if main else None,
            "verdicts": [v.summary() for v in case.verdicts],
            "label": {
                "action": row[2],
                "violation": bool(row[3]),
                "moderator_id": row[4],
                "note": row[5],
                "at": row[6],
            },
        }
        if row[7] is not None:
            opinion = await store.fetchall(
                f"SELECT {_VERDICT_COLUMNS} FROM verdicts WHERE appeal_id = ? ORDER BY id", (row[7],)
            )
            record["appeal"] = {
                "statement": row[8],
                "second_opinion": [verdict_from_row(v).summary() for v in opinion],
            }
        yield record


def label_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)
