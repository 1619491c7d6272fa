"""How the console shows cases, verdicts, appeals and mod-channel notices, and its mod channel."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, assert_never

import typer

from bot.domain import Case, EffectOutcome, EffectRecord, EffectResult, HumanDecision, ServerSettings, Verdict
from bot.notices import AppealFiled, AppealReminder, AppealView, Digest, ModelOutage, ModelRecovered, Notice
from bot.sanitise import safe_echo

if TYPE_CHECKING:
    # Only named: `modbot check` shows verdicts without loading the workflow.
    from bot.workflow.review import DecisionOutcome


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def verdict_line(v: Verdict) -> str:
    label = "NEEDS REVIEW" if v.status.value == "needs_review" else ("VIOLATION" if v.violation else "ok")
    rules = f" {','.join(v.rule_ids)}" if v.rule_ids else ""
    return f"{v.policy} v{v.policy_version} [{v.effort.value}]: {label}{rules} ({v.confidence.value}) {v.rationale}"


def effect_line(r: EffectRecord) -> str:
    minutes = f" {r.effect.timeout_minutes}min" if r.effect.timeout_minutes else ""
    by = f" by {r.effect.requested_by}" if r.effect.requested_by else ""
    detail = f" ({r.detail})" if r.detail else ""
    return f"{r.effect.kind.value}{minutes}{by}: {r.outcome.value}{detail}"


def case_text(case: Case, decisions: list[HumanDecision] | None = None) -> str:
    msg = case.message
    lines = [
        f"case {case.id} [{case.status.value}] {msg.platform}/{msg.server_id} #{msg.channel_id} "
        f"message {msg.message_id} by {msg.author.id} at {case.created_at:%Y-%m-%d %H:%M} UTC",
        f"  text: {safe_echo(msg.text, 500)!r}" if msg.text else "  text: (not retained)",
    ]
    lines += [f"  verdict: {verdict_line(v)}" for v in case.verdicts]
    lines += [f"  effect {r.id}: {effect_line(r)}" for r in case.effects]
    lines += [
        f"  decision: {d.action.value} by {d.moderator_id} at {d.at:%Y-%m-%d %H:%M} UTC"
        + (" (self-review by an admin)" if d.self_review else "")
        + (f": {safe_echo(d.note, 300)}" if d.note else "")
        for d in decisions or []
    ]
    return "\n".join(lines)


def outcome_text(outcome: DecisionOutcome) -> str:
    d = outcome.decision
    lines = [f"case {outcome.case.id}: {d.action.value} by {d.moderator_id}; status now {outcome.case.status.value}"]
    lines += [f"  effect {r.id}: {effect_line(r)}" for r in outcome.effects]
    if outcome.strikes is not None:
        lines.append(f"  strikes of {outcome.case.message.author.id} in the ladder's window: {outcome.strikes}")
    lines += [f"  note: {n}" for n in outcome.notes]
    return "\n".join(lines)


def appeal_text(view: AppealView) -> str:
    lines = [
        f"appeal {view.appeal_id} on case {view.case_id} [{view.appeal_status.value}] by {view.author_id}, "
        f"filed {view.filed_at:%Y-%m-%d %H:%M} UTC",
        f"  message: {safe_echo(view.text, 500)!r}" if view.text is not None else "  message: (not retained)",
    ]
    lines += [f"  original: {verdict_line(v)}" for v in view.original]
    lines.append(f"  statement: {safe_echo(view.statement, 1000)!r}")
    lines += [f"  second opinion: {verdict_line(v)}" for v in view.second_opinion]
    if not view.second_opinion:
        why = f" ({view.second_opinion_error})" if view.second_opinion_error else ""
        lines.append(f"  second opinion: none yet{why}; `modbot appeal second-opinion {view.case_id}` asks again")
    if view.decided_by:
        lines.append(f"  decided by {view.decided_by}: {view.appeal_status.value} {safe_echo(view.note, 300)}")
    return "\n".join(lines)


def notice_text(notice: Notice) -> str:
    # Exhaustive: a new kind of notice is a mypy error here until the console can show it.
    match notice:
        case AppealFiled():
            return "new appeal\n" + appeal_text(notice.appeal)
        case AppealReminder():
            waiting = ", ".join(f"case {a.case_id} ({a.waiting_hours:g} h)" for a in notice.appeals)
            return f"{len(notice.appeals)} appeal(s) waiting longer than {notice.limit_hours} h: {waiting}"
        case Digest():
            return digest_text(notice)
        case ModelOutage():
            return (
                f"the model has not answered since {notice.since:%Y-%m-%d %H:%M} UTC: {safe_echo(notice.problem, 300)}"
            )
        case ModelRecovered():
            return (
                f"the model answers again (outage from {notice.outage_started:%H:%M}"
                f" to {notice.recovered_at:%H:%M} UTC)"
            )
        case _:
            assert_never(notice)


def digest_text(notice: Digest) -> str:
    rate = f"{notice.overturn_rate:.0%}" if notice.overturn_rate is not None else "n/a"
    latency = f"{notice.median_latency_ms:.0f} ms" if notice.median_latency_ms is not None else "n/a"
    lines = [
        f"digest for {notice.server_id}, {notice.period_start:%Y-%m-%d %H:%M} to {notice.period_end:%H:%M} UTC:"
        f" {notice.messages} messages, {notice.flagged} flagged, {notice.confirmed} confirmed,"
        f" {notice.dismissed} dismissed, {notice.appeals_filed} appeals filed, {notice.appeals_decided} decided"
        f" ({notice.overturned} overturned, rate {rate}), median model latency {latency}"
    ]
    lines += [
        f"  {c.policy}{' ' + c.rule_id if c.rule_id else ''}: {c.flags}"
        for c in notice.by_policy
        if c.rule_id is None or c.flags
    ]
    lines += [f"  {line}" for line in notice.shadow_evaluation]
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
            print(f"[mod channel {server.server_id}] {notice_text(notice)}", file=sys.stderr)
        return EffectResult(outcome=EffectOutcome.DONE, detail="printed by the console adapter")
