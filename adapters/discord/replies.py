"""What modbot answers, privately, to a click or a command: pure functions from the core's results to replies.

A `Reply` is safe to send as it is: every word that came from a member, the model or the
core's refusals is escaped (markdown, mentions) and cut to Discord's limits here; ids are
shown as mentions and channel links, which never ping (every reply allows no mention).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import discord

from adapters.discord.render import (
    BLURPLE,
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    FIELD_VALUE_LIMIT,
    ORANGE,
    Outgoing,
    add_fields,
    finish,
    fit,
    jump_url,
    new_embed,
    untrusted,
    user_ref,
    when,
)
from bot.domain import (
    Case,
    DecisionAction,
    EffectKind,
    EffectOutcome,
    EffectRecord,
    Mode,
    Policy,
    Verdict,
    VerdictStatus,
)
from bot.notices import AppealView, Digest
from bot.store.ports import AuditEntry
from bot.workflow.preview import PreviewChange, PreviewReport

# A diff or a policy longer than a message is attached as a file instead.
INLINE_CODE_LIMIT = CONTENT_LIMIT - 20


@dataclass(frozen=True)
class ReplyFile:
    name: str
    data: bytes

    def as_file(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), filename=self.name)


@dataclass(frozen=True)
class Reply:
    """A private answer, ready to send: content, embeds, maybe a file.

    `post_update` is what the clicked post becomes (an appeal post once decided), if anything.
    """

    content: str = ""
    embeds: tuple[discord.Embed, ...] = ()
    file: ReplyFile | None = None
    post_update: Outgoing | None = None

    @classmethod
    def plain(cls, text: str) -> Reply:
        """Words modbot did not write (a refusal from the core): escaped; long ones in an embed."""
        safe = untrusted(text, DESCRIPTION_LIMIT)
        if len(safe) <= CONTENT_LIMIT:
            return cls(content=safe)
        return cls(embeds=(discord.Embed(description=safe),))

    @classmethod
    def refused(cls, refusal: Exception, actor_id: str) -> Reply:
        """The core's refusal, said to the member who asked (the core names them by id: "123 may not …")."""
        text = str(refusal)
        if text.startswith(f"{actor_id} "):
            text = "You " + text[len(actor_id) + 1 :]
        return cls.plain(text)

    @classmethod
    def of(cls, text: str) -> Reply:
        """modbot's own words, already escaped where they quote others; long ones in an embed."""
        if len(text) <= CONTENT_LIMIT:
            return cls(content=text)
        return cls(embeds=(discord.Embed(description=fit(text, DESCRIPTION_LIMIT)),))


FAILED = Reply(content="modbot could not finish this. Look at the case's post (or try again) before doing it again.")
STARTING = Reply(content="modbot is still starting: try again in a few seconds.")


# ---------------------------------------------------------------- cases and appeals

_DONE_WORDS = {
    EffectKind.FLAG: "Flag posted in the mod channel.",
    EffectKind.UPDATE_FLAG: "",  # the flag post itself shows it
    EffectKind.DELETE: "Message deleted.",
    EffectKind.TIMEOUT: "Author timed out{minutes}.",
    EffectKind.LIFT_TIMEOUT: "Time-out lifted.",
    EffectKind.DM_MODERATORS: "Moderators messaged.",
    EffectKind.NOTIFY_AUTHOR: "The author was told by DM.",
    EffectKind.NOTIFY_APPEAL_OUTCOME: "The author was told the outcome by DM.",
}
_VERBS = {
    EffectKind.FLAG: "post the flag",
    EffectKind.UPDATE_FLAG: "update the flag post",
    EffectKind.DELETE: "delete the message",
    EffectKind.TIMEOUT: "time out the author",
    EffectKind.LIFT_TIMEOUT: "lift the time-out",
    EffectKind.DM_MODERATORS: "message the moderators",
    EffectKind.NOTIFY_AUTHOR: "tell the author",
    EffectKind.NOTIFY_APPEAL_OUTCOME: "tell the author the outcome",
}
_DECIDED_WORDS = {
    DecisionAction.CONFIRM: "Case {case} confirmed.",
    DecisionAction.DISMISS: "Case {case} dismissed: no action against the author.",
    DecisionAction.UPHOLD: "Appeal on case {case}: the decision is upheld.",
    DecisionAction.OVERTURN: "Appeal on case {case}: the decision is overturned.",
}


