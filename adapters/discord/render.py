"""How modbot's posts look on Discord: pure functions from cases and notices to embeds and buttons.

Everything that came from a member or the model is escaped (markdown and mentions) and
cut to Discord's limits: message 2,000 characters, embed title 256, description 4,096,
field 1,024 (name 256), 25 fields, 6,000 in all. The limits are counted as discord.py
counts them (`len()`, code points). Mentions are shown (a mention inside an embed never
pings, and every post goes out with no mention allowed); the sink adds the one exception,
a moderator-role ping, explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import assert_never

import discord

from adapters.discord.custom_ids import CaseAction
from bot.domain import (
    AuthorNotice,
    Case,
    CaseStatus,
    Effect,
    EffectContext,
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

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELDS_LIMIT = 25
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
# A flag's excerpt: enough to judge at a glance; the jump link shows the rest.
EXCERPT_LIMIT = 1000
AUTHOR_EXCERPT_LIMIT = 300
ELLIPSIS = "…"
# @everyone, @here, <@user>, <@!user>, <@&role>: a zero-width space after the sigil keeps
# them readable and stops Discord from parsing a mention (channel links stay links).
_MENTION = re.compile(r"@(everyone|here)|<@([!&]?)(\d+)>", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"

ORANGE = discord.Colour.orange()
RED = discord.Colour.red()
GREY = discord.Colour.light_grey()
GOLD = discord.Colour.gold()
GREEN = discord.Colour.green()
BLURPLE = discord.Colour.blurple()

_DECIDED = {
    CaseStatus.CONFIRMED: ("Confirmed", RED),
    CaseStatus.DISMISSED: ("Dismissed", GREY),
    CaseStatus.UPHELD: ("Appeal upheld", RED),
    CaseStatus.OVERTURNED: ("Appeal overturned", GREY),
}
# Cases a moderator can still act on from the flag post.
_REVIEWABLE = (CaseStatus.OPEN, CaseStatus.NEEDS_REVIEW, CaseStatus.APPEALED)


@dataclass(frozen=True)
class ButtonSpec:
    """One button of a post; the sink turns it into a DynamicItem carrying the case id."""

    action: CaseAction
    case_id: str
    label: str
    style: discord.ButtonStyle
    disabled: bool = False


@dataclass(frozen=True)
class Outgoing:
    """One message to send or to edit into place (its only text content is the sink's explicit ping)."""

    embeds: tuple[discord.Embed, ...]
    buttons: tuple[ButtonSpec, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------- text safety


def fit(text: str, limit: int) -> str:
    """Cut text to `limit` characters with an ellipsis, never leaving an escape backslash dangling."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ELLIPSIS))]
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS


def defuse_mentions(text: str) -> str:
    def defuse(m: re.Match[str]) -> str:
        if m.group(1):
            return f"@{_ZERO_WIDTH_SPACE}{m.group(1)}"
        return f"<@{_ZERO_WIDTH_SPACE}{m.group(2)}{m.group(3)}>"

    return _MENTION.sub(defuse, text)


def untrusted(text: str, limit: int) -> str:
    """A member's or the model's words, shown as plain text: no markdown, no mention, within the limit."""
    return fit(defuse_mentions(discord.utils.escape_markdown(text)), limit)


def trusted(text: str, limit: int) -> str:
    """Text an admin wrote (policy rules, notices): markdown kept, mentions still defused."""
    return fit(defuse_mentions(text), limit)


def user_ref(user_id: str | None) -> str:
    """A Discord user shown as a mention (it never pings: no mention is allowed); other ids as text."""
    if user_id is None:
        return "someone"
    if user_id.isdigit():
        return f"<@{user_id}>"
    return untrusted(user_id, 100)


def jump_url(server_id: str, channel_id: str, message_id: str) -> str:
    return f"https://discord.com/channels/{server_id}/{channel_id}/{message_id}"


def when(moment: datetime) -> str:
    return discord.utils.format_dt(moment, "f")


def shrink_to_total(embed: discord.Embed, limit: int = EMBED_TOTAL_LIMIT) -> discord.Embed:
    """Cut the longest text of the embed until it fits Discord's total (the free texts are the long ones)."""
    while (excess := len(embed) - limit) > 0:
        parts: list[tuple[int, str, int]] = [(len(embed.description or ""), "description", -1)]
        parts += [(len(f.value or ""), "value", i) for i, f in enumerate(embed.fields)]
        parts += [(len(f.name or ""), "name", i) for i, f in enumerate(embed.fields)]
        parts += [(len(embed.footer.text or ""), "footer", -1), (len(embed.title or ""), "title", -1)]
        size, part, index = max(parts)
        if size <= 1:
            break
        keep = max(1, size - excess)
        if part == "description":
            embed.description = fit(embed.description or "", keep)
        elif part == "footer":
            embed.set_footer(text=fit(embed.footer.text or "", keep))
        elif part == "title":
            embed.title = fit(embed.title or "", keep)
        else:
            f = embed.fields[index]
            name, value = f.name or "", f.value or ""
            if part == "name":
                name = fit(name, keep)
            else:
                value = fit(value, keep)
            embed.set_field_at(index, name=name, value=value, inline=bool(f.inline))
    return embed


def add_fields(embed: discord.Embed, fields: Sequence[tuple[str, str, bool]]) -> discord.Embed:
    """Add (name, value, inline) fields within Discord's limits; past 25, the last says how many were left out."""
    usable = [(n, v, i) for n, v, i in fields if n.strip() and v.strip()]
    if len(usable) > FIELDS_LIMIT:
        left_out = len(usable) - (FIELDS_LIMIT - 1)
        usable = [*usable[: FIELDS_LIMIT - 1], ("More", f"{left_out} more not shown", False)]
    for name, value, inline in usable:
        embed.add_field(name=fit(name, FIELD_NAME_LIMIT), value=fit(value, FIELD_VALUE_LIMIT), inline=inline)
    return embed


def new_embed(title: str, *, description: str = "", colour: discord.Colour, url: str | None = None) -> discord.Embed:
    return discord.Embed(
        title=fit(title, TITLE_LIMIT), description=fit(description, DESCRIPTION_LIMIT) or None, colour=colour, url=url
    )


def finish(embed: discord.Embed, footer: str, timestamp: datetime | None = None) -> discord.Embed:
    embed.set_footer(text=fit(footer, FOOTER_LIMIT))
    if timestamp is not None:
        embed.timestamp = timestamp
    return shrink_to_total(embed)


# ---------------------------------------------------------------- cases


def _rules_text(verdict: Verdict, brief: PolicyBrief | None) -> str:
    lines = []
    for rule_id in verdict.rule_ids:
        rule = brief.rule(rule_id) if brief else None
        if rule is None or not rule.known:
            lines.append(f"**{untrusted(rule_id, 40)}** (not a rule of this policy version)")
        else:
            lines.append(f"**{untrusted(rule.id, 40)}**: {trusted(rule.text, 400)}")
    return "\n".join(lines) or "(no rule cited)"


def _withholds_excerpt(context: EffectContext) -> bool:
    """No excerpt if any policy the case cites is sensitive (doxxing, sexual content involving minors)."""
    cited = {v.policy for v in context.case.verdicts}
    return any(p.sensitive for p in context.policies if p.name in cited)


def _verdicts_shown(case: Case) -> list[Verdict]:
    shown = [v for v in case.verdicts if v.violation or v.status is VerdictStatus.NEEDS_REVIEW]
    return shown or list(case.verdicts)


def _history_line(context: EffectContext) -> str:
    h = context.history
    flagged = "1 flag" if h.cases == 1 else f"{h.cases} flags"
    return f"{flagged} in the last {h.days} days, {h.confirmed} confirmed"


def flag_post(context: EffectContext) -> Outgoing:
    """The case in the mod channel: who, where, what, which rules, how sure, why; and the review buttons.

    The same function renders the first post and its later updates (decision taken, repeats
    joined): the buttons that decide are disabled once the case is decided; Show reasoning
    stays, so moderators can still read why the model flagged it.
    """
    case = context.case
    msg = case.message
    link = jump_url(msg.server_id, msg.channel_id, msg.message_id)
    verdicts = _verdicts_shown(case)
    needs_review = case.status is CaseStatus.NEEDS_REVIEW
    first = verdicts[0] if verdicts else None
    if needs_review:
        title = "Needs review: the model gave no usable verdict"
    elif first is not None:
        title = f"Flagged: {first.policy} v{first.policy_version}"
    else:
        title = "Flagged"
    decided = _DECIDED.get(case.status)
    colour = decided[1] if decided else (GOLD if needs_review else ORANGE)

    if _withholds_excerpt(context):
        excerpt = "No excerpt: this policy is marked sensitive. Open the message to see it."
    elif msg.text:
        excerpt = "> " + untrusted(msg.text, EXCERPT_LIMIT).replace("\n", "\n> ")
    else:
        excerpt = "(no text)"
    embed = new_embed(title, description=excerpt, colour=colour, url=link)

    where = f"<#{msg.channel_id}>" + (f" in <#{msg.parent_channel_id}>" if msg.parent_channel_id else "")
    fields: list[tuple[str, str, bool]] = [
        ("Author", f"{user_ref(msg.author.id)} ({untrusted(msg.author.name, 80)})\n{_history_line(context)}", True),
        ("Where", f"{where}\n[Jump to the message]({link})", True),
    ]
    if msg.edited:
        fields.append(
            ("Edited", "This revision is an edit" + (f", {when(msg.edited_at)}" if msg.edited_at else ""), True)
        )
    for verdict in verdicts:
        brief = context.policy(verdict.policy)
        name = f"{verdict.policy} v{verdict.policy_version}: {verdict.confidence.value} confidence"
        if verdict.status is VerdictStatus.NEEDS_REVIEW:
            fields.append(
                (f"{verdict.policy} v{verdict.policy_version}", "The model's answer could not be read.", False)
            )
            continue
        fields.append((name, _rules_text(verdict, brief), False))
        if verdict.rationale:
            fields.append(("Rationale", untrusted(verdict.rationale, FIELD_VALUE_LIMIT), False))
    if msg.attachments:
        names = ", ".join(untrusted(a.name, 100) for a in msg.attachments)
        fields.append(("Attachments", f"{names} (not judged: text only)", False))
    if context.joins.count:
        authors = ", ".join(user_ref(a) for a in context.joins.author_ids[:20])
        more = f" and {len(context.joins.author_ids) - 20} more" if len(context.joins.author_ids) > 20 else ""
        fields.append(
            ("Repeats", f"{context.joins.count} more messages with the same text, from {authors}{more}", False)
        )
    if decided is not None:
        at = f", {when(case.decided_at)}" if case.decided_at else ""
        fields.append(("Decision", f"{decided[0]} by {user_ref(case.decided_by)}{at}", False))
    add_fields(embed, fields)
    finish(embed, f"case {case.id}", msg.sent_at)

    open_for_review = case.status in _REVIEWABLE
    buttons = (
        ButtonSpec(CaseAction.CONFIRM, case.id, "Confirm", discord.ButtonStyle.danger, not open_for_review),
        ButtonSpec(
            CaseAction.CONFIRM_DELETE, case.id, "Confirm and delete", discord.ButtonStyle.danger, not open_for_review
        ),
        ButtonSpec(CaseAction.TIMEOUT, case.id, "Time out", discord.ButtonStyle.danger, not open_for_review),
        ButtonSpec(CaseAction.DISMISS, case.id, "Dismiss", discord.ButtonStyle.secondary, not open_for_review),
        ButtonSpec(CaseAction.REASONING, case.id, "Show reasoning", discord.ButtonStyle.primary),
    )
    return Outgoing(embeds=(embed,), buttons=buttons)


def moderator_dm(context: EffectContext) -> Outgoing:
    """The rationale for a moderator's DMs: the flag without buttons (a DM has no roles to check)."""
    post = flag_post(context)
    embed = post.embeds[0]
    embed.title = fit(f"For moderators: {embed.title}", TITLE_LIMIT)
    if context.dm_summary is not None:  # a raid: DMs paused, or how many were held back during a pause
        said = trusted(context.dm_summary.words(), FIELD_VALUE_LIMIT)
        embed.description = fit(f"**{said}**\n\n{embed.description or ''}", DESCRIPTION_LIMIT)
    return Outgoing(embeds=(shrink_to_total(embed),))


def author_notice(context: EffectContext, effect: Effect, server_name: str) -> Outgoing:
    """What the author is told: the rules their message broke and an Appeal button; never the reasoning.

    A SUPPORT policy (self-harm) sends its own caring words instead: no rules, no removal
    wording, no appeal. The notice says what the message broke, not what was done about it:
    the other effects' results are not known when it is worded.
    """
    case = context.case
    msg = case.message
    brief = context.policy(effect.policy)
    server = untrusted(server_name, 100)
    if brief is not None and brief.author_notice is AuthorNotice.SUPPORT:
        words = brief.notice_text.strip() or (
            "Someone on the server's moderation team wanted to check in with you. "
            "If you are going through a hard time, you don't have to face it alone: "
            "please reach out to someone you trust or a local support line."
        )
        embed = new_embed(
            f"A message from the moderators of {server}", description=trusted(words, DESCRIPTION_LIMIT), colour=BLURPLE
        )
        return Outgoing(embeds=(finish(embed, f"{server}"),))

    link = jump_url(msg.server_id, msg.channel_id, msg.message_id)
    policy = f"{brief.name} v{brief.version}" if brief else (effect.policy or "the server's rules")
    embed = new_embed(
        f"About your message in {server}",
        description=f"Your [message]({link}) was found to break the server's **{untrusted(policy, 100)}** policy.",
        colour=ORANGE,
    )
    rule_ids = effect.rule_ids or next((v.rule_ids for v in case.verdicts if v.policy == effect.policy), ())
    rules = []
    for rule_id in rule_ids:
        rule = brief.rule(rule_id) if brief else None
        text = trusted(rule.text, FIELD_VALUE_LIMIT) if rule is not None and rule.known else "(see the server's rules)"
        rules.append((f"Rule {fit(rule_id, 60)}", text, False))
    fields = list(rules)
    if msg.text and not _withholds_excerpt(context):
        fields.append(("Your message", untrusted(msg.text, AUTHOR_EXCERPT_LIMIT), False))
    fields.append(
        (
            "Think this is a mistake?",
            "Press **Appeal** to tell the moderators why. A moderator reads every appeal.",
            False,
        )
    )
    add_fields(embed, fields)
    finish(embed, f"{server} · case {case.id}", case.created_at)
    return Outgoing(
        embeds=(embed,), buttons=(ButtonSpec(CaseAction.APPEAL, case.id, "Appeal", discord.ButtonStyle.primary),)
    )


def appeal_outcome_notice(context: EffectContext, effect: Effect, server_name: str) -> Outgoing:
    case = context.case
    msg = case.message
    server = untrusted(server_name, 100)
    if effect.appeal_outcome == "overturned":
        text, colour = "The moderators agreed with you: the decision on your message was overturned.", GREEN
    else:
        text, colour = "The moderators looked at your appeal again and kept their decision.", GREY
    link = jump_url(msg.server_id, msg.channel_id, msg.message_id)
    embed = new_embed(f"Your appeal in {server}", description=f"{text}\n[Your message]({link})", colour=colour)
    if effect.reason:
        add_fields(embed, [("Moderator's note", untrusted(effect.reason, FIELD_VALUE_LIMIT), False)])
    return Outgoing(embeds=(finish(embed, f"{server} · case {case.id}"),))


def permission_warning(permission: str, where: str, consequence: str) -> Outgoing:
    """Posted once per missing permission (not per message) in the mod channel."""
    embed = new_embed(
        f"modbot is missing a permission: {permission}",
        description=(
            f"Discord refused {consequence} in {where} because modbot lacks **{permission}**. "
            "Cases that need it are recorded as failed. Give modbot's role this permission "
            "(Server Settings > Roles, or the channel's permissions) to fix it. "
            "This warning is not repeated for every message."
        ),
        colour=GOLD,
    )
    return Outgoing(embeds=(finish(embed, "modbot"),))


# ---------------------------------------------------------------- notices


def _verdict_line(v: Verdict) -> str:
    if v.status is VerdictStatus.NEEDS_REVIEW:
        return f"{v.policy} v{v.policy_version}: no usable verdict"
    label = "violation" if v.violation else "no violation"
    rules = f" ({', '.join(untrusted(r, 40) for r in v.rule_ids)})" if v.rule_ids else ""
    rationale = f": {untrusted(v.rationale, 300)}" if v.rationale else ""
    return f"**{v.policy} v{v.policy_version}**: {label}{rules}, {v.confidence.value} confidence{rationale}"


def appeal_post(view: AppealView, *, title: str = "Appeal on case") -> Outgoing:
    """An appeal for moderators, with the original rationale, the second opinion and Uphold/Overturn.

    No excerpt of the message: the appeal view does not say whether its policy is
    sensitive, so moderators follow the links (the flag post shows an excerpt when allowed).
    """
    link = jump_url(view.server_id, view.channel_id, view.message_id)
    pending = view.appeal_status.value == "pending"
    embed = new_embed(
        f"{title} {view.case_id}",
        description=f"{user_ref(view.author_id)} appeals. [Jump to the message]({link})"
        + ("" if view.text is not None else "\nThe message's text is no longer kept."),
        colour=ORANGE if pending else GREY,
    )
    second = (
        "\n".join(_verdict_line(v) for v in view.second_opinion)
        if view.second_opinion
        else (untrusted(view.second_opinion_error, 500) if view.second_opinion_error else "Not in yet.")
    )
    fields = [
        ("Statement", untrusted(view.statement, FIELD_VALUE_LIMIT) or "(empty)", False),
        ("Original verdict", "\n".join(_verdict_line(v) for v in view.original) or "(none)", False),
        ("Second opinion", second, False),
    ]
    if not pending:
        at = f", {when(view.decided_at)}" if view.decided_at else ""
        fields.append(
            ("Decision", f"{view.appeal_status.value.capitalize()} by {user_ref(view.decided_by)}{at}", False)
        )
        if view.note:
            fields.append(("Note", untrusted(view.note, FIELD_VALUE_LIMIT), False))
    add_fields(embed, fields)
    finish(embed, f"case {view.case_id} · appeal {view.appeal_id}", view.filed_at)
    buttons = (
        ButtonSpec(CaseAction.UPHOLD, view.case_id, "Uphold", discord.ButtonStyle.danger, not pending),
        ButtonSpec(CaseAction.OVERTURN, view.case_id, "Overturn", discord.ButtonStyle.success, not pending),
    )
    return Outgoing(embeds=(embed,), buttons=buttons)


def _reminder(notice: AppealReminder) -> Outgoing:
    lines = [
        f"case {a.case_id} (appeal {a.appeal_id}): waiting {a.waiting_hours:.0f} h since {when(a.filed_at)}"
        for a in notice.appeals
    ]
    embed = new_embed(
        f"{len(notice.appeals)} appeal(s) waiting longer than {notice.limit_hours} h",
        description="\n".join(lines),
        colour=GOLD,
    )
    return Outgoing(embeds=(finish(embed, "modbot"),))


def _digest(notice: Digest) -> Outgoing:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    latency = "n/a" if notice.median_latency_ms is None else f"{notice.median_latency_ms / 1000:.1f} s"
    embed = new_embed(f"Daily digest, {notice.day}", colour=BLURPLE)
    fields: list[tuple[str, str, bool]] = [
        ("Messages", str(notice.messages), True),
        ("Flagged", str(notice.flagged), True),
        ("Confirmed / dismissed", f"{notice.confirmed} / {notice.dismissed}", True),
        ("Appeals filed / decided", f"{notice.appeals_filed} / {notice.appeals_decided}", True),
        ("Overturned", f"{notice.overturned} ({pct(notice.overturn_rate)})", True),
        ("Median model latency", latency, True),
    ]
    by_policy = "\n".join(
        f"{untrusted(p.policy, 60)}{' ' + untrusted(p.rule_id, 40) if p.rule_id else ''}: {p.flags}"
        for p in notice.by_policy
    )
    if by_policy:
        fields.append(("Flags by policy", by_policy, False))
    if notice.shadow_evaluation:
        fields.append(
            ("Model against moderators", "\n".join(untrusted(s, 300) for s in notice.shadow_evaluation), False)
        )
    add_fields(embed, fields)
    return Outgoing(embeds=(finish(embed, f"{when(notice.period_start)} to {when(notice.period_end)}"),))


def _preview_finished(notice: PreviewFinished) -> Outgoing:
    title = f"Preview of {untrusted(notice.name, 100)}"
    if notice.summary is None:
        embed = new_embed(title, description=f"It failed: {untrusted(notice.problem, 1000)}", colour=RED)
        return Outgoing(embeds=(finish(embed, f"asked by {notice.requested_by}"),))
    s = notice.summary
    embed = new_embed(
        title,
        description=f"Draft {s.draft_id} against v{s.base_version}: apply it to make it live.",
        colour=BLURPLE,
    )
    fields: list[tuple[str, str, bool]] = [
        ("Examined", f"{s.examined} ({s.skipped} skipped)", True),
        ("Unchanged / undecided", f"{s.unchanged} / {s.undecided}", True),
        ("Newly flagged", ", ".join(untrusted(c, 40) for c in s.newly_flagged[:20]) or "none", False),
        ("No longer flagged", ", ".join(untrusted(c, 40) for c in s.no_longer_flagged[:20]) or "none", False),
    ]
    if s.warnings:
        fields.append(("Warnings", "\n".join(untrusted(w, 300) for w in s.warnings), False))
    add_fields(embed, fields)
    return Outgoing(embeds=(finish(embed, f"asked by {notice.requested_by}"),))


def notice_post(notice: Notice) -> Outgoing:
    """Every mod-channel notice, one case each: a new kind fails mypy here until it is drawn."""
    match notice:
        case AppealFiled():
            return appeal_post(notice.appeal)
        case SecondOpinion():  # posted when the queued second opinion arrives, after the appeal's own post
            return appeal_post(notice.appeal, title="Second opinion on the appeal of case")
        case PreviewFinished():
            return _preview_finished(notice)
        case AppealReminder():
            return _reminder(notice)
        case Digest():
            return _digest(notice)
        case ModelOutage():
            embed = new_embed(
                "The model is not answering",
                description=(
                    f"Since {when(notice.since)}: {untrusted(notice.problem, 1000)}\n"
                    "Messages wait in the queue and are judged once it answers again; nothing is lost."
                ),
                colour=RED,
            )
            return Outgoing(embeds=(finish(embed, "modbot"),))
        case ModelRecovered():
            embed = new_embed(
                "The model answers again",
                description=f"The outage lasted from {when(notice.outage_started)} to {when(notice.recovered_at)}.",
                colour=GREEN,
            )
            return Outgoing(embeds=(finish(embed, "modbot"),))
        case _:
            assert_never(notice)
