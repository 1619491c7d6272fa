"""Block Kit for what people see when they act: command replies and the modals they fill in. Pure.

The same rules as adapters/slack/render.py: whatever a member, a moderator or the model
wrote is escaped (a policy's text, a sample, a note, a rationale), every mrkdwn object is
verbatim, people are named and never mentioned, and everything is cut to Block Kit's
limits. A modal's inputs are bounded by the core's own limits (an appeal statement or a
note of 1,000 characters) so that Slack refuses an overlong text in the form itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain import (
    AuthorNotice,
    Case,
    EffectKind,
    EffectOutcome,
    HumanDecision,
    Mode,
    Policy,
    ServerSettings,
    Verdict,
    utcnow,
)
from bot.policy_format import rules_in
from bot.workflow.policies import PolicyHistory, PolicyState
from bot.workflow.preview import PreviewChange, PreviewReport
from bot.workflow.review import DecisionOutcome

from . import render
from .render import (
    MAX_SECTION_TEXT,
    Block,
    Directory,
    SlackMessage,
    button,
    channel_ref,
    context,
    escape,
    escaped_within,
    fit_blocks,
    header,
    plain,
    quote,
    section,
    when,
)

# Slack's plain_text_input holds at most 3,000 characters; a policy may take two of them.
MAX_INPUT_TEXT = 3000
MAX_POLICY_TEXT = 2 * MAX_INPUT_TEXT
MAX_NOTE = 1000  # the core's limit for notes and appeal statements
CODE_CHUNK = MAX_SECTION_TEXT - 10  # room for the fences

# People shown by id when no names were looked up.
NAMES_UNKNOWN = Directory()

# Modal callback ids: what a submission is for.
POLICY_SET_VIEW = "modbot:policy_set"
POLICY_PREVIEW_VIEW = "modbot:policy_preview"
SETUP_VIEW = "modbot:setup"
APPEAL_VIEW = "modbot:appeal"
DECIDE_APPEAL_VIEW = "modbot:decide_appeal"
REPORT_VIEW = "modbot:report"

# Input block ids (each input's action_id is the same word).
NAME, TEXT, MORE, LAST, STATEMENT, NOTE, REASON = "name", "text", "more", "last", "statement", "note", "reason"
REPORT_EXCERPT = 1000  # of the reported message, carried in the form's metadata (3,000 at most)
MOD_CHANNEL, MOD_GROUPS, MOD_USERS = "mod_channel", "moderator_groups", "moderator_users"
EXEMPT_GROUPS, EXEMPT_CHANNELS, MODE, EFFECTS = "exempt_groups", "exempt_channels", "mode", "effects"

# The effects /modbot setup offers for a violation; timeouts do not exist on Slack.
SETUP_EFFECTS = (
    (EffectKind.FLAG, "Flag it in the moderators' channel"),
    (EffectKind.DM_MODERATORS, "Message each moderator"),
    (EffectKind.NOTIFY_AUTHOR, "Tell the author why, with an Appeal button"),
    (EffectKind.DELETE, "Delete the message"),
)


def message(mrkdwn: str, notification: str = "modbot") -> SlackMessage:
    """A reply of one or more sections of the bot's own mrkdwn (anything quoted in it is escaped already)."""
    return SlackMessage(text=notification, blocks=fit_blocks([section(chunk) for chunk in _chunks(mrkdwn)]))


def _chunks(mrkdwn: str, most: int = MAX_SECTION_TEXT) -> list[str]:
    """Split at line ends into pieces a section holds (a line too long for one is cut)."""
    pieces: list[str] = []
    current = ""
    for line in mrkdwn.split("\n"):
        if len(line) > most:
            line = render.cut_mrkdwn(line, most)
        if current and len(current) + 1 + len(line) > most:
            pieces.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    pieces.append(current)
    return [p for p in pieces if p.strip()] or [" "]


def refusal(reason: str) -> SlackMessage:
    """The core's refusal, meant for people, said as it is (escaped: it may quote names people chose)."""
    return message(":no_entry_sign: " + escape(reason), "modbot could not do that")


def failure(reference: str) -> SlackMessage:
    return message(
        ":warning: modbot hit an error doing that, and did not finish it. "
        f"The operator's logs have the details under `{escape(reference)}`; try again in a minute.",
        "modbot hit an error",
    )


