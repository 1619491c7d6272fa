"""Block Kit for cases and notices: pure functions from EffectContext / Notice to Slack messages.

Safe output. Text that a member or the model wrote is escaped (`&`, `<`, `>` become
entities), so it can never form `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`
or a user mention; every mrkdwn object is `verbatim`, so Slack does not turn a plain
"@here" into a mention either, and a zero-width space after the "@" of @channel, @here and
@everyone keeps that true if the text is ever copied elsewhere. The only `<…>` tokens are
the ones written here: channel links, the permalink, and profile links.

People are named, never mentioned: a mention would ping the author of a flagged message
(or the deciding moderator) every time the flag post is written or updated, so a person
is their display name linked to their profile.

Limits. Everything is cut to Block Kit's limits (section text 3,000, field 2,000, header
150, button 75, 50 blocks a message, modal title 24) after escaping, never inside an
entity. The notification `text` of a message is written by the bot alone: it never
carries what a member or the model wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, assert_never

from bot.domain import (
    AuthorNotice,
    Case,
    CaseStatus,
    Effect,
    EffectContext,
    EffectKind,
    EffectOutcome,
    PolicyBrief,
    Verdict,
    VerdictStatus,
)
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
from bot.sanitise import valid_text

from .mapping import split_reference

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_CONTEXT_ELEMENTS = 10
MAX_MODAL_TITLE = 24
MAX_NOTIFICATION_TEXT = 3000
EXCERPT_CHARS = 1200  # of the message, before escaping: enough to judge, short enough to scan
ELLIPSIS = "…"

# Button action_ids are "modbot:<action>:<case id>" (unique within a message, as Slack
# requires); a button's value carries the case id too, or the appeal id for appeal buttons.
ACTION_PREFIX = "modbot"
CONFIRM, CONFIRM_DELETE, DISMISS, SHOW_REASONING = "confirm", "confirm_delete", "dismiss", "reasoning"
APPEAL, UPHOLD, OVERTURN = "appeal", "uphold", "overturn"
APPLY = "apply"  # a previewed draft: its id stands where a case id does
ACTIONS = (CONFIRM, CONFIRM_DELETE, DISMISS, SHOW_REASONING, APPEAL, UPHOLD, OVERTURN, APPLY)
ACTION_ID_PATTERN = re.compile(rf"^{ACTION_PREFIX}:({'|'.join(ACTIONS)}):([0-9A-Z]{{1,64}})$")

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_ZWSP = "\u200b"
_TOKEN_START = re.compile(r"<(?=[!@#])")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}

Block = dict[str, Any]


def action_id(action: str, case_id: str) -> str:
    return f"{ACTION_PREFIX}:{action}:{case_id}"


def parse_action_id(value: str) -> tuple[str, str] | None:
    """(action, case id) of one of this module's buttons, or None."""
    m = ACTION_ID_PATTERN.match(value)
    return (m.group(1), m.group(2)) if m else None


@dataclass(frozen=True)
class SlackMessage:
    """What chat.postMessage / chat.update send: the notification text (the bot's words only) and blocks."""

    text: str
    blocks: list[Block]


@dataclass(frozen=True)
class Directory:
    """How people and places are shown: display names the sink looked up, and the workspace's URL."""

    names: Mapping[str, str] = field(default_factory=dict)
    workspace_url: str | None = None

    def person(self, user_id: str | None) -> str:
        """A person as mrkdwn: their name linked to their profile, never a mention."""
        if not user_id:
            return "someone"
        label = escape(self.names.get(user_id) or user_id)
        url = self.workspace_url
        if url and _SAFE_URL.match(url) and _SLACK_USER.match(user_id):
            return f"<{url.rstrip('/')}/team/{user_id}|{label}>"
        return label


# ---------------------------------------------------------------- escaping and limits


def _escape_char(ch: str) -> str:
    return _ESCAPES.get(ch, ch)


def escape(text: str) -> str:
    """Member or model text made inert for mrkdwn: entities for & < >, and no broadcast words."""
    text = _BROADCAST.sub(lambda m: "@" + _ZWSP + m.group(1), valid_text(text))
    return "".join(_escape_char(ch) for ch in text)


def escaped_within(text: str, limit: int) -> str:
    """`escape(text)`, cut to at most `limit` characters with an ellipsis, never inside an entity."""
    full = escape(text)
    if len(full) <= limit:
        return full
    budget = max(0, limit - len(ELLIPSIS))
    out: list[str] = []
    used = 0
    for ch in _BROADCAST.sub(lambda m: "@" + _ZWSP + m.group(1), valid_text(text)):
        piece = _escape_char(ch)
        if used + len(piece) > budget:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + ELLIPSIS if limit >= len(ELLIPSIS) else ""