def effect_line(record: EffectRecord) -> str:
    """What became of one effect, in words; empty when there is nothing worth saying."""
    kind = record.effect.kind
    detail = untrusted(record.detail, 300)
    match record.outcome:
        case EffectOutcome.DONE:
            if kind is EffectKind.DELETE and record.detail == "already deleted":
                return "The message was already deleted."
            minutes = f" for {record.effect.timeout_minutes} min" if record.effect.timeout_minutes else ""
            return _DONE_WORDS[kind].format(minutes=minutes)
        case EffectOutcome.FAILED | EffectOutcome.INTERRUPTED:
            return f"Could not {_VERBS[kind]}: {detail or 'no reason given'}."
        case EffectOutcome.UNSUPPORTED:
            return f"Cannot {_VERBS[kind]} here: {detail or 'not supported'}."
        case EffectOutcome.SHADOW:
            return f"Shadow mode: would {_VERBS[kind]}; recorded, not done."
        case EffectOutcome.PENDING | EffectOutcome.STARTED:
            return f"Still to {_VERBS[kind]}{': ' + detail if detail else ''}."
    return ""


def decision_reply(
    action: DecisionAction,
    case_id: str,
    effects: Sequence[EffectRecord],
    notes: Sequence[str] = (),
    strikes: int | None = None,
) -> Reply:
    lines = [_DECIDED_WORDS[action].format(case=case_id)]
    lines += [line for record in effects if (line := effect_line(record))]
    lines += [_sentence(untrusted(note, 300)) for note in notes]
    if strikes is not None:
        lines.append(f"The author now has {strikes} confirmed case(s) in the strike window.")
    return Reply.of("\n".join(lines))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def reasoning_reply(case: Case) -> Reply:
    """The model's reasoning for moderators (never sent to members); its rationale if it gave none."""
    shown = [v for v in case.verdicts if v.violation or v.status is VerdictStatus.NEEDS_REVIEW] or list(case.verdicts)
    if not shown:
        return Reply.of(f"Case {case.id} has no verdict: the message was not judged.")
    embed = new_embed(f"Why the model flagged case {case.id}", colour=BLURPLE)
    fields: list[tuple[str, str, bool]] = []
    for verdict in shown:
        name = f"{verdict.policy} v{verdict.policy_version}: {verdict.confidence.value} confidence"
        if verdict.status is VerdictStatus.NEEDS_REVIEW:
            fields.append((name, "The model's answer could not be read.", False))
            continue
        words = verdict.reasoning or verdict.rationale or "The model gave no reasoning."
        fields.append((name, untrusted(words, FIELD_VALUE_LIMIT), False))
    if len(shown) == 1:
        # One verdict: its reasoning gets the description's room (4,096) rather than a field's.
        only = shown[0]
        embed.description = untrusted(only.reasoning or only.rationale or "The model gave no reasoning.", 4000)
        fields = [(fields[0][0], f"Rules: {', '.join(untrusted(r, 40) for r in only.rule_ids) or 'none'}", False)]
    add_fields(embed, fields)
    return Reply(embeds=(finish(embed, f"case {case.id} · only you can see this"),))


def appeal_filed_reply(view: AppealView) -> Reply:
    return Reply.of(
        f"Your appeal of case {view.case_id} is filed. The server's moderators will decide it, "
        "and modbot will send you the outcome by DM (if your DMs are closed to the server's members, "
        "ask a moderator instead). A case can be appealed once."
    )


def case_line(case: Case) -> str:
    """One case in a list: when, where, which policy and rules (never the reasoning), its status."""
    msg = case.message
    flagged = [v for v in case.verdicts if v.violation]
    policies = ", ".join(
        f"{untrusted(v.policy, 60)} ({', '.join(untrusted(r, 40) for r in v.rule_ids) or 'no rule'})" for v in flagged
    )
    link = jump_url(msg.server_id, msg.channel_id, msg.message_id)
    return f"{when(case.created_at)} in <#{msg.channel_id}> ([message]({link})): {policies or 'flagged'}"


def appealable_label(case: Case) -> str:
    """A select option's label (at most 100 characters): the date and the policy."""
    flagged = ", ".join(dict.fromkeys(v.policy for v in case.verdicts if v.violation)) or "flagged"
    return fit(f"{case.created_at:%Y-%m-%d %H:%M} UTC · {flagged}", 100)


