"""Rules before the model: each kind of rule, and what a hit becomes."""

from __future__ import annotations

import pytest

from bot.domain import Confidence, ServerSettings, VerdictStatus
from bot.effects import decide_effects
from bot.triage.config import (
    DuplicateFloodRule,
    InviteLinkRule,
    MentionFloodRule,
    RuleAction,
    RuleSet,
    RuleSetError,
    ScamLinkRule,
    WordListRule,
)
from bot.triage.flood import DuplicateFloodDetector
from bot.triage.lists import RuleLists, load_rule_lists
from bot.triage.rules import RULES_POLICY, CompiledRules, RuleOutcome, links_in, mentions_in
from tests.triage.helpers import LISTS_DIR, message

LISTS = load_rule_lists(LISTS_DIR)


def check(rule_set: RuleSet, text: str, detector: DuplicateFloodDetector | None = None) -> RuleOutcome:
    return CompiledRules(rule_set, LISTS).check(message(text), detector or DuplicateFloodDetector())


def only(*rules: object) -> RuleSet:
    return RuleSet.model_validate({"version": 4, "rules": [r.model_dump() for r in rules]})  # type: ignore[attr-defined]


# ---------------------------------------------------------------- scam links


@pytest.mark.parametrize(
    "text",
    [
        "free nitro https://discorcl.gift/claim",
        "claim at discorcl.gift now",
        "https://login.discorcl.gift/x",  # a subdomain of a listed domain
        "DISCORCL.GIFT",
        "disc\u200borcl.gift",  # a zero-width space inside the name
        "discorcl\u3002gift",  # an ideographic full stop
        "<https://discorcl.gift>",  # Discord's suppressed embed
        "<https://discorcl.gift|free nitro>",  # Slack's link markup
        "[free](https://discorcl.gift/claim)",
    ],
)
def test_a_link_to_a_listed_scam_domain_decides_the_case(text: str) -> None:
    outcome = check(only(ScamLinkRule()), text)
    assert outcome.decided
    assert outcome.hits[0].evidence == "links to a known scam domain: " + (
        "login.discorcl.gift" if "login." in text else "discorcl.gift"
    )


@pytest.mark.parametrize(
    "text",
    [
        "PSA discorcl[.]gift is a token grabber",  # broken on purpose: a warning (SP0.a)
        "the real one is discord.com/nitro",
        "notdiscorcl.gift",  # a different domain that merely ends the same way
        "see file.txt and v1.2 e.g. here",
    ],
)
def test_other_text_is_not_a_scam_link(text: str) -> None:
    assert check(only(ScamLinkRule()), text).hits == ()


def test_a_server_adds_its_own_domains_and_overrides_a_listed_one() -> None:
    rule = ScamLinkRule(domains=("evil.example",), allowed_domains=("discorcl.gift",))
    assert check(only(rule), "go to https://evil.example/login").decided
    assert check(only(rule), "discorcl.gift").hits == ()
    library_off = ScamLinkRule(use_library=False)
    assert check(only(library_off), "discorcl.gift").hits == ()


def test_links_are_found_with_and_without_a_scheme() -> None:
    assert [(link.host, link.path) for link in links_in("a https://Example.com/Path?x=1 b www.test.org c")] == [
        ("example.com", "/path?x=1"),
        ("test.org", ""),
    ]


# ---------------------------------------------------------------- invites


def test_a_foreign_invite_goes_to_the_model_and_the_servers_own_does_not() -> None:
    rule_set = only(InviteLinkRule(allowed_invites=("ourclan",)))
    foreign = check(rule_set, "join us: https://discord.gg/Xyz123")
    assert not foreign.decided and foreign.judge_every_policy
    assert foreign.hits[0].evidence == "invite link to another community: discord.gg/xyz123"
    assert check(rule_set, "our server: discord.gg/OurClan").hits == ()
    assert check(rule_set, "discord.com/invite/abc and join.slack.com/t/other/shared_invite/zt").hits[0].evidence == (
        "invite link to another community: discord.com/invite/abc, join.slack.com/t/other/shared_invite/zt"
    )
    assert check(rule_set, "discord.com/channels/1/2 is where we talk").hits == ()


# ---------------------------------------------------------------- mentions


def test_mentions_are_counted_once_per_target_on_both_platforms() -> None:
    discord = "<@1> <@!1> <@2> <@&9> @everyone @here @everyone email@here.com"
    assert mentions_in(discord) == {"user:1", "user:2", "group:9", "mass:everyone", "mass:here"}
    slack = "<@U1|ann> <@U1> <@W2> <!here> <!channel|channel> <!everyone> <!subteam^S1|devs>"
    assert mentions_in(slack) == {"user:U1", "user:W2", "mass:here", "mass:everyone", "group:S1"}


