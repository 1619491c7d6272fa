"""Block Kit rendering: escaping and Block Kit's limits, property-tested; sensitive policies; the decision update."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack import render
from bot.domain import (
    Author,
    AuthorHistory,
    Case,
    CaseStatus,
    Confidence,
    EffectContext,
    FlagJoins,
    Message,
    PolicyBrief,
    RuleText,
    ServerSettings,
    Verdict,
    VerdictStatus,
)
from bot.notices import AppealFiled, AppealView, Digest, ModelOutage, PolicyCount
from tests.fakes.slack_fake import block_kit_problems
from tests.slack.test_http_events import texts_in

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOSTILE = ["<!channel>", "<!here>", "<!everyone>", "<!subteam^S1|@mods>", "<@U123>", "<#C1>", "@here", "@channel"]
HOSTILE += ["&", "&amp;", "<", ">", "&lt;", "\n", "*", "`", "|", "\u202e", "\ud800", "\x00", "🙂" * 3]
# Member or model text: anything at all, rich in the pieces that could form a mention.
hostile_text = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE)), max_size=60).map("".join)
long_text = st.one_of(hostile_text, st.integers(2000, 9000).map(lambda n: ("<!here> &" * n)[:n]))
# The only "<" the renderer may write: channel links, and links to Slack pages.
OUR_TOKEN = re.compile(r"<#[CG][A-Z0-9]+>|<https://[^\s<>|]+\|[^<>]*>")
BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def assert_inert(blocks: list[dict[str, object]], text: str) -> None:
    """mrkdwn (and the notification text): no "<" or ">" but the renderer's own links; plain text: no token start."""
    for obj in [{"type": "mrkdwn", "text": text}, *text_objects(blocks)]:
        chunk = str(obj["text"])
        assert not re.search(r"@(channel|here|everyone)\b", chunk, re.IGNORECASE), chunk
        if obj["type"] == "plain_text":  # never parsed by Slack; still, no "<!" or "<@" appears
            assert not re.search(r"<[!@#]", chunk), chunk
            continue
        rest = OUR_TOKEN.sub("", chunk)
        assert "<" not in rest and ">" not in rest, chunk
        assert not BROKEN_ENTITY.search(rest), chunk


def text_objects(value: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
            found.append(value)
        for v in value.values():
            found += text_objects(v)
    elif isinstance(value, list):
        for v in value:
            found += text_objects(v)
    return found


@given(hostile_text)
def test_escaped_text_can_form_no_token_and_no_broadcast(text: str) -> None:
    out = render.escape(text)
    assert "<" not in out and ">" not in out and not BROKEN_ENTITY.search(out)
    assert not re.search(r"@(channel|here|everyone)\b", out, re.IGNORECASE)


@given(long_text, st.integers(0, 3000))
def test_cut_text_stays_within_the_limit_and_never_splits_an_entity(text: str, limit: int) -> None:
    out = render.escaped_within(text, limit)
    assert len(out) <= limit
    assert not BROKEN_ENTITY.search(out) and "<" not in out


@given(hostile_text)
def test_modal_titles_fit_in_24_characters(text: str) -> None:
    assert len(render.modal_title("Appeal case " + text)["text"]) <= render.MAX_MODAL_TITLE


def verdicts_strategy() -> st.SearchStrategy[tuple[Verdict, ...]]:
    verdict = st.builds(
        Verdict,
        policy=st.sampled_from(["harassment", "spam-scams", "hate <!here>"]),
        policy_version=st.integers(1, 99),
        status=st.sampled_from(list(VerdictStatus)),
        violation=st.just(True),
        rule_ids=st.lists(st.sampled_from(["HB1.a", "HB2.a", "<!channel>", "X9.zzz"]), max_size=12).map(tuple),
        confidence=st.sampled_from(list(Confidence)),
        rationale=long_text,
    )
    return st.lists(verdict, min_size=1, max_size=70).map(tuple)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=long_text,
    verdicts=verdicts_strategy(),
    rule_text=long_text,
    status=st.sampled_from(list(CaseStatus)),
    joins=st.integers(0, 500),
    names=st.dictionaries(st.sampled_from(["U0AUTHOR", "U0MOD", "U0J1"]), hostile_text),
    sensitive=st.booleans(),
    in_thread=st.booleans(),
    can_delete=st.booleans(),
)
def test_every_flag_fits_block_kit_and_pings_nobody(
    text: str,
    verdicts: tuple[Verdict, ...],
    rule_text: str,
    status: CaseStatus,
    joins: int,
    names: dict[str, str],
    sensitive: bool,
    in_thread: bool,
    can_delete: bool,
) -> None:
    message = Message(
        platform="slack",
        server_id="T1",
        channel_id="C1:1700000000.000001" if in_thread else "C1",
        parent_channel_id="C1" if in_thread else None,
        message_id="C1:1700000000.000100",
        author=Author(id="U0AUTHOR"),
        text="EXCERPT-MARK " + text,
        sent_at=T0,
    )
    case = Case(id="0123456789AB", message=message, status=status, verdicts=verdicts, decided_by="U0MOD")
    briefs = tuple(
        PolicyBrief(name=p, version=1, sensitive=sensitive, rules=(RuleText(id="HB1.a", text=rule_text),))
        for p in {v.policy for v in verdicts}
    )
    context = EffectContext(
        case=case,
        settings=ServerSettings(platform="slack", server_id="T1", mod_channel_id="C0MODS"),
        policies=briefs,
        history=AuthorHistory(cases=3, confirmed=1),
        joins=FlagJoins(count=joins, author_ids=tuple(f"U0J{i}" for i in range(min(joins, 200)))),
    )
    directory = render.Directory(names=names, workspace_url="https://w.slack.com/")
    flag = render.flag_message(
        context, directory=directory, permalink="https://w.slack.com/archives/C1/p1", can_delete=can_delete
    )
    assert block_kit_problems(flag.blocks) == []
    assert_inert(flag.blocks, flag.text)
    assert len(flag.text) <= render.MAX_NOTIFICATION_TEXT
    has_buttons = any(b["type"] == "actions" for b in flag.blocks)
    assert has_buttons == (status in (CaseStatus.OPEN, CaseStatus.NEEDS_REVIEW))
    if sensitive:  # no excerpt and no rationale: nothing of the content leaves the link
        assert "EXCERPT-MARK" not in "\n".join(texts_in(flag.blocks))
    else:
        assert "EXCERPT-MARK" in "\n".join(texts_in(flag.blocks))
    dm = render.moderator_dm(context, directory=directory)
    assert block_kit_problems(dm.blocks) == []
    assert_inert(dm.blocks, dm.text)