def open_cases_reply(cases: Sequence[Case]) -> Reply:
    if not cases:
        return Reply.of("No case is waiting for a moderator.")
    lines = [f"`{c.id}` {c.status.value}: {user_ref(c.message.author.id)}, {case_line(c)}" for c in cases]
    head = f"{len(cases)} case(s) waiting, oldest first. Decide one with `/review decide`:"
    return Reply.of("\n".join([head, *lines]))


def waiting_appeals_reply(views: Sequence[AppealView]) -> Reply:
    if not views:
        return Reply.of("No appeal is waiting.")
    lines = [
        f"`{v.case_id}` by {user_ref(v.author_id)}, filed {when(v.filed_at)}: {untrusted(v.statement, 150)}"
        for v in views
    ]
    head = f"{len(views)} appeal(s) waiting. Decide one with `/review appeal`:"
    return Reply.of("\n".join([head, *lines]))


# ---------------------------------------------------------------- policies


def policy_set_reply(policy: Policy, previous: int | None, changed: bool, warnings: Sequence[str]) -> Reply:
    if not changed:
        text = f"**{policy.name}** is unchanged: the text equals v{policy.version}, so no version was added."
    elif previous is None:
        text = f"**{policy.name}** v{policy.version} saved: a new policy, live now for new messages."
    else:
        text = f"**{policy.name}** v{policy.version} saved (was v{previous}); live now for new messages."
    if warnings:
        text += "\nWarnings (saved anyway):\n" + "\n".join(f"- {untrusted(w, 300)}" for w in warnings[:10])
    return Reply.of(text)


def _mode_words(mode: Mode | None) -> str:
    return "follows the server's mode" if mode is None else f"{mode.value} (its own mode)"


def policy_state_line(name: str, version: int, enabled: bool, mode: Mode | None, versions: int) -> str:
    state = "on" if enabled else "off"
    return f"**{untrusted(name, 64)}** v{version}: {state}, {_mode_words(mode)}, {versions} version(s)"


def policy_list_reply(lines: Sequence[str]) -> Reply:
    if not lines:
        return Reply.of("This server has no policy yet: `/policy set` adds one (a template is the quickest start).")
    return Reply.of("\n".join(lines))


def policy_show_reply(policy: Policy, document: str, file_name: str) -> Reply:
    head = (
        f"**{policy.name}** v{policy.version}, by {user_ref(policy.author or None)} {when(policy.created_at)}"
        f"{', sensitive' if policy.sensitive else ''}, author notice: {policy.author_notice.value}. "
        "The attached file is the whole policy: edit it and send it back with `/policy set file:`."
    )
    return Reply(content=head, file=ReplyFile(file_name, document.encode("utf-8")))


def history_reply(name: str, versions: Sequence[Policy], changes: Sequence[AuditEntry]) -> Reply:
    lines = [f"**{untrusted(name, 64)}**, {len(versions)} version(s):"]
    lines += [f"v{p.version} by {user_ref(p.author or None)} {when(p.created_at)}" for p in reversed(versions)]
    if changes:
        lines.append("Changes:")
        lines += [
            f"{when(c.at)} {user_ref(c.actor)}: {untrusted(c.action, 60)}"
            f" {untrusted(c.before or '-', 80)} → {untrusted(c.after or '-', 80)}"
            for c in reversed(changes[-20:])
        ]
    return Reply.of("\n".join(lines))


def diff_reply(name: str, old: int, new: int, diff: str) -> Reply:
    if not diff:
        return Reply.of(f"**{name}** v{old} and v{new} are the same.")
    # A fence inside the policy text would end the code block early: a zero-width space breaks it.
    fenced = "```diff\n" + diff.replace("```", "`\u200b``") + "```"
    if len(fenced) <= INLINE_CODE_LIMIT:
        return Reply(content=fenced)
    return Reply(
        content=f"The diff of **{name}** v{old} → v{new} is attached.",
        file=ReplyFile(f"{name}-v{old}-v{new}.diff", diff.encode("utf-8")),
    )


def verdicts_reply(text: str, verdicts: Sequence[Verdict]) -> Reply:
    """`/policy test`: each policy's verdict on the sample, with its rationale (the reasoning stays out)."""
    embed = new_embed("How the policies judge this text", description="> " + untrusted(text, 1000), colour=BLURPLE)
    fields = []
    for v in verdicts:
        if v.status is VerdictStatus.NEEDS_REVIEW:
            fields.append((f"{v.policy} v{v.policy_version}", "No usable verdict: a moderator would review it.", False))
            continue
        rules = ", ".join(untrusted(r, 40) for r in v.rule_ids)
        words = f"**{'Violation' if v.violation else 'No violation'}**{f' ({rules})' if rules else ''}"
        words += f", {v.confidence.value} confidence\n{untrusted(v.rationale, 800)}"
        fields.append((f"{v.policy} v{v.policy_version}", words, False))
    add_fields(embed, fields or [("No policy", "This server has no enabled policy to test against.", False)])
    return Reply(embeds=(finish(embed, "a test: nothing was recorded or done"),))


