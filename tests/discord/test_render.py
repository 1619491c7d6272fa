"""How posts look, and that whatever members and the model write, they fit Discord and ping no one.

The limits are checked by the local Discord's own validator (tests/fakes/discord_fake.py
`limit_problems`, Discord's 400 code 50035), not by the renderer's constants.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.discord import render
from adapters.discord.custom_ids import APPEAL_FORM, TEMPLATE, CaseAction, appeal_form_id, button_id
from bot.domain import (
    Attachment,
    AuthorHistory,
    AuthorNotice,
    Case,
    CaseStatus,
    Confidence,
    Effect,
    EffectContext,
    EffectKind,
    FlagJoins,
    PolicyBrief,
    RuleText,
    ServerSettings,
    Verdict,
    VerdictStatus,
)
from bot.notices import AppealFiled, AppealView, Notice
from bot.pipeline import new_case_id
from tests.fakes.discord_fake import limit_problems
from tests.helpers import make_message

LIVE_MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d+>")
CASE_ID = "0123456789AB"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HARASSMENT = PolicyBrief(
    name="harassment",
    version=3,
    rules=(RuleText(id="HB1.a", text="Insulting a target."), RuleText(id="HB2.a", text="Telling a target to die.")),
)


def verdict(policy: str = "harassment", rules: tuple[str, ...] = ("HB1.a",), **kw: Any) -> Verdict:
    return Verdict(
        policy=policy,
        policy_version=3,
        violation=True,
        rule_ids=rules,
        confidence=Confidence.HIGH,
        rationale="Insults the member (HB1.a).",
        reasoning="THE CHAIN OF THOUGHT",
        **kw,
    )


def context(
    text: str = "you idiot",
    *,
    verdicts: tuple[Verdict, ...] = (),
    policies: tuple[PolicyBrief, ...] = (HARASSMENT,),
    status: CaseStatus = CaseStatus.OPEN,
    **case_fields: Any,
) -> EffectContext:
    message = make_message("5001", text, server="2000", channel="3000", author="4000", platform="discord")
    case = Case(
        id=CASE_ID, message=message, status=status, verdicts=verdicts or (verdict(),), created_at=T0, **case_fields
    )
    return EffectContext(
        case=case,
        settings=ServerSettings(platform="discord", server_id="2000", mod_channel_id="3999"),
        policies=policies,
        history=AuthorHistory(cases=3, confirmed=1),
    )


def payload(out: render.Outgoing) -> dict[str, Any]:
    """The message body discord.py sends for these embeds and buttons."""
    buttons = [
        {"type": 2, "custom_id": button_id(b.action, b.case_id), "label": b.label, "disabled": b.disabled}
        for b in out.buttons
    ]
    return {
        "embeds": [e.to_dict() for e in out.embeds],
        "components": [{"type": 1, "components": buttons[i : i + 5]} for i in range(0, len(buttons), 5)],
    }


def all_text(out: render.Outgoing) -> str:
    return repr(payload(out))


def free_text(out: render.Outgoing) -> list[str]:
    """What came from members and the model: the description and field values, not the author line."""
    texts = []
    for embed in out.embeds:
        texts.append(embed.description or "")
        texts += [f.value or "" for f in embed.fields if f.name not in ("Author", "Decision", "Repeats")]
    return texts


# ---------------------------------------------------------------- the flag


def test_the_flag_shows_who_where_what_which_rules_how_sure_and_why() -> None:
    out = render.flag_post(context())
    [embed] = out.embeds
    data = embed.to_dict()
    assert data["title"] == "Flagged: harassment v3"
    assert data["url"] == "https://discord.com/channels/2000/3000/5001"
    assert data["description"] == "> you idiot"
    fields = {f["name"]: f["value"] for f in data["fields"]}
    assert fields["Author"] == "<@4000> (4000)\n3 flags in the last 30 days, 1 confirmed"
    assert fields["Where"] == "<#3000>\n[Jump to the message](https://discord.com/channels/2000/3000/5001)"
    assert fields["harassment v3: high confidence"] == "**HB1.a**: Insulting a target."
    assert fields["Rationale"] == "Insults the member (HB1.a)."
    assert data["footer"]["text"] == f"case {CASE_ID}"
    assert "CHAIN OF THOUGHT" not in all_text(out)  # the reasoning is behind Show reasoning only
    assert [(b.action, b.disabled) for b in out.buttons] == [
        (CaseAction.CONFIRM, False),
        (CaseAction.CONFIRM_DELETE, False),
        (CaseAction.TIMEOUT, False),
        (CaseAction.DISMISS, False),
        (CaseAction.REASONING, False),
    ]


def test_a_sensitive_policy_shows_no_excerpt_anywhere() -> None:
    sensitive = HARASSMENT.model_copy(update={"sensitive": True})
    ctx = context("secret address 12 Elm St", policies=(sensitive,))
    flag, notice = (
        render.flag_post(ctx),
        render.author_notice(ctx, Effect(kind=EffectKind.NOTIFY_AUTHOR, policy="harassment"), "S"),
    )
    for out in (flag, notice, render.moderator_dm(ctx)):
        assert "Elm" not in all_text(out)
    assert flag.embeds[0].description == "No excerpt: this policy is marked sensitive. Open the message to see it."


def test_thread_edit_attachments_unknown_rules_and_joins_are_shown() -> None:
    message = make_message(
        "5001",
        "you idiot",
        server="2000",
        channel="3100",
        author="4000",
        platform="discord",
        parent_channel_id="3000",
        edited=True,
        edited_at=T0 + timedelta(minutes=1),
        attachments=(Attachment(name="cat.png", content_type="image/png"),),
    )
    ctx = context(verdicts=(verdict(rules=("HB1.a", "ZZ9.z")),)).model_copy(
        update={
            "case": Case(
                id=CASE_ID, message=message, status=CaseStatus.OPEN, verdicts=(verdict(rules=("HB1.a", "ZZ9.z")),)
            ),
            "joins": FlagJoins(count=30, author_ids=tuple(str(4100 + i) for i in range(30))),
        }
    )
    fields = {f.name: f.value for f in render.flag_post(ctx).embeds[0].fields}
    assert fields["Where"].startswith("<#3100> in <#3000>")
    assert fields["Edited"].startswith("This revision is an edit")
    assert fields["Attachments"] == "cat.png (not judged: text only)"
    assert "**ZZ9.z** (not a rule of this policy version)" in fields["harassment v3: high confidence"]
    assert fields["Repeats"].startswith("30 more messages with the same text, from <@4100>")
    assert fields["Repeats"].endswith("and 10 more")


def test_a_decided_case_disables_the_deciding_buttons_and_says_who_decided() -> None:
    out = render.flag_post(context(status=CaseStatus.DISMISSED, decided_by="4242", decided_at=T0))
    fields = {f.name: f.value for f in out.embeds[0].fields}
    assert fields["Decision"].startswith("Dismissed by <@4242>")
    assert {b.action: b.disabled for b in out.buttons} == {
        CaseAction.CONFIRM: True,
        CaseAction.CONFIRM_DELETE: True,
        CaseAction.TIMEOUT: True,
        CaseAction.DISMISS: True,
        CaseAction.REASONING: False,
    }
    console = render.flag_post(context(status=CaseStatus.CONFIRMED, decided_by="cli:ana*"))
    assert "Confirmed by cli:ana\\*" in {f.name: f.value for f in console.embeds[0].fields}["Decision"]


def test_a_verdict_the_model_could_not_give_asks_for_review() -> None:
    unusable = Verdict(policy="harassment", policy_version=3, status=VerdictStatus.NEEDS_REVIEW)
    out = render.flag_post(context(verdicts=(unusable,), status=CaseStatus.NEEDS_REVIEW))
    assert out.embeds[0].title == "Needs review: the model gave no usable verdict"
    assert not any(b.disabled for b in out.buttons)


# ---------------------------------------------------------------- the author


def test_the_author_is_told_the_rules_and_can_appeal_never_the_reasoning() -> None:
    effect = Effect(
        kind=EffectKind.NOTIFY_AUTHOR, policy="harassment", rule_ids=("HB1.a", "HB2.a"), reason="rationale!"
    )
    out = render.author_notice(context(), effect, "Cool **Server**")
    [embed] = out.embeds
    assert embed.title == "About your message in Cool \\*\\*Server\\*\\*"
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Rule HB1.a"] == "Insulting a target." and fields["Rule HB2.a"] == "Telling a target to die."
    assert fields["Your message"] == "you idiot"
    text = all_text(out)
    assert "CHAIN OF THOUGHT" not in text and "rationale!" not in text and "Insults the member" not in text
    assert [(b.action, b.case_id) for b in out.buttons] == [(CaseAction.APPEAL, CASE_ID)]


def test_a_support_policy_sends_its_caring_words_without_removal_or_appeal() -> None:
    caring = PolicyBrief(
        name="self-harm",
        version=1,
        author_notice=AuthorNotice.SUPPORT,
        notice_text="We care about you. You can talk to someone at **988** any time.",
        rules=(RuleText(id="SH1.a", text="Encouraging self-harm."),),
    )
    ctx = context("i want to disappear", verdicts=(verdict("self-harm", ("SH1.a",)),), policies=(caring,))
    out = render.author_notice(ctx, Effect(kind=EffectKind.NOTIFY_AUTHOR, policy="self-harm", rule_ids=("SH1.a",)), "S")
    assert out.buttons == ()
    assert out.embeds[0].description == "We care about you. You can talk to someone at **988** any time."
    text = all_text(out).lower()
    for word in ("removed", "deleted", "break", "rule", "appeal", "sh1.a", "violat"):
        assert word not in text


def test_the_appeal_outcome_is_told_without_buttons() -> None:
    upheld = render.appeal_outcome_notice(
        context(), Effect(kind=EffectKind.NOTIFY_APPEAL_OUTCOME, appeal_outcome="upheld"), "S"
    )
    assert "kept their decision" in (upheld.embeds[0].description or "") and upheld.buttons == ()


# ---------------------------------------------------------------- custom ids


def test_custom_ids_fit_the_dynamic_item_template_and_every_case_id() -> None:
    for _ in range(50):
        case_id = new_case_id()
        for action in CaseAction:
            match = re.fullmatch(TEMPLATE, button_id(action, case_id))
            assert match is not None and (match["action"], match["case_id"]) == (action.value, case_id)
            assert len(button_id(action, case_id)) <= 100
        assert APPEAL_FORM.fullmatch(appeal_form_id(case_id))
    assert re.fullmatch(TEMPLATE, "modbot:confirm:0123456789AU") is None  # U is not Crockford


# ---------------------------------------------------------------- properties: any text fits and pings no one

# Markdown, mention and escape characters, whole mentions, and characters beyond ASCII, in any order.
TOKENS = [*"ab *_~`|>#-[]()\\\n@<>&!:0123456789", "@everyone", "@here", "<@123>", "<@!9>", "<@&45>", "é", "😀"]
hostile = st.lists(st.sampled_from(TOKENS), max_size=1500).map("".join) | st.text(max_size=300).map(lambda s: s * 20)
names = st.text(max_size=400)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=hostile,
    author_name=names,
    rationale=hostile,
    rule_text=hostile,
    policy_count=st.integers(min_value=1, max_value=30),
    rule_count=st.integers(min_value=0, max_value=12),
    joiners=st.integers(min_value=0, max_value=200),
)
def test_any_flag_fits_discord_and_pings_no_one(
    text: str, author_name: str, rationale: str, rule_text: str, policy_count: int, rule_count: int, joiners: int
) -> None:
    rules = tuple(f"R{i}.a" for i in range(rule_count))
    briefs = tuple(
        PolicyBrief(
            name=f"policy-{p}-" + "x" * 60, version=1, rules=tuple(RuleText(id=r, text=rule_text) for r in rules)
        )
        for p in range(policy_count)
    )
    verdicts = tuple(
        verdict(b.name, rules).model_copy(update={"rationale": rationale, "policy_version": 1}) for b in briefs
    )
    message = make_message("5001", text, server="2000", channel="3000", author="4000", platform="discord")
    message = message.model_copy(update={"author": message.author.model_copy(update={"name": author_name})})
    ctx = EffectContext(
        case=Case(id=CASE_ID, message=message, status=CaseStatus.OPEN, verdicts=verdicts),
        settings=ServerSettings(platform="discord", server_id="2000"),
        policies=briefs,
        joins=FlagJoins(count=joiners, author_ids=tuple(str(i) for i in range(joiners))),
    )
    effect = Effect(kind=EffectKind.NOTIFY_AUTHOR, policy=briefs[0].name, rule_ids=rules)
    for out in (
        render.flag_post(ctx),
        render.moderator_dm(ctx),
        render.author_notice(ctx, effect, author_name),
    ):
        assert limit_problems(payload(out)) == []
        for value in free_text(out):
            assert LIVE_MENTION.search(value) is None, value


@settings(max_examples=40, deadline=None)
@given(statement=hostile, note=hostile, error=hostile)
def test_any_appeal_fits_discord_and_pings_no_one(statement: str, note: str, error: str) -> None:
    view = AppealView(
        case_id=CASE_ID,
        server_id="2000",
        channel_id="3000",
        message_id="5001",
        author_id="4000",
        text=statement,
        case_status=CaseStatus.APPEALED,
        original=tuple(verdict().model_copy(update={"rationale": note}) for _ in range(5)),
        appeal_id=1,
        statement=statement[:1000],
        appeal_status="upheld",  # type: ignore[arg-type]
        second_opinion=(),
        second_opinion_error=error,
        filed_at=T0,
        decided_by="4242",
        decided_at=T0,
        note=note,
    )
    notice: Notice = AppealFiled(appeal=view)
    out = render.notice_post(notice)
    assert limit_problems(payload(out)) == []
    assert all(LIVE_MENTION.search(v) is None for v in free_text(out) if not v.startswith("<@4000> appeals"))
    assert all(b.disabled for b in out.buttons)  # decided already


@given(text=st.text(max_size=3000), limit=st.integers(min_value=1, max_value=2500))
def test_fit_cuts_within_the_limit_and_keeps_the_start(text: str, limit: int) -> None:
    cut = render.fit(text, limit)
    assert len(cut) <= limit
    assert cut == text if len(text) <= limit else (cut.endswith(render.ELLIPSIS) and text.startswith(cut[:-1]))


@given(text=hostile, limit=st.integers(min_value=1, max_value=5000))
def test_untrusted_text_is_inert_and_within_the_limit(text: str, limit: int) -> None:
    shown = render.untrusted(text, limit)
    assert len(shown) <= limit and LIVE_MENTION.search(shown) is None
    assert not shown.rstrip(render.ELLIPSIS).endswith("\\") or shown.rstrip(render.ELLIPSIS).endswith("\\\\")


@pytest.mark.parametrize("total", [5999, 6000, 6001, 9000])
def test_shrink_to_total_keeps_an_embed_within_6000(total: int) -> None:
    import discord

    embed = discord.Embed(title="t" * 200, description="d" * 4000)
    for i in range(25):
        embed.add_field(name=f"n{i}" * 20, value="v" * 1000)
    render.shrink_to_total(embed, total)
    assert len(embed) <= total