def code(title: str, text: str) -> SlackMessage:
    """A title and a text shown as it is, in code blocks (split at line ends to fit)."""
    blocks: list[Block] = [section(title)]
    chunk: list[str] = []
    size = 0
    for line in text.splitlines() or [""]:
        escaped = escaped_within(line, CODE_CHUNK)
        if chunk and size + len(escaped) + 1 > CODE_CHUNK:
            blocks.append(section("```\n" + "\n".join(chunk) + "\n```"))
            chunk, size = [], 0
        chunk.append(escaped)
        size += len(escaped) + 1
    blocks.append(section("```\n" + "\n".join(chunk) + "\n```"))
    return SlackMessage(text="modbot", blocks=fit_blocks(blocks))


# ---------------------------------------------------------------- policies


def _mode(mode: Mode | None) -> str:
    return mode.value if mode is not None else "the workspace's mode"


def policy_list(states: Sequence[PolicyState]) -> SlackMessage:
    if not states:
        return message(
            "This workspace has no policy yet. Write one with `/policy set`, or start from the library: "
            "`/policy templates`, then `/policy install NAME`."
        )
    lines = ["*Policies of this workspace*"]
    for s in states:
        switch = "on" if s.enabled else "*off*"
        lines.append(
            f"• *{escape(s.policy.name)}* v{s.policy.version} ({s.versions} version(s)): {switch},"
            f" mode {_mode(s.mode)}" + (" · sensitive" if s.policy.sensitive else "")
        )
    return message("\n".join(lines), "Policies of this workspace")


def document_text(policy: Policy) -> str:
    """A stored version as the policy file it came from (front matter, text, author notice), to read or edit."""
    front = ["---", f"name: {policy.name}", f"description: {policy.description or policy.name}"]
    if policy.sensitive:
        front.append("sensitive: true")
    if policy.author_notice is not AuthorNotice.REMOVAL:
        front.append(f"author_notice: {policy.author_notice.value}")
    text = "\n".join([*front, "---", policy.text.strip("\n")])
    if policy.notice_text:
        text += "\n\n## AUTHOR NOTICE\n" + policy.notice_text.strip("\n")
    return text + "\n"


def policy_text(policy: Policy, directory: Directory = NAMES_UNKNOWN) -> SlackMessage:
    title = (
        f"*{escape(policy.name)}* v{policy.version}, by {directory.person(policy.author)} at {when(policy.created_at)}"
    )
    return code(title, document_text(policy))


def policy_history(history: PolicyHistory, directory: Directory = NAMES_UNKNOWN) -> SlackMessage:
    lines = [f"*History of {escape(history.name)}*"]
    for p in history.versions:
        lines.append(f"• v{p.version}: {directory.person(p.author)}, {when(p.created_at)}")
    switches = [c for c in history.changes if c.action == "policy.switch"]
    if switches:
        lines.append("*Switches*")
        lines += [f"• {when(c.at)}: {directory.person(c.actor)} set {escape(c.after or '')}" for c in switches[-20:]]
    return message("\n".join(lines), f"History of {history.name}")


def _rules(verdict: Verdict, policy: Policy | None) -> list[str]:
    known = {r.id: r.text for r in rules_in(policy.text)} if policy is not None else {}
    return [
        f"• *{escape(rule)}*: {escaped_within(known[rule], 400)}" if rule in known else f"• *{escape(rule)}*"
        for rule in verdict.rule_ids
    ]


def test_result(policy: Policy, verdict: Verdict, sample: str) -> SlackMessage:
    """How the live policy judged a sample: only the person who asked sees it."""
    if verdict.status.value != "decided":
        outcome = "the model's answer could not be read, so a moderator would decide"
    elif verdict.violation:
        outcome = f"*breaks the policy* (confidence {verdict.confidence.value})"
    else:
        outcome = f"does not break the policy (confidence {verdict.confidence.value})"
    lines = [f"*{escape(policy.name)}* v{policy.version} on your sample: {outcome}", quote(sample, 600)]
    lines += _rules(verdict, policy)
    if verdict.rationale.strip():
        lines.append("*Why:* " + escaped_within(verdict.rationale, 1200))
    lines.append("_A test only: nothing was recorded and nobody was told._")
    return message("\n".join(lines), f"Test of {policy.name}")


def _change_line(change: PreviewChange) -> str:
    why = escaped_within(change.after.rationale, 200) if change.after.rationale.strip() else ""
    return (
        f"• case `{escape(change.case_id)}` ({change.case_status.value})"
        f" in {channel_ref(render.split_channel(change.channel_id))}:"
        f" {escaped_within(change.text, 200)}" + (f"\n   _{why}_" if why else "")
    )