def _change_line(change: PreviewChange, verdict: Verdict, sensitive: bool) -> str:
    rules = ", ".join(untrusted(r, 40) for r in verdict.rule_ids)
    where = f"{user_ref(change.author_id)} in <#{change.channel_id}>"
    # A sensitive policy's flags never quote the message; neither does its preview.
    excerpt = "" if sensitive or not change.text else f": {untrusted(change.text, 120)}"
    return f"{where}{excerpt}{f' ({rules})' if rules else ''}"


def preview_reply(report: PreviewReport, *, sensitive: bool, examples: int = 8) -> Reply:
    """A draft's preview: what would change, a few examples of each, and what Apply does."""
    version = report.base_version + 1
    embed = new_embed(
        f"Preview of {report.name} (draft {report.draft_id})",
        description=(
            f"On the last {report.examined} retained message(s): **{len(report.newly_flagged)} newly flagged**, "
            f"**{len(report.no_longer_flagged)} no longer flagged**, {report.unchanged} unchanged, "
            f"{report.skipped} not judged (exempt, bots, empty), {report.undecided} without a usable answer.\n"
            f"Nothing is live yet: Apply makes this text {report.name} v{version}."
        ),
        colour=BLURPLE,
    )
    fields: list[tuple[str, str, bool]] = []
    for title, changes in (("Newly flagged", report.newly_flagged), ("No longer flagged", report.no_longer_flagged)):
        if changes:
            lines = [
                _change_line(c, c.after if title == "Newly flagged" else (c.before or c.after), sensitive)
                for c in changes[:examples]
            ]
            if len(changes) > examples:
                lines.append(f"and {len(changes) - examples} more")
            fields.append((f"{title} ({len(changes)})", "\n".join(lines), False))
    if report.warnings:
        fields.append(("Warnings", "\n".join(untrusted(w, 200) for w in report.warnings[:5]), False))
    add_fields(embed, fields)
    return Reply(embeds=(finish(embed, f"draft {report.draft_id} · only you can see this"),))


# ---------------------------------------------------------------- status


def status_reply(
    *,
    model_problem: str | None,
    queue: dict[str, int],
    today: Digest,
    limits: Sequence[str],
    now: datetime,
) -> Reply:
    waiting = sum(n for state, n in queue.items() if state != "done")
    model = "reachable" if model_problem is None else f"**not reachable**: {untrusted(model_problem, 500)}"
    embed = new_embed("modbot status", colour=ORANGE if model_problem else BLURPLE)
    fields: list[tuple[str, str, bool]] = [
        ("Model", model, False),
        (
            "Queue (all servers)",
            f"{waiting} message(s) waiting or being judged"
            + (" (" + ", ".join(f"{n} {s}" for s, n in sorted(queue.items()) if s != "done") + ")" if waiting else ""),
            False,
        ),
        (
            "Today in this server (UTC)",
            f"{today.messages} message(s) judged, {today.flagged} flagged, {today.confirmed} confirmed, "
            f"{today.dismissed} dismissed, {today.appeals_filed} appeal(s) filed, {today.overturned} overturned",
            False,
        ),
    ]
    if limits:
        fields.append(("Limits as configured", "\n".join(untrusted(limit, 300) for limit in limits), False))
    add_fields(embed, fields)
    return Reply(embeds=(finish(embed, "modbot", now),))


def refused_reply(message: str) -> Reply:
    return Reply.plain(message)


__all__ = [
    "FAILED",
    "STARTING",
    "Reply",
    "ReplyFile",
    "appeal_filed_reply",
    "appealable_label",
    "case_line",
    "decision_reply",
    "diff_reply",
    "effect_line",
    "history_reply",
    "open_cases_reply",
    "policy_list_reply",
    "policy_set_reply",
    "policy_show_reply",
    "policy_state_line",
    "preview_reply",
    "reasoning_reply",
    "refused_reply",
    "status_reply",
    "verdicts_reply",
    "waiting_appeals_reply",
]