@settings(max_examples=40, deadline=None)
@given(text=long_text, statement=long_text, note=long_text, problem=long_text, lines=st.lists(long_text, max_size=30))
def test_every_notice_fits_block_kit_and_pings_nobody(
    text: str, statement: str, note: str, problem: str, lines: list[str]
) -> None:
    verdict = Verdict(policy="harassment", policy_version=1, violation=True, rule_ids=("HB1.a",), rationale=problem)
    appeal = AppealView(
        case_id="0123456789AB",
        server_id="T1",
        channel_id="C1",
        message_id="C1:1.2",
        author_id="U1",
        text=text,
        case_status=CaseStatus.APPEALED,
        original=(verdict,) * 8,
        appeal_id=1,
        statement=statement,
        appeal_status="upheld" if note else "pending",  # type: ignore[arg-type]
        second_opinion=(verdict,) * 8,
        filed_at=T0,
        decided_by="U2",
        decided_at=T0,
        note=note,
    )
    digest = Digest(
        server_id="T1",
        day="2026-11-01",
        period_start=T0,
        period_end=T0,
        messages=1,
        flagged=1,
        confirmed=1,
        dismissed=0,
        appeals_filed=0,
        appeals_decided=0,
        overturned=0,
        overturn_rate=None,
        median_latency_ms=None,
        by_policy=tuple(PolicyCount(policy=line[:50] or "p", rule_id=None, flags=1) for line in lines),
        shadow_evaluation=tuple(lines),
    )
    for notice in (AppealFiled(appeal=appeal), digest, ModelOutage(since=T0, problem=problem)):
        message = render.notice_message(notice)
        assert block_kit_problems(message.blocks) == []
        assert_inert(message.blocks, message.text)


def test_a_sensitive_policy_shows_neither_excerpt_nor_rationale() -> None:
    message = Message(
        platform="slack",
        server_id="T1",
        channel_id="C1",
        message_id="C1:1.2",
        author=Author(id="U1"),
        text="she lives at 12 Elm Street",
        sent_at=T0,
    )
    verdict = Verdict(
        policy="personal-info", policy_version=2, violation=True, rule_ids=("PI1.a",), rationale="Posts 12 Elm Street"
    )
    case = Case(id="0123456789AB", message=message, status=CaseStatus.OPEN, verdicts=(verdict,))
    brief = PolicyBrief(
        name="personal-info", version=2, sensitive=True, rules=(RuleText(id="PI1.a", text="Addresses"),)
    )
    context = EffectContext(case=case, settings=ServerSettings(platform="slack", server_id="T1"), policies=(brief,))
    flag = render.flag_message(context, permalink="https://w.slack.com/archives/C1/p12")
    words = "\n".join(texts_in(flag.blocks))
    assert "Elm" not in words and "PI1.a" in words and "Addresses" in words
    assert "No excerpt" in words and "<https://w.slack.com/archives/C1/p12|Open the message>" in words


def test_action_ids_round_trip() -> None:
    for action in render.ACTIONS:
        assert render.parse_action_id(render.action_id(action, "0123456789AB")) == (action, "0123456789AB")
    assert render.parse_action_id("modbot:explode:0123456789AB") is None
    assert render.parse_action_id("something else") is None


def test_fit_blocks_keeps_the_buttons_and_says_what_was_cut() -> None:
    blocks = [render.section(str(i)) for i in range(80)] + [{"type": "actions", "elements": []}]
    fitted = render.fit_blocks(blocks)
    assert len(fitted) == render.MAX_BLOCKS and fitted[-1]["type"] == "actions"
    assert "32 more sections not shown" in str(fitted[-2])