def preview_report(report: PreviewReport) -> SlackMessage:
    """The report of a preview, with a button that makes the draft live."""
    against = f"v{report.base_version}" if report.base_version else "no live version"
    lines = [
        f"*Preview of draft {report.draft_id}* of *{escape(report.name)}* (against {against}) on the last"
        f" {report.examined} retained messages: {len(report.newly_flagged)} newly flagged,"
        f" {len(report.no_longer_flagged)} no longer flagged, {report.unchanged} unchanged,"
        f" {report.skipped} skipped, {report.undecided} undecided."
    ]
    for title, changes in (("Newly flagged", report.newly_flagged), ("No longer flagged", report.no_longer_flagged)):
        if changes:
            lines.append(f"*{title}*")
            lines += [_change_line(c) for c in changes[:15]]
            if len(changes) > 15:
                lines.append(f"…and {len(changes) - 15} more.")
    lines += [f"_warning: {escaped_within(w, 300)}_" for w in report.warnings[:5]]
    lines.append(f"Nothing is live yet. *Apply* (or `/policy apply {report.draft_id}`) makes this draft live.")
    blocks = [section(chunk) for chunk in _chunks("\n".join(lines))]
    blocks.append(
        {
            "type": "actions",
            "block_id": f"draft:{report.draft_id}",
            "elements": [
                button(
                    f"Apply draft {report.draft_id}",
                    render.APPLY,
                    str(report.draft_id),
                    str(report.draft_id),
                    "primary",
                )
            ],
        }
    )
    return SlackMessage(text=f"Preview of draft {report.draft_id}", blocks=fit_blocks(blocks))


# ---------------------------------------------------------------- cases


_OUTCOME_WORDS = {
    EffectOutcome.DONE: "done",
    EffectOutcome.FAILED: "failed",
    EffectOutcome.UNSUPPORTED: "not possible",
    EffectOutcome.PENDING: "waiting",
    EffectOutcome.STARTED: "under way",
}


def decision_reply(outcome: DecisionOutcome, directory: Directory = NAMES_UNKNOWN) -> SlackMessage:
    """What a moderator's decision did, said to them alone."""
    case = outcome.case
    action = outcome.decision.action.value
    past = {"confirm": "Confirmed", "dismiss": "Dismissed", "uphold": "Upheld the appeal of", "overturn": "Overturned"}
    lines = [f"{past.get(action, action)} case `{escape(case.id)}`."]
    for record in outcome.effects:
        kind = record.effect.kind.value.replace("_", " ")
        detail = (
            f" ({escaped_within(record.detail, 200)})"
            if record.detail and record.outcome is not EffectOutcome.DONE
            else ""
        )
        lines.append(f"• {kind}: {_OUTCOME_WORDS.get(record.outcome, record.outcome.value)}{detail}")
    lines += [f"• {escape(note)}" for note in outcome.notes]
    if outcome.strikes is not None:
        lines.append(f"• the author's strikes in the window: {outcome.strikes}")
    return message("\n".join(lines), f"Case {case.id}: {action}")


def reasoning(case: Case, decisions: Iterable[HumanDecision], directory: Directory = NAMES_UNKNOWN) -> SlackMessage:
    """The model's rationale and reasoning for each verdict: moderators only, privately."""
    lines = [f"*The model's reasoning on case `{escape(case.id)}`*"]
    for v in case.verdicts:
        verdict = "violation" if v.violation else "no violation"
        lines.append(
            f"*{escape(v.policy)} v{v.policy_version}*: {verdict}, confidence {v.confidence.value},"
            f" effort {v.effort.value}" + (f", rules {escape(', '.join(v.rule_ids))}" if v.rule_ids else "")
        )
        if v.rationale.strip():
            lines.append("*Rationale:* " + escaped_within(v.rationale, 1000))
        if v.reasoning.strip():
            lines.append("*Reasoning:*\n" + quote(v.reasoning, 2500))
    for d in decisions:
        note = f": {escaped_within(d.note, 300)}" if d.note.strip() else ""
        lines.append(f"_{d.action.value} by {directory.person(d.moderator_id)} at {when(d.at)}{note}_")
    return message("\n".join(lines), f"Reasoning on case {case.id}")


# ---------------------------------------------------------------- status