def plain_within(text: str, limit: int) -> str:
    """Plain text (buttons, headers, titles) cut to `limit` characters.

    Slack does not parse plain_text; a zero-width space after "<" and "@" keeps even a
    copy of it from ever reading as a mention.
    """
    text = _TOKEN_START.sub("<" + _ZWSP, _BROADCAST.sub(lambda m: "@" + _ZWSP + m.group(1), valid_text(text)))
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def cut_mrkdwn(mrkdwn: str, limit: int) -> str:
    """Cut mrkdwn the bot assembled (already escaped) without leaving half an entity or token."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = mrkdwn[: max(0, limit - len(ELLIPSIS))]
    amp, semi = cut.rfind("&"), cut.rfind(";")
    if amp > semi:
        cut = cut[:amp]
    lt, gt = cut.rfind("<"), cut.rfind(">")
    if lt > gt:
        cut = cut[:lt]
    return cut + ELLIPSIS


def md(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": cut_mrkdwn(text, limit) or " ", "verbatim": True}


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": plain_within(text, limit) or " ", "emoji": True}


def section(text: str) -> Block:
    return {"type": "section", "text": md(text)}


def fields_section(pairs: Sequence[tuple[str, str]]) -> Block:
    return {
        "type": "section",
        "fields": [md(f"*{label}*\n{value}", MAX_FIELD_TEXT) for label, value in pairs[:MAX_FIELDS]],
    }


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_TEXT)}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [md(t) for t in texts[:MAX_CONTEXT_ELEMENTS]]}


def button(text: str, action: str, case_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, MAX_BUTTON_TEXT),
        "action_id": action_id(action, case_id),
        "value": value,
    }
    if style is not None:
        element["style"] = style
    return element


def fit_blocks(blocks: list[Block], most: int = MAX_BLOCKS) -> list[Block]:
    """At most `most` blocks; what is cut is said, and the buttons (last) are kept."""
    if len(blocks) <= most:
        return blocks
    tail = [blocks[-1]] if blocks[-1].get("type") == "actions" else []
    keep = most - 1 - len(tail)
    dropped = len(blocks) - keep - len(tail)
    return [*blocks[:keep], context(f"_{dropped} more sections not shown._"), *tail]


def quote(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A member's text as a mrkdwn block quote, escaped and cut."""
    body = escaped_within(text, limit) if text.strip() else "_(no text)_"
    return "\n".join("&gt; " + line if line else "&gt;" for line in body.split("\n"))


def link(url: str | None, label: str) -> str | None:
    if url is None or not _SAFE_URL.match(url):
        return None
    return f"<{url}|{label}>"


def channel_ref(channel_id: str) -> str:
    """A channel as a link Slack resolves to its name (never a mention), else its id, escaped."""
    return f"<#{channel_id}>" if _SLACK_CHANNEL.match(channel_id) else escape(channel_id)


def where(case: Case) -> str:
    msg = case.message
    if msg.parent_channel_id is not None:
        return f"a thread in {channel_ref(msg.parent_channel_id)}"
    return channel_ref(msg.channel_id)


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "an unknown time"


# ---------------------------------------------------------------- verdicts and rules


def _violating(case: Case) -> list[Verdict]:
    return [v for v in case.verdicts if v.violation or v.status is VerdictStatus.NEEDS_REVIEW]


def _policy_label(brief: PolicyBrief | None, verdict: Verdict) -> str:
    return escape(f"{verdict.policy} v{verdict.policy_version}")


def rule_lines(brief: PolicyBrief | None, rule_ids: Iterable[str], version: int | None = None) -> list[str]:
    lines = []
    for rule_id in rule_ids:
        rule = brief.rule(rule_id) if brief is not None else None
        if rule is not None and rule.known and rule.text:
            lines.append(f"• *{escape(rule_id)}*: {escaped_within(rule.text, 400)}")
        else:
            # Without the policy's brief (an appeal notice) the rule's text is unknown, not the rule.
            missing = f" _(not a rule of v{version})_" if version is not None and brief is not None else ""
            lines.append(f"• *{escape(rule_id)}*{missing}")
    return lines


