"""The repository's lists load cleanly, and a bad line is reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.triage.lists import InvitePattern, RuleListError, load_rule_lists
from tests.triage.helpers import LISTS_DIR


def test_the_repository_lists_load() -> None:
    lists = load_rule_lists(LISTS_DIR)
    assert "discorcl.gift" in lists.scam_domains  # the spam-scams policy's own example
    assert len(lists.scam_domains) >= 50
    assert InvitePattern("discord.gg", "/") in lists.invite_patterns
    assert InvitePattern("discord.com", "/invite/") in lists.invite_patterns
    assert "free nitro" in lists.word_lists["scam-phrases"]


def test_no_shortener_or_real_brand_domain_is_listed_as_a_scam() -> None:
    # A shortened link is for the model to weigh (SP2.b); a real domain must never be listed.
    lists = load_rule_lists(LISTS_DIR)
    for legitimate in ("bit.ly", "tinyurl.com", "discord.com", "discord.gg", "discord.gift", "steamcommunity.com"):
        assert legitimate not in lists.scam_domains


def _write_lists(root: Path, scam: str, invites: str = "discord.gg/\n") -> Path:
    (root / "scam-domains.txt").write_text(scam, encoding="utf-8")
    (root / "invite-links.txt").write_text(invites, encoding="utf-8")
    return root


def test_bad_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    _write_lists(tmp_path, "# comment\nok.example\nnot a domain\n", "discord.gg\n")
    (tmp_path / "words").mkdir()
    (tmp_path / "words" / "Bad Name.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(RuleListError) as caught:
        load_rule_lists(tmp_path)
    problems = caught.value.problems
    scam_file = tmp_path / "scam-domains.txt"
    assert problems[0] == f"{scam_file}:3: 'not a domain' is not a domain name: write it as example.com"
    assert problems[1].startswith(f"{tmp_path / 'invite-links.txt'}:1: 'discord.gg' must read host/path-prefix")
    assert "a word list's file name must be lowercase" in problems[2]


def test_a_missing_list_is_an_error_not_an_empty_list(tmp_path: Path) -> None:
    with pytest.raises(RuleListError, match="cannot read"):
        load_rule_lists(tmp_path)


def test_word_list_entries_are_deduplicated_and_spaced_once(tmp_path: Path) -> None:
    _write_lists(tmp_path, "ok.example\n")
    (tmp_path / "words").mkdir()
    (tmp_path / "words" / "mine.txt").write_text("free   nitro\nfree nitro\n# not this\n", encoding="utf-8")
    assert load_rule_lists(tmp_path).word_lists["mine"] == ("free nitro",)