def test_more_than_the_limit_of_mentions_is_flagged_at_once() -> None:
    rule_set = only(MentionFloodRule(max_mentions=3))
    assert check(rule_set, "<@1> <@2> <@3>").hits == ()
    flood = check(rule_set, "<@1> <@2> <@3> <@4>")
    assert flood.decided
    verdict = flood.verdict()
    assert verdict is not None
    assert verdict.policy == RULES_POLICY
    assert verdict.policy_version == 4
    assert verdict.violation and verdict.status is VerdictStatus.DECIDED
    assert verdict.policy_category == "mention-flood" and verdict.rule_ids == ("mention-flood",)
    assert verdict.confidence is Confidence.HIGH
    assert verdict.rationale == (
        "Decided by rule mention-flood (rule set v4), no model call: mention-flood: 4 distinct mentions, more than 3"
    )
    assert verdict.latency_ms == 0 and verdict.prompt_tokens == 0


# ---------------------------------------------------------------- word lists


def test_word_lists_match_whole_words_and_phrases_however_spaced_or_cased() -> None:
    rule_set = only(WordListRule(words=("ass", "wallet drainer")))
    assert check(rule_set, "a WALLET\n  drainer here").hits[0].evidence == "listed words: 'wallet drainer'"
    assert check(rule_set, "what a pain in the ass").hits
    assert check(rule_set, "a classic assassin").hits == ()  # whole words only (Scunthorpe)
    assert check(rule_set, "wallet-drainer").hits == ()


def test_word_lists_from_the_repository_are_used_by_name() -> None:
    outcome = check(only(WordListRule(lists=("scam-phrases",))), "Free Nitro giveaway!!")
    assert outcome.judge_every_policy
    assert outcome.hits[0].evidence == "listed words: 'free nitro'"


def test_an_unknown_list_name_is_refused_when_the_rules_are_compiled() -> None:
    with pytest.raises(RuleSetError, match="no word list named 'nope' in lists/words/ \\(have: scam-phrases\\)"):
        CompiledRules(only(WordListRule(lists=("nope",))), LISTS)


def test_an_empty_list_matches_nothing() -> None:
    empty = RuleLists(word_lists={"empty": ()})
    outcome = CompiledRules(only(WordListRule(lists=("empty",))), empty).check(message("hi"), DuplicateFloodDetector())
    assert outcome.hits == ()


# ---------------------------------------------------------------- outcomes


def test_a_decision_wins_over_a_referral_and_cites_only_the_deciding_rules() -> None:
    rule_set = only(ScamLinkRule(), WordListRule(lists=("scam-phrases",)), InviteLinkRule())
    outcome = check(rule_set, "free nitro at discorcl.gift or discord.gg/abc")
    assert [h.rule_id for h in outcome.hits] == ["scam-links", "word-list", "invite-links"]
    assert outcome.decided and not outcome.judge_every_policy
    verdict = outcome.verdict()
    assert verdict is not None and verdict.rule_ids == ("scam-links",)


def test_a_referral_is_recorded_as_a_note_not_a_violation() -> None:
    outcome = check(only(InviteLinkRule()), "discord.gg/abc")
    verdict = outcome.verdict()
    assert verdict is not None
    assert not verdict.violation
    assert verdict.rationale.startswith("Sent to every policy by rule (rule set v4), skipping the screen:")


def test_no_hit_no_verdict() -> None:
    outcome = check(RuleSet(), "hello there")
    assert outcome.hits == () and not outcome.decided and not outcome.judge_every_policy
    assert outcome.verdict() is None


def test_a_rule_verdict_becomes_effects_through_the_servers_effect_rules_like_any_verdict() -> None:
    verdict = check(only(MentionFloodRule(max_mentions=1, confidence="medium")), "<@1> <@2>").verdict()
    assert verdict is not None
    effects = decide_effects([verdict], ServerSettings(platform="discord", server_id="s1"))
    assert [(e.kind.value, e.policy, e.rule_ids) for e in effects] == [("flag", RULES_POLICY, ("mention-flood",))]


def test_the_brief_gives_sinks_each_rules_text() -> None:
    rule_set = only(MentionFloodRule(max_mentions=5), WordListRule(id="slurs", words=("x",), description="Slurs."))
    brief = CompiledRules(rule_set, LISTS).brief()
    assert brief.name == RULES_POLICY and brief.version == 4
    assert brief.rule("mention-flood").text == "Mentions more than 5 people or roles in one message."
    assert brief.rule("slurs").text == "Slurs."


def test_a_flood_hit_cites_the_earlier_copies() -> None:
    rule_set = only(DuplicateFloodRule(min_channels=2, action=RuleAction.DECIDE))
    compiled = CompiledRules(rule_set, LISTS)
    detector = DuplicateFloodDetector()
    text = "join my giveaway server for free skins today"
    assert compiled.check(message(text, channel="a", message_id="1"), detector).hits == ()
    outcome = compiled.check(message(text, channel="b", message_id="2", at=2), detector)
    assert outcome.decided
    assert outcome.hits[0].related == ("a/1",)
    assert outcome.hits[0].evidence == "near-identical text in 2 channels within 30 s"