def _verdict_text(verdict: Verdict, brief: PolicyBrief | None, *, show_rationale: bool) -> str:
    title = f"*{_policy_label(brief, verdict)}*"
    if verdict.status is VerdictStatus.NEEDS_REVIEW:
        return f"{title}: the model's answer could not be read, so a person decides."
    lines = [f"{title} · confidence {verdict.confidence.value}"]
    lines += rule_lines(brief, verdict.rule_ids, verdict.policy_version)
    if not show_rationale:
        lines.append("_Rationale withheld: this policy is sensitive. Show reasoning tells moderators privately._")
    elif verdict.rationale.strip():
        lines.append("*Why:* " + escaped_within(verdict.rationale, 1200))
    return "\n".join(lines)


def _is_sensitive(context_: EffectContext, verdicts: Sequence[Verdict]) -> bool:
    return any((b := context_.policy(v.policy)) is not None and b.sensitive for v in verdicts)


def _deleted(case: Case) -> bool:
    return any(r.effect.kind is EffectKind.DELETE and r.outcome is EffectOutcome.DONE for r in case.effects)


# ---------------------------------------------------------------- the flag


_STATUS_HEADINGS = {
    CaseStatus.OPEN: "Flagged",
    CaseStatus.NEEDS_REVIEW: "Needs review",
    CaseStatus.CONFIRMED: "Confirmed",
    CaseStatus.DISMISSED: "Dismissed",
    CaseStatus.APPEALED: "Appealed",
    CaseStatus.UPHELD: "Appeal upheld",
    CaseStatus.OVERTURNED: "Appeal overturned",
    CaseStatus.CLEAN: "No violation",
    CaseStatus.SKIPPED: "Not judged",
}
_UNDECIDED = frozenset({CaseStatus.OPEN, CaseStatus.NEEDS_REVIEW})
_EFFECTS_SHOWN = (EffectKind.DELETE, EffectKind.DM_MODERATORS, EffectKind.NOTIFY_AUTHOR, EffectKind.TIMEOUT)


def _history(context_: EffectContext) -> str:
    h = context_.history
    if h.cases <= 1:
        return f"no earlier flag in {h.days} days"
    return f"{h.cases} flagged in {h.days} days, {h.confirmed} confirmed"


def _decision(case: Case, directory: Directory) -> str | None:
    if case.status in _UNDECIDED:
        return None
    heading = _STATUS_HEADINGS.get(case.status, case.status.value)
    by = f" by {directory.person(case.decided_by)}" if case.decided_by else ""
    at = f" at {when(case.decided_at)}" if case.decided_at else ""
    follow = {
        CaseStatus.APPEALED: " The author appealed: decide in the appeal post.",
        CaseStatus.OVERTURNED: " The message was found not to break the rules.",
    }.get(case.status, "")
    return f"*{heading}*{by}{at}.{follow}"


def _effects_line(case: Case) -> str | None:
    shown = [
        f"{r.effect.kind.value.replace('_', ' ')}: {r.outcome.value}"
        + (f" ({escaped_within(r.detail, 120)})" if r.detail and r.outcome is not EffectOutcome.DONE else "")
        for r in case.effects
        if r.effect.kind in _EFFECTS_SHOWN and r.outcome is not EffectOutcome.PENDING
    ]
    return "Effects: " + "; ".join(shown) if shown else None


