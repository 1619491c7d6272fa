"""How the console shows cases, verdicts, appeals and mod-channel notices, and its mod channel.

Everything shown that is not the bot's own words goes through the safe echo: message text,
the model's rationales and rule ids, appeal statements, moderators' notes, and every id a
platform or a member chose (message, author, channel, server). An id or a rule id is shown
on its own line's terms (`shown_id`): a line break in it could forge the next line of a
listing; an escape sequence could rewrite the operator's terminal.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, assert_never

import typer

from bot.domain import Case, EffectOutcome, EffectRecord, EffectResult, HumanDecision, ServerSettings, Verdict
from bot.notices import (
    AppealFiled,
    AppealReminder,
    AppealView,
    Digest,
    ModelOutage,
    ModelRecovered,
    Notice,
    PreviewFinished,
    SecondOpinion,
)
from bot.sanitise import safe_echo, safe_inline

if TYPE_CHECKING:
    # Only named: `modbot check` shows verdicts without loading the workflow.
    from bot.workflow.review import DecisionOutcome


# Platform ids are short (a Discord snowflake has 19 digits); longer is shown cut.
ID_CHARS = 100


def shown_id(value: str | None) -> str:
    """An id, a rule id or a name someone else chose, as one inert piece of a line."""
    return safe_inline(value or "", ID_CHARS) or "?"


def shown_ids(values: tuple[str, ...] | list[str]) -> str:
    return ",".join(shown_id(v) for v in values)


def shown_line(line: str, limit: int = 500) -> str:
    """A line of a report that names what others chose (rule ids): its spacing kept, one line, inert."""
    return safe_echo(" ".join(line.splitlines()), limit)


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def verdict_line(v: Verdict) -> str:
    label = "NEEDS REVIEW" if v.status.value == "needs_review" else ("VIOLATION" if v.violation else "ok")
    rules = f" {shown_ids(v.rule_ids)}" if v.rule_ids else ""
    rationale = safe_inline(v.rationale, 500)
    return f"{shown_id(v.policy)} v{v.policy_version} [{v.effort.value}]: {label}{rules} ({v.confidence.value})" + (
        f" {rationale}" if rationale else ""
    )


def effect_line(r: EffectRecord) -> str:
    minutes = f" {r.effect.timeout_minutes}min" if r.effect.timeout_minutes else ""
    by = f" by {shown_id(r.effect.requested_by)}" if r.effect.requested_by else ""
    detail = f" ({safe_inline(r.detail, 300)})" if r.detail else ""
    return f"{r.effect.kind.value}{minutes}{by}: {r.outcome.value}{detail}"


def case_text(case: Case, decisions: list[HumanDecision] | None = None) -> str:
    msg = case.message
    lines = [
        f"case {shown_id(case.id)} [{case.status.value}] {shown_id(msg.platform)}/{shown_id(msg.server_id)}"
        f" #{shown_id(msg.channel_id)} message {shown_id(msg.message_id)} by {shown_id(msg.author.id)}"
        f" at {case.created_at:%Y-%m-%d %H:%M} UTC" + (f" (revision {case.revision})" if case.revision > 1 else ""),
        f"  text: {safe_echo(msg.text, 500)!r}" if msg.text else "  text: (not retained)",
    ]
    lines += [
        f"  note: {'edited' if n.kind.value == 'edited' else 'deleted'} by the author at {n.at:%Y-%m-%d %H:%M} UTC"
        + (f" (revision {n.revision}, judged as its own case)" if n.revision else "")
        for n in case.notes
    ]
    lines += [f"  verdict: {verdict_line(v)}" for v in case.verdicts]
    lines += [f"  effect {r.id}: {effect_line(r)}" for r in case.effects]
    lines += [
        f"  decision: {d.action.value} by {shown_id(d.moderator_id)} at {d.at:%Y-%m-%d %H:%M} UTC"
        + (" (self-review by an admin)" if d.self_review else "")
        + (f": {safe_inline(d.note, 300)}" if d.note else "")
        for d in decisions or []
    ]
    return "\n".join(lines)


def outcome_text(outcome: DecisionOutcome) -> str:
    d = outcome.decision
    lines = [
        f"case {shown_id(outcome.case.id)}: {d.action.value} by {shown_id(d.moderator_id)};"
        f" status now {outcome.case.status.value}"
    ]
    lines += [f"  effect {r.id}: {effect_line(r)}" for r in outcome.effects]
    if outcome.strikes is not None:
        lines.append(
            f"  strikes of {shown_id(outcome.case.message.author.id)} in the ladder's window: {outcome.strikes}"
        )
    lines += [f"  note: {safe_inline(n, 300)}" for n in outcome.notes]
    return "\n".join(lines)


def appeal_text(view: AppealView) -> str:
    lines = [
        f"appeal {view.appeal_id} on case {shown_id(view.case_id)} [{view.appeal_status.value}]"
        f" by {shown_id(view.author_id)}, filed {view.filed_at:%Y-%m-%d %H:%M} UTC",
        f"  message: {safe_echo(view.text, 500)!r}" if view.text is not None else "  message: (not retained)",
    ]
    lines += [f"  original: {verdict_line(v)}" for v in view.original]
    lines.append(
        f"  statement: {safe_echo(view.statement, 1000)!r}" if view.statement else "  statement: (not retained)"
    )
    lines += [f"  second opinion: {verdict_line(v)}" for v in view.second_opinion]
    if not view.second_opinion and view.second_opinion_queued and not view.second_opinion_error:
        lines.append("  second opinion: queued; the running bot posts it to the mod channel when the model gives it")
    elif not view.second_opinion:
        why = f" ({safe_inline(view.second_opinion_error, 300)})" if view.second_opinion_error else ""
        lines.append(
            f"  second opinion: none yet{why}; `modbot appeal second-opinion {shown_id(view.case_id)}` asks again"
        )
    if view.decided_by:
        note = f" {safe_inline(view.note, 300)}" if view.note else ""
        lines.append(f"  decided by {shown_id(view.decided_by)}: {view.appeal_status.value}{note}")
    return "\n".join(lines)


def notice_text(notice: Notice) -> str:
    # Exhaustive: a new kind of notice is a mypy error here until the console can show it.
    match notice:
        case AppealFiled():
            return "new appeal\n" + appeal_text(notice.appeal)
        case SecondOpinion():
            return "second opinion on an appeal\n" + appeal_text(notice.appeal)
        case PreviewFinished():
            return preview_finished_text(notice)
        case AppealReminder():
            waiting = ", ".join(f"case {shown_id(a.case_id)} ({a.waiting_hours:g} h)" for a in notice.appeals)
            return f"{len(notice.appeals)} appeal(s) waiting longer than {notice.limit_hours} h: {waiting}"
        case Digest():
            return digest_text(notice)
        case ModelOutage():
            return (
                f"the model has not answered since {notice.since:%Y-%m-%d %H:%M} UTC:"
                f" {safe_inline(notice.problem, 300)}"
            )
        case ModelRecovered():
            return (
                f"the model answers again (outage from {notice.outage_started:%H:%M}"
                f" to {notice.recovered_at:%H:%M} UTC)"
            )
        case _:
            assert_never(notice)


def preview_finished_text(notice: PreviewFinished) -> str:
    head = f"preview of {safe_inline(notice.name, 80)} for {safe_inline(notice.requested_by, 80)}"
    if notice.summary is None:
        return f"{head} failed: {safe_echo(notice.problem, 300)}"
    s = notice.summary
    lines = [
        f"{head}: {s.examined} messages examined ({s.skipped} skipped, {s.unchanged} unchanged,"
        f" {s.undecided} undecided); {len(s.newly_flagged)} newly flagged, {len(s.no_longer_flagged)} no longer"
        f" flagged; draft {s.draft_id} against v{s.base_version}: `modbot policy apply {s.draft_id}` makes it live"
    ]
    if s.newly_flagged:
        lines.append("  newly flagged: " + ", ".join(safe_inline(c, 40) for c in s.newly_flagged))
    if s.no_longer_flagged:
        lines.append("  no longer flagged: " + ", ".join(safe_inline(c, 40) for c in s.no_longer_flagged))
    lines += [f"  warning: {safe_echo(w, 300)}" for w in s.warnings]
    return "\n".join(lines)


def digest_text(notice: Digest) -> str:
    rate = f"{notice.overturn_rate:.0%}" if notice.overturn_rate is not None else "n/a"
    latency = f"{notice.median_latency_ms:.0f} ms" if notice.median_latency_ms is not None else "n/a"
    lines = [
        f"digest for {shown_id(notice.server_id)}, {notice.period_start:%Y-%m-%d %H:%M} to"
        f" {notice.period_end:%H:%M} UTC:"
        f" {notice.messages} messages, {notice.flagged} flagged, {notice.confirmed} confirmed,"
        f" {notice.dismissed} dismissed, {notice.appeals_filed} appeals filed, {notice.appeals_decided} decided"
        f" ({notice.overturned} overturned, rate {rate}), median model latency {latency}"
    ]
    lines += [
        f"  {shown_id(c.policy)}{' ' + shown_id(c.rule_id) if c.rule_id else ''}: {c.flags}"
        for c in notice.by_policy
        if c.rule_id is None or c.flags
    ]
    # The shadow evaluation's lines name the rule ids the model cited.
    lines += [f"  {shown_line(line)}" for line in notice.shadow_evaluation]
    return "\n".join(lines)


class ConsoleModChannel:
    """The console's mod channel: notices are printed (stderr, or stdout as JSON lines)."""

    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json
        self.posted: list[tuple[str, Notice]] = []

    async def post(self, server: ServerSettings, notice: Notice) -> EffectResult:
        self.posted.append((server.server_id, notice))
        if self.as_json:
            echo_json({"server_id": server.server_id, "notice": notice.model_dump(mode="json")})
        else:
            print(f"[mod channel {shown_id(server.server_id)}] {notice_text(notice)}", file=sys.stderr)
        return EffectResult(outcome=EffectOutcome.DONE, detail="printed by the console adapter")