def status(
    lines_for_operator: Sequence[str],
    settings: ServerSettings,
    *,
    open_cases: int,
    waiting_appeals: int,
    policies: int,
    connection: str,
    problems: Sequence[str],
    directory: Directory = NAMES_UNKNOWN,
    group_handles: Mapping[str, str] | None = None,
) -> SlackMessage:
    handles = group_handles or {}

    def groups(ids: Sequence[str]) -> str:
        return ", ".join(escape("@" + handles[g] if g in handles else g) for g in ids) or "none"

    people = ", ".join(directory.person(u) for u in settings.moderator_user_ids) or "none"
    mod_channel = channel_ref(settings.mod_channel_id) if settings.mod_channel_id else "*not set*"
    effects = "; ".join(
        ", ".join(k.value for k in rule.effects) + f" (from {rule.min_confidence.value} confidence)"
        for rule in settings.effect_rules
    )
    workspace = [
        "*This workspace*",
        f"• moderators' channel: {mod_channel}",
        f"• moderator user groups: {groups(settings.moderator_role_ids)}; moderators by name: {people}",
        f"• exempt user groups: {groups(settings.exempt_role_ids)}; exempt channels: "
        + (", ".join(channel_ref(c) for c in settings.exempt_channel_ids) or "none"),
        f"• mode: {settings.mode.value}; on a violation: {escape(effects)}",
        f"• policies: {policies}; open cases: {open_cases}; appeals waiting: {waiting_appeals}",
    ]
    blocks: list[Block] = [
        header("modbot status"),
        section(
            "*modbot*\n" + "\n".join("• " + escape(line) for line in lines_for_operator) + f"\n• Slack: {connection}"
        ),
        section("\n".join(workspace)),
    ]
    if problems:
        blocks.append(section("*To fix*\n" + "\n".join(":warning: " + escape(p) for p in problems)))
    return SlackMessage(text="modbot status", blocks=fit_blocks(blocks))


# ---------------------------------------------------------------- modals


@dataclass(frozen=True)
class Metadata:
    """What a modal carries from where it was opened to its submission (Slack's private_metadata)."""

    response_url: str | None = None  # the command's, to report back where the person typed it
    channel: str | None = None  # where the button was pressed
    ts: str | None = None  # the message whose button opened the modal
    case_id: str | None = None
    action: str | None = None
    appeal_id: int | None = None
    author: str | None = None  # of a reported message
    excerpt: str | None = None  # of a reported message, cut to REPORT_EXCERPT

    def dump(self) -> str:
        # Characters, not \u escapes: Slack counts the metadata's characters.
        fields = {k: v for k, v in self.__dict__.items() if v is not None}
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def load(cls, raw: str | None) -> Metadata:
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            return cls()
        return (
            cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__}) if isinstance(data, dict) else cls()
        )


def _modal(callback_id: str, title: str, submit: str, blocks: list[Block], meta: Metadata) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": render.modal_title(title),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "private_metadata": meta.dump(),
        "blocks": blocks,
    }


def _text_input(
    block_id: str,
    label: str,
    *,
    initial: str = "",
    multiline: bool = False,
    optional: bool = False,
    most: int = MAX_INPUT_TEXT,
    hint: str | None = None,
    placeholder: str | None = None,
) -> Block:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": block_id,
        "multiline": multiline,
        "max_length": most,
    }
    if initial:
        element["initial_value"] = initial[:most]
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, 2000), "element": element}
    if optional:
        block["optional"] = True
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def split_policy_text(text: str) -> tuple[str, str] | None:
    """A policy's text across the form's two inputs, split at a line end; None when it does not fit in both."""
    if len(text) <= MAX_INPUT_TEXT:
        return text, ""
    cut = text.rfind("\n", 0, MAX_INPUT_TEXT + 1)
    cut = cut if cut > 0 else MAX_INPUT_TEXT
    first, rest = text[:cut], text[cut:].lstrip("\n")
    return (first, rest) if len(rest) <= MAX_INPUT_TEXT else None


def policy_modal(
    callback_id: str, meta: Metadata, *, name: str | None = None, text: str = "", last: int = 100
) -> dict[str, Any]:
    """The form for `/policy set` and `/policy preview`: a name and the text, in up to two parts."""
    preview = callback_id == POLICY_PREVIEW_VIEW
    parts = split_policy_text(text) if text else ("", "")
    blocks: list[Block] = []
    if parts is None:
        blocks.append(
            context(f"The live text is {len(text):,} characters, more than this form holds: write the whole new text.")
        )
        parts = ("", "")
    blocks += [
        _text_input(
            NAME,
            "Policy name",
            initial=name or "",
            optional=True,
            most=64,
            hint="Leave empty to take the name from the text's front matter.",
        ),
        _text_input(
            TEXT,
            "Policy text",
            initial=parts[0],
            multiline=True,
            hint="Markdown with ## VIOLATES and ## SAFE sections of rules (ids like HB1.a).",
        ),
        _text_input(
            MORE,
            "Policy text, continued",
            initial=parts[1],
            multiline=True,
            optional=True,
            hint="Only for a policy longer than 3,000 characters: the rest of it.",
        ),
    ]
    if preview:
        blocks.append(
            _text_input(LAST, "Messages to judge again", initial=str(last), most=4, hint="The most recent 1 to 1,000.")
        )
    title, submit = ("Preview a draft", "Preview") if preview else ("New policy version", "Save")
    return _modal(callback_id, title, submit, blocks, meta)


