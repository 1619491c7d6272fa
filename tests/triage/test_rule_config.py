"""The rule set as configuration: defaults, validation messages, files, versions."""

from __future__ import annotations

import pytest

from bot.triage.config import (
    DuplicateFloodRule,
    InviteLinkRule,
    MentionFloodRule,
    RuleAction,
    RuleSet,
    RuleSetError,
    ScamLinkRule,
    TriageMode,
    WordListRule,
    load_rule_set,
    normalise_domain,
    validate_rule_set,
)
from tests.triage.helpers import DATA


def test_a_server_starts_with_flood_and_scam_rules_deciding_and_invites_going_to_the_model() -> None:
    rules = {r.kind: r for r in RuleSet().rules}
    assert set(rules) == {"scam-links", "mention-flood", "duplicate-flood", "invite-links"}
    assert rules["scam-links"].action is RuleAction.DECIDE
    assert rules["mention-flood"].action is RuleAction.DECIDE
    assert rules["duplicate-flood"].action is RuleAction.DECIDE
    assert rules["invite-links"].action is RuleAction.JUDGE
    assert TriageMode("off") is TriageMode.OFF


def test_word_lists_only_refer_to_the_model_unless_an_admin_says_decide() -> None:
    assert WordListRule(words=("airdrop",)).action is RuleAction.JUDGE


def test_every_problem_of_a_bad_file_is_reported_with_where_and_what_to_do() -> None:
    text = (DATA / "bad-rules.toml").read_text(encoding="utf-8")
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(text, "bad-rules.toml")
    expected = (DATA / "bad-rules.expected").read_text(encoding="utf-8").splitlines()
    assert caught.value.problems == expected


def test_a_good_file_normalises_domains_and_invites() -> None:
    rule_set = load_rule_set((DATA / "good-rules.toml").read_text(encoding="utf-8"), "good-rules.toml")
    assert rule_set.version == 3
    scam = rule_set.rule("scam-links")
    assert isinstance(scam, ScamLinkRule)
    assert scam.domains == ("evil-example.com",)
    invites = rule_set.rule("invite-links")
    assert isinstance(invites, InviteLinkRule)
    assert invites.allowed_invites == ("ourclan", "partner-2")
    words = rule_set.rule("scam-words")
    assert isinstance(words, WordListRule)
    assert words.words == ("wallet drainer",)
    assert [r.id for r in rule_set.rules if isinstance(r, MentionFloodRule)] == ["mention-flood", "mass-ping"]


def test_json_syntax_errors_name_line_and_column() -> None:
    with pytest.raises(RuleSetError, match=r"^rules.json:2:12: not valid JSON: Expecting value"):
        load_rule_set('{"version": 2,\n "rules": [}', "rules.json")


def test_toml_syntax_errors_are_reported_as_such() -> None:
    with pytest.raises(RuleSetError, match=r"^rules.toml: not valid TOML"):
        load_rule_set("version = ", "rules.toml")


def test_two_rules_may_not_share_an_id() -> None:
    with pytest.raises(RuleSetError, match="two rules share the id 'mention-flood'"):
        validate_rule_set({"rules": [{"kind": "mention-flood"}, {"kind": "mention-flood", "max_mentions": 3}]})


def test_one_duplicate_flood_rule_per_set() -> None:
    with pytest.raises(RuleSetError, match="only one duplicate-flood rule"):
        validate_rule_set({"rules": [{"kind": "duplicate-flood"}, {"kind": "duplicate-flood", "id": "other"}]})


def test_a_word_list_rule_needs_words() -> None:
    with pytest.raises(RuleSetError, match=r"rules\[0\] \(word-list\): a word-list rule needs `words` or `lists`"):
        validate_rule_set({"rules": [{"kind": "word-list"}]})


def test_a_rule_without_a_kind_says_which_kinds_exist() -> None:
    with pytest.raises(RuleSetError, match=r"rules\[0\]: a rule needs a `kind`; the kinds are duplicate-flood"):
        validate_rule_set({"rules": [{"max_mentions": 3}]})


def test_a_revision_is_the_next_version_and_is_validated() -> None:
    first = RuleSet()
    second = first.revised(rules=[{"kind": "mention-flood", "max_mentions": 4}])
    assert second.version == 2
    assert [r.id for r in second.rules] == ["mention-flood"]
    assert first.version == 1  # frozen: the old version is unchanged
    with pytest.raises(RuleSetError):
        validate_rule_set(second.model_dump(mode="json") | {"rules": [{"kind": "mention-flood", "max_mentions": -1}]})


def test_disabled_rules_and_sets_check_nothing() -> None:
    rule_set = RuleSet(rules=(MentionFloodRule(enabled=False), DuplicateFloodRule()))
    assert [r.id for r in rule_set.active_rules] == ["duplicate-flood"]
    assert RuleSet(enabled=False).active_rules == ()


def test_default_rule_texts_say_the_thresholds() -> None:
    assert MentionFloodRule(max_mentions=7).rule_text == "Mentions more than 7 people or roles in one message."
    assert "3 or more channels within 30 seconds" in DuplicateFloodRule().rule_text
    assert MentionFloodRule(description="No mass pings.").rule_text == "No mass pings."


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("Example.COM", "example.com"),
        ("https://www.example.com/login?x=1", "example.com"),
        ("user@mail.example.com:8080", "mail.example.com"),
        ("example.com.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_domains_are_stored_in_one_form(written: str, stored: str) -> None:
    assert normalise_domain(written) == stored


@pytest.mark.parametrize("bad", ["localhost", "not a domain", "exa mple.com", "-bad-.com", ""])
def test_what_is_not_a_domain_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a domain name"):
        normalise_domain(bad)
