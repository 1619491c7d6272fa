"""The lists kept in the repository for the rules: scam domains, invite links, word lists.

They live beside the policy library (policies/lists/), are plain text with `#` comments,
and are checked when loaded, with problems that name file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from bot.triage.config import RULE_ID_RE, normalise_domain

SCAM_DOMAINS_FILE = "scam-domains.txt"
INVITE_LINKS_FILE = "invite-links.txt"
WORDS_DIR = "words"


class RuleListError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class InvitePattern:
    """An invite link's host and the path before its code, e.g. discord.com + /invite/."""

    host: str
    path_prefix: str


@dataclass(frozen=True)
class RuleLists:
    scam_domains: frozenset[str] = frozenset()
    invite_patterns: tuple[InvitePattern, ...] = ()
    word_lists: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


def _entries(path: Path, problems: list[str]) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:0: cannot read: {exc}")
        return []
    return [
        (lineno, line.strip())
        for lineno, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def parse_invite_pattern(entry: str) -> InvitePattern:
    host, slash, prefix = entry.partition("/")
    if not slash:
        raise ValueError(f"{entry!r} must read host/path-prefix, e.g. discord.gg/")
    return InvitePattern(normalise_domain(host), "/" + prefix)


def load_rule_lists(directory: Path) -> RuleLists:
    """Read policies/lists/; raise RuleListError naming every bad line of every file."""
    problems: list[str] = []
    domains: set[str] = set()
    for lineno, entry in _entries(directory / SCAM_DOMAINS_FILE, problems):
        try:
            domains.add(normalise_domain(entry))
        except ValueError as exc:
            problems.append(f"{directory / SCAM_DOMAINS_FILE}:{lineno}: {exc}")
    invites: list[InvitePattern] = []
    for lineno, entry in _entries(directory / INVITE_LINKS_FILE, problems):
        try:
            invites.append(parse_invite_pattern(entry))
        except ValueError as exc:
            problems.append(f"{directory / INVITE_LINKS_FILE}:{lineno}: {exc}")
    words: dict[str, tuple[str, ...]] = {}
    words_dir = directory / WORDS_DIR
    for path in sorted(words_dir.glob("*.txt")) if words_dir.is_dir() else []:
        if not RULE_ID_RE.match(path.stem):
            problems.append(f"{path}:0: a word list's file name must be lowercase letters, digits and hyphens")
            continue
        entries = [" ".join(e.split()) for _, e in _entries(path, problems)]
        words[path.stem] = tuple(dict.fromkeys(entries))
    if problems:
        raise RuleListError(problems)
    return RuleLists(frozenset(domains), tuple(invites), MappingProxyType(words))