def flag_message(
    context_: EffectContext,
    *,
    directory: Directory = Directory(),
    permalink: str | None = None,
    can_delete: bool = False,
) -> SlackMessage:
    """The case as moderators see it in the mod channel; buttons while it waits for a decision.

    Rendered again, with the decision and without buttons, for UPDATE_FLAG.
    """
    case = context_.case
    msg = case.message
    verdicts = _violating(case)
    sensitive = _is_sensitive(context_, verdicts)
    heading = _STATUS_HEADINGS.get(case.status, case.status.value)
    policies = ", ".join(dict.fromkeys(v.policy for v in verdicts)) or "no policy"
    first = verdicts[0] if verdicts else None
    blocks: list[Block] = [header(f"{heading} · {policies}")]
    blocks.append(
        fields_section(
            [
                ("Author", directory.person(msg.author.id)),
                ("Where", where(case)),
                ("Policy", _policy_label(None, first) if first else "none"),
                ("Confidence", first.confidence.value if first and first.violation else "n/a"),
                ("Author's history", _history(context_)),
                ("Case", f"`{escape(case.id)}`"),
            ]
        )
    )
    open_link = link(permalink, "Open the message")
    if sensitive:
        excerpt = "_No excerpt: this policy is sensitive._"
    else:
        excerpt = quote(msg.text)
        if msg.attachments:
            excerpt += f"\n_{len(msg.attachments)} attachment(s), not judged._"
    if msg.edited:
        excerpt += f"\n_Edited at {when(msg.edited_at)}._"
    blocks.append(section(excerpt + (f"\n{open_link}" if open_link else "")))
    blocks += [
        section(_verdict_text(v, context_.policy(v.policy), show_rationale=not sensitive))
        for v in verdicts[:MAX_FIELDS]
    ]
    joins = context_.joins
    if joins.count:
        names = ", ".join(directory.person(a) for a in joins.author_ids[:20])
        more = f" and {joins.count - 20} more" if joins.count > 20 else ""
        blocks.append(context(f"The same text was posted {joins.count} more time(s), by {names}{more}."))
    effects = _effects_line(case)
    if effects:
        blocks.append(context(effects))
    decision = _decision(case, directory)
    if decision is not None:
        blocks.append(section(decision))
    if case.status in _UNDECIDED:
        buttons = [button("Confirm", CONFIRM, case.id, case.id, "primary")]
        if can_delete and not _deleted(case):
            confirm_delete = button("Confirm and delete", CONFIRM_DELETE, case.id, case.id, "danger")
            confirm_delete["confirm"] = {
                "title": plain("Delete the message?", 100),
                "text": plain("The message is deleted from Slack for everyone. This cannot be undone.", 300),
                "confirm": plain("Delete", 30),
                "deny": plain("Cancel", 30),
                "style": "danger",
            }
            buttons.append(confirm_delete)
        buttons.append(button("Dismiss", DISMISS, case.id, case.id))
        buttons.append(button("Show reasoning", SHOW_REASONING, case.id, case.id))
        blocks.append({"type": "actions", "block_id": f"case:{case.id}", "elements": buttons})
    text = f"{heading}: case {case.id} ({plain_within(policies, 200)})"
    return SlackMessage(text=escape(text), blocks=fit_blocks(blocks))


def moderator_dm(
    context_: EffectContext, *, directory: Directory = Directory(), permalink: str | None = None
) -> SlackMessage:
    """A moderator's DM about a new case: the essentials and where to decide it, no buttons."""
    case = context_.case
    verdicts = _violating(case)
    sensitive = _is_sensitive(context_, verdicts)
    policies = ", ".join(dict.fromkeys(v.policy for v in verdicts)) or "no policy"
    lines = [
        f"A message by {directory.person(case.message.author.id)} in {where(case)} was flagged:"
        f" case `{escape(case.id)}`."
    ]
    mod_channel = context_.settings.mod_channel_id
    if mod_channel:
        lines.append(f"Decide it in {channel_ref(mod_channel)}.")
    blocks: list[Block] = [section("\n".join(lines))]
    if context_.dm_summary is not None:  # a raid: DMs paused, or how many were held back during a pause
        blocks.append(context(escape(context_.dm_summary.words())))
    if not sensitive:
        blocks.append(section(quote(case.message.text, 600)))
    blocks += [
        section(_verdict_text(v, context_.policy(v.policy), show_rationale=not sensitive))
        for v in verdicts[:MAX_FIELDS]
    ]
    open_link = link(permalink, "Open the message")
    if open_link:
        blocks.append(context(open_link))
    return SlackMessage(
        text=escape(f"Case {case.id} flagged ({plain_within(policies, 200)})"), blocks=fit_blocks(blocks)
    )


# ---------------------------------------------------------------- to the author


DEFAULT_SUPPORT_TEXT = (
    "We noticed something you wrote and wanted to check in. If things feel heavy right now, "
    "you don't have to carry it alone: reaching out to someone you trust, or to a local support line, "
    "can help. Nobody is in trouble here."
)