def appeal_modal(case_id: str, meta: Metadata) -> dict[str, Any]:
    blocks: list[Block] = [
        section(
            "Tell the moderators why the decision about your message is wrong. "
            f"A moderator who did not flag it looks again; you can appeal case `{escape(case_id)}` once."
        ),
        _text_input(STATEMENT, "Why is the decision wrong?", multiline=True, most=MAX_NOTE),
    ]
    return _modal(APPEAL_VIEW, "Appeal", "Send appeal", blocks, meta)


def decide_appeal_modal(action: str, case_id: str, meta: Metadata) -> dict[str, Any]:
    overturn = action == render.OVERTURN
    explain = (
        "The message is found not to break the rules; the author is told."
        if overturn
        else "The decision stands; the author is told."
    )
    blocks: list[Block] = [
        section(f"*{'Overturn' if overturn else 'Uphold'}* the appeal of case `{escape(case_id)}`. {explain}"),
        _text_input(NOTE, "A note to the author (optional)", multiline=True, optional=True, most=MAX_NOTE),
    ]
    title = "Overturn the appeal" if overturn else "Uphold the appeal"
    return _modal(DECIDE_APPEAL_VIEW, title, "Overturn" if overturn else "Uphold", blocks, meta)


def report_modal(meta: Metadata) -> dict[str, Any]:
    """A member's report of a message: what they report, and why (optional)."""
    blocks: list[Block] = [
        section("You are asking the moderators to look at this message:\n" + quote(meta.excerpt or "", 600)),
        _text_input(REASON, "What is wrong with it? (optional)", multiline=True, optional=True, most=500),
        context("The moderators see who reported it. The author is not told."),
    ]
    return _modal(REPORT_VIEW, "Report to moderators", "Report", blocks, meta)


def member_report(
    meta: Metadata, reporter: str, reason: str, *, permalink: str | None, directory: Directory = NAMES_UNKNOWN
) -> SlackMessage:
    """A member's report, as the moderators' channel shows it."""
    where = channel_ref(meta.channel) if meta.channel else "a channel"
    blocks: list[Block] = [
        header("Reported by a member"),
        render.fields_section(
            [
                ("Reported by", directory.person(reporter)),
                ("Author", directory.person(meta.author)),
                ("Where", where),
                ("Reported", when(utcnow())),
            ]
        ),
        section(quote(meta.excerpt or "") + (f"\n{render.link(permalink, 'Open the message')}" if permalink else "")),
    ]
    if reason.strip():
        blocks.append(section("*Why*\n" + quote(reason, 500)))
    blocks.append(context("A report opens no case: look at the message, and act on it in Slack or with modbot."))
    return SlackMessage(text="A member reported a message", blocks=fit_blocks(blocks))


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": plain(text, 75), "value": value}


def simple_effects(settings: ServerSettings) -> tuple[EffectKind, ...] | None:
    """The effects of the workspace's one rule for every policy and confidence; None when its rules are customised."""
    rules = settings.effect_rules
    if len(rules) != 1 or rules[0].policies is not None or rules[0].min_confidence.value != "low":
        return None
    return rules[0].effects


