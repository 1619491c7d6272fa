"""Pure conversions between replay-file lines, cases and the console's JSON output."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.domain import Author, Case, Message, primary_verdict
from bot.sanitise import safe_inline

PLATFORM = "console"


# A line longer than this is refused without being parsed: Slack's longest message is
# 40,000 characters, which JSON escapes to well under this.
MAX_LINE_BYTES = 1 << 20


class ReplayLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    server: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    author: str = Field(min_length=1)
    text: str
    author_is_bot: bool = False
    author_roles: list[str] = []
    reply_to: str | None = None
    # When this revision was written: the message's time, or with `edited` the edit's.
    ts: datetime | None = None
    # An edit of a message sent earlier (a line with an id seen before and other text is one
    # anyway): judged again as a new revision of the same message.
    edited: bool = False


class ReplayLineError(ValueError):
    def __init__(self, source: str, line: int, problem: str) -> None:
        self.source, self.line, self.problem = source, line, problem
        super().__init__(f"{source}:{line}: {problem}")


def parse_replay_line(raw: str, source: str, lineno: int) -> ReplayLine:
    """One line of `run` or `replay` input; ReplayLineError names what is wrong, never echoing the line."""
    # A byte-order mark (Windows editors write one) is not part of the JSON.
    raw = raw.removeprefix("\ufeff")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ReplayLineError(source, lineno, f"not JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:
        raise ReplayLineError(source, lineno, "JSON nested too deeply") from exc
    except ValueError as exc:  # a number Python refuses to read (over 4,300 digits)
        raise ReplayLineError(source, lineno, "not usable JSON: a number is too long") from exc
    try:
        return ReplayLine.model_validate(data)
    except ValidationError as exc:
        # The field names come from the line: made safe to print on one line.
        problems = "; ".join(
            f"{safe_inline('.'.join(map(str, e['loc'])), 60) or 'line'}: {e['msg'].lower()}" for e in exc.errors()[:10]
        )
        raise ReplayLineError(source, lineno, problems) from exc
    except RecursionError as exc:
        raise ReplayLineError(source, lineno, "JSON nested too deeply") from exc


def message_from_line(line: ReplayLine, received_at: datetime) -> Message:
    written = line.ts or received_at
    if written.tzinfo is None:
        written = written.replace(tzinfo=UTC)
    return Message(
        platform=PLATFORM,
        server_id=line.server,
        channel_id=line.channel,
        message_id=line.id,
        author=Author(id=line.author, name=line.author, roles=tuple(line.author_roles), is_bot=line.author_is_bot),
        text=line.text,
        reply_to=line.reply_to,
        sent_at=written,
        edited=line.edited,
        edited_at=written if line.edited else None,
    )


def replay_record(case: Case) -> dict[str, Any]:
    return {
        "message_id": case.message.message_id,
        "server_id": case.message.server_id,
        "case_id": case.id,
        "revision": case.revision,
        "status": case.status.value,
        "violation": case.violation,
        "rule_ids": list(case.rule_ids),
        "effects": [r.effect.kind.value for r in case.effects],
        "effect_outcomes": {r.effect.kind.value: r.outcome.value for r in case.effects},
        "skipped_reason": case.skipped_reason,
        "policies": {v.policy: {"violation": v.violation, "rule_ids": list(v.rule_ids)} for v in case.verdicts},
    }


def export_record(case: Case) -> dict[str, Any]:
    main = primary_verdict(case.verdicts)
    return {
        "case_id": case.id,
        "platform": case.message.platform,
        "server_id": case.message.server_id,
        "channel_id": case.message.channel_id,
        "message_id": case.message.message_id,
        "author_id": case.message.author.id,
        "violation": case.violation,
        "status": case.status.value,
        "policy": main.policy if main else None,
        "policy_version": main.policy_version if main else None,
        "rule_ids": list(main.rule_ids) if main else [],
        "confidence": main.confidence.value if main else None,
        "rationale": main.rationale if main else None,
        "skipped_reason": case.skipped_reason,
        "mode": case.mode.value,
        "created_at": case.created_at.isoformat(),
        "effects": [
            {"kind": r.effect.kind.value, "outcome": r.outcome.value, "detail": r.detail} for r in case.effects
        ],
        "verdicts": [v.model_dump(mode="json", exclude={"reasoning", "raw_output"}) for v in case.verdicts],
    }


def readable_line(case: Case) -> str:
    """One line per message: its ids are made inert, so that an id with a line break forges no line."""
    msg = case.message
    head = f"{safe_inline(msg.server_id, 100)}/{safe_inline(msg.message_id, 100)} case {case.id}"
    if case.skipped_reason:
        return f"{head}: skipped ({case.skipped_reason})"
    if case.status.value == "needs_review":
        return f"{head}: NEEDS HUMAN REVIEW"
    if not case.violation:
        return f"{head}: ok"
    effects = ", ".join(f"{r.effect.kind.value}[{r.outcome.value}]" for r in case.effects) or "none"
    rules = ",".join(safe_inline(r, 100) for r in case.rule_ids)
    return f"{head}: VIOLATION {rules} -> {effects}"