def author_notice(context_: EffectContext, effect: Effect) -> SlackMessage:
    """The author's DM: the rules (ids and text, never the model's reasoning) and an Appeal button.

    For a policy whose notice is SUPPORT, the policy's caring message alone: no removal
    wording, no rules, no appeal.
    """
    case = context_.case
    brief = context_.policy(effect.policy)
    place = where(case)
    if brief is not None and brief.author_notice is AuthorNotice.SUPPORT:
        words = brief.notice_text.strip() or DEFAULT_SUPPORT_TEXT
        return SlackMessage(
            text="A message from the moderators of this workspace",
            blocks=[section(escaped_within(words, MAX_SECTION_TEXT))],
        )
    deleted = _deleted(case) or any(
        r.effect.kind is EffectKind.DELETE and r.outcome in (EffectOutcome.PENDING, EffectOutcome.STARTED)
        for r in case.effects
    )
    happened = "was removed" if deleted else "was flagged to the moderators"
    opening = f"Your message in {place} {happened} because it appears to break "
    opening += "this rule of the workspace:" if len(effect.rule_ids) == 1 else "these rules of the workspace:"
    rules = rule_lines(brief, effect.rule_ids) or ["• _(no rule was named)_"]
    blocks: list[Block] = [section(opening + "\n" + "\n".join(rules))]
    sensitive = brief is not None and brief.sensitive
    if not sensitive:
        blocks.append(section("Your message:\n" + quote(case.message.text, 600)))
    blocks.append(section("If you think this is a mistake, you can appeal: a moderator will look at it again."))
    blocks.append(
        {
            "type": "actions",
            "block_id": f"appeal:{case.id}",
            "elements": [button("Appeal", APPEAL, case.id, case.id, "primary")],
        }
    )
    return SlackMessage(text=f"About your message in {place}", blocks=fit_blocks(blocks))


def appeal_outcome_notice(context_: EffectContext, effect: Effect) -> SlackMessage:
    """The author's DM saying how their appeal ended, with the moderator's note."""
    case = context_.case
    place = where(case)
    if effect.appeal_outcome == "overturned":
        text = (
            f"The moderators reviewed your appeal about your message in {place} and reversed their decision: "
            "your message does not break the rules."
        )
        if _deleted(case):
            text += " Slack cannot restore a deleted message; you are welcome to post it again."
    else:
        text = f"The moderators reviewed your appeal about your message in {place} and kept their decision."
    blocks: list[Block] = [section(text)]
    if effect.reason.strip():
        blocks.append(section("Moderator's note:\n" + quote(effect.reason, 1500)))
    return SlackMessage(text=f"Your appeal about your message in {place}", blocks=blocks)


# ---------------------------------------------------------------- mod-channel notices


def _appeal_message(appeal: AppealView, directory: Directory, title: str = "Appeal on case") -> SlackMessage:
    pending = appeal.appeal_status.value == "pending"
    blocks: list[Block] = [
        header(f"{title} {appeal.case_id}" + ("" if pending else f" · {appeal.appeal_status.value}")),
        fields_section(
            [
                ("Author", directory.person(appeal.author_id)),
                ("Where", channel_ref(split_channel(appeal.channel_id))),
                ("Case status", appeal.case_status.value),
                ("Filed", when(appeal.filed_at)),
            ]
        ),
        section("*The message*\n" + (quote(appeal.text) if appeal.text is not None else "_(no longer retained)_")),
        section("*The author says*\n" + quote(appeal.statement, 1000)),
    ]
    blocks += [
        section("*Original verdict* · " + _verdict_text(v, None, show_rationale=True)) for v in appeal.original[:5]
    ]
    if appeal.second_opinion:
        blocks += [
            section("*Second opinion* · " + _verdict_text(v, None, show_rationale=True))
            for v in appeal.second_opinion[:5]
        ]
    else:
        why = f": {escaped_within(appeal.second_opinion_error, 300)}" if appeal.second_opinion_error else ""
        blocks.append(context(f"No second opinion yet{why}."))
    if pending:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"appeal-decision:{appeal.appeal_id}",
                "elements": [
                    button("Uphold", UPHOLD, appeal.case_id, str(appeal.appeal_id), "primary"),
                    button("Overturn", OVERTURN, appeal.case_id, str(appeal.appeal_id), "danger"),
                ],
            }
        )
    else:
        by = f" by {directory.person(appeal.decided_by)}" if appeal.decided_by else ""
        note = f"\n{quote(appeal.note, 500)}" if appeal.note.strip() else ""
        blocks.append(section(f"*{appeal.appeal_status.value.title()}*{by} at {when(appeal.decided_at)}.{note}"))
    return SlackMessage(text=f"{title} {appeal.case_id}", blocks=fit_blocks(blocks))


def split_channel(channel_id: str) -> str:
    """The Slack channel of a channel id, a thread's id ("<channel>:<ts>") included."""
    try:
        return split_reference(channel_id)[0]
    except ValueError:
        return channel_id