def setup_modal(
    settings: ServerSettings,
    meta: Metadata,
    *,
    groups: Sequence[tuple[str, str]] | None,
    can_delete: bool,
    delete_limit: str,
) -> dict[str, Any]:
    """`/modbot setup`: pickers for channels, user groups and people; mode; what a violation does.

    `groups` are the workspace's user groups (id, handle), or None when it has none (a free plan).
    """
    blocks: list[Block] = [
        section(
            "Choose where flags go and who moderates. Moderators are workspace admins and owners, the members of "
            "the moderator user groups, and the people named here."
        )
    ]
    channel: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": MOD_CHANNEL,
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if settings.mod_channel_id:
        channel["initial_conversation"] = settings.mod_channel_id
    blocks.append(
        {
            "type": "input",
            "block_id": MOD_CHANNEL,
            "label": plain("Moderators' channel", 2000),
            "hint": plain("Invite modbot there: /invite @modbot", 2000),
            "element": channel,
        }
    )
    options = [_option(g, f"@{handle}") for g, handle in (groups or [])][:100]
    known = {o["value"] for o in options}

    def group_picker(block_id: str, label: str, chosen: Sequence[str]) -> Block:
        element: dict[str, Any] = {"type": "multi_static_select", "action_id": block_id, "options": options}
        initial = [o for o in options if o["value"] in chosen]
        if initial:
            element["initial_options"] = initial
        return {
            "type": "input",
            "block_id": block_id,
            "optional": True,
            "label": plain(label, 2000),
            "element": element,
        }

    if options:
        blocks.append(group_picker(MOD_GROUPS, "Moderator user groups", settings.moderator_role_ids))
    else:
        blocks.append(context("This workspace has no user groups (they need a paid plan): name moderators below."))
    users: dict[str, Any] = {"type": "multi_users_select", "action_id": MOD_USERS}
    if settings.moderator_user_ids:
        users["initial_users"] = list(settings.moderator_user_ids)
    blocks.append(
        {
            "type": "input",
            "block_id": MOD_USERS,
            "optional": True,
            "label": plain("Moderators by name", 2000),
            "element": users,
        }
    )
    if options:
        blocks.append(
            group_picker(EXEMPT_GROUPS, "User groups whose messages are not judged", settings.exempt_role_ids)
        )
    unknown = [g for g in (*settings.moderator_role_ids, *settings.exempt_role_ids) if g not in known]
    if unknown:
        blocks.append(context("Set now but not a user group here any more: " + escape(", ".join(unknown))))
    exempt: dict[str, Any] = {
        "type": "multi_conversations_select",
        "action_id": EXEMPT_CHANNELS,
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if settings.exempt_channel_ids:
        exempt["initial_conversations"] = list(settings.exempt_channel_ids)
    blocks.append(
        {
            "type": "input",
            "block_id": EXEMPT_CHANNELS,
            "optional": True,
            "label": plain("Channels that are not judged", 2000),
            "element": exempt,
        }
    )
    modes = [
        _option(Mode.ENFORCE.value, "Enforce: carry out the effects below"),
        _option(Mode.SHADOW.value, "Shadow: judge and record only"),
    ]
    blocks.append(
        {
            "type": "input",
            "block_id": MODE,
            "label": plain("Mode", 2000),
            "element": {
                "type": "radio_buttons",
                "action_id": MODE,
                "options": modes,
                "initial_option": modes[0] if settings.mode is Mode.ENFORCE else modes[1],
            },
        }
    )
    current = simple_effects(settings)
    if current is None:
        blocks.append(
            context(
                "The effect rules are customised (per policy or confidence): change them with `modbot settings set`."
            )
        )
    else:
        choices = [_option(k.value, words) for k, words in SETUP_EFFECTS if k is not EffectKind.DELETE or can_delete]
        element: dict[str, Any] = {"type": "checkboxes", "action_id": EFFECTS, "options": choices}
        initial = [o for o in choices if o["value"] in {k.value for k in current}]
        if initial:
            element["initial_options"] = initial
        blocks.append(
            {
                "type": "input",
                "block_id": EFFECTS,
                "label": plain("When a message breaks a policy", 2000),
                "element": element,
            }
        )
        if not can_delete:
            blocks.append(context(escape(delete_limit)))
    return _modal(SETUP_VIEW, "Set up modbot", "Save", blocks, meta)


def state_values(view: Mapping[str, Any]) -> dict[str, Any]:
    """A submitted view's inputs as plain values by block id: text, a list of ids or option values, or None."""
    out: dict[str, Any] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for entry in actions.values():
            if "value" in entry:
                out[block_id] = entry["value"]
            elif "selected_conversation" in entry:
                out[block_id] = entry["selected_conversation"]
            elif "selected_conversations" in entry:
                out[block_id] = list(entry["selected_conversations"] or [])
            elif "selected_users" in entry:
                out[block_id] = list(entry["selected_users"] or [])
            elif "selected_options" in entry:
                out[block_id] = [o["value"] for o in entry["selected_options"] or []]
            elif "selected_option" in entry:
                option = entry["selected_option"]
                out[block_id] = option["value"] if option else None
    return out