def _digest_message(digest: Digest) -> SlackMessage:
    rate = f"{digest.overturn_rate:.0%}" if digest.overturn_rate is not None else "n/a"
    latency = f"{digest.median_latency_ms:.0f} ms" if digest.median_latency_ms is not None else "n/a"
    blocks: list[Block] = [
        header(f"Moderation digest · {digest.day}"),
        fields_section(
            [
                ("Messages", str(digest.messages)),
                ("Flagged", str(digest.flagged)),
                ("Confirmed", str(digest.confirmed)),
                ("Dismissed", str(digest.dismissed)),
                ("Appeals", f"{digest.appeals_filed} filed, {digest.appeals_decided} decided"),
                ("Overturned", f"{digest.overturned} (rate {rate})"),
                ("Median model latency", latency),
                ("Period", f"{when(digest.period_start)} to {when(digest.period_end)}"),
            ]
        ),
    ]
    lines = [
        f"• {escape(c.policy)}{' ' + escape(c.rule_id) if c.rule_id else ''}: {c.flags}"
        for c in digest.by_policy
        if c.rule_id is None or c.flags
    ]
    if lines:
        blocks.append(section("*Flags by policy*\n" + "\n".join(lines)))
    if digest.shadow_evaluation:
        blocks.append(
            section(
                "*The model against moderators' decisions*\n"
                + "\n".join(escape(line) for line in digest.shadow_evaluation)
            )
        )
    return SlackMessage(text=f"Moderation digest for {digest.day}", blocks=fit_blocks(blocks))


def _preview_finished(notice: PreviewFinished) -> SlackMessage:
    title = f"Preview of {escaped_within(notice.name, 100)}"
    if notice.summary is None:
        return SlackMessage(
            text="A policy preview failed", blocks=[section(f"*{title}* failed: {escaped_within(notice.problem, 500)}")]
        )
    s = notice.summary
    lines = [
        f"*{title}*: draft {s.draft_id} against v{s.base_version}; apply it to make it live.",
        f"{s.examined} messages examined ({s.skipped} skipped, {s.unchanged} unchanged, {s.undecided} undecided).",
        "Newly flagged: " + (", ".join(f"`{escape(c)}`" for c in s.newly_flagged[:20]) or "none"),
        "No longer flagged: " + (", ".join(f"`{escape(c)}`" for c in s.no_longer_flagged[:20]) or "none"),
    ]
    lines += [f"Warning: {escaped_within(w, 300)}" for w in s.warnings]
    return SlackMessage(text="A policy preview finished", blocks=[section("\n".join(lines))])


def notice_message(notice: Notice, *, directory: Directory = Directory()) -> SlackMessage:
    """A mod-channel notice as Block Kit; every kind of notice is handled (mypy checks the match)."""
    match notice:
        case AppealFiled():
            return _appeal_message(notice.appeal, directory)
        case SecondOpinion():  # posted when the queued second opinion arrives, after the appeal's own post
            return _appeal_message(notice.appeal, directory, "Second opinion on the appeal of case")
        case PreviewFinished():
            return _preview_finished(notice)
        case AppealReminder():
            lines = [
                f"• case `{escape(a.case_id)}`, appeal {a.appeal_id}:"
                f" waiting {a.waiting_hours:.0f} h since {when(a.filed_at)}"
                for a in notice.appeals[:40]
            ]
            if len(notice.appeals) > 40:
                lines.append(f"…and {len(notice.appeals) - 40} more.")
            count = len(notice.appeals)
            title = f"{count} appeal(s) have waited longer than {notice.limit_hours} h"
            return SlackMessage(text=title, blocks=[section(f"*{title}*\n" + "\n".join(lines))])
        case Digest():
            return _digest_message(notice)
        case ModelOutage():
            text = (
                f"The model has not answered since {when(notice.since)}: {escaped_within(notice.problem, 500)}. "
                "Messages wait in the queue and are judged when it answers again; nothing is lost."
            )
            return SlackMessage(text="The moderation model is not answering", blocks=[section(":warning: " + text)])
        case ModelRecovered():
            down = f"from {when(notice.outage_started)} to {when(notice.recovered_at)}"
            text = f"The model answers again (it was down {down})."
            return SlackMessage(
                text="The moderation model answers again", blocks=[section(":white_check_mark: " + text)]
            )
        case _:
            assert_never(notice)


def modal_title(text: str) -> dict[str, Any]:
    """A modal's title, cut to Slack's 24 characters."""
    return plain(text, MAX_MODAL_TITLE)
