"""A server's triage configuration: the `triage` mode and its versioned rule set.

This module imports nothing from `bot` so that `bot.domain.ServerSettings` can carry a
`TriageMode` and a `RuleSet` without an import cycle. Rules are data: checking them is
`bot.triage.rules`, and a hit becomes a verdict that cites the rule id and this set's
version, so a case decided by a rule can be appealed and reported like any other.
"""

from __future__ import annotations

import json
import re
import tomllib
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

RULE_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HOST_LABEL = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
HOST_RE = re.compile(rf"^(?:{_HOST_LABEL}\.)+(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}})$")
INVITE_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
MAX_RULES = 50
MAX_WORDS = 5000


class TriageMode(StrEnum):
    """How a server's bulk traffic reaches per-policy judgement."""

    OFF = "off"  # one call per active policy
    SCREEN = "screen"  # a cheap screen first; only the policies it names are judged


class RuleAction(StrEnum):
    """What a rule's hit does."""

    # The hit is the verdict: the case is decided by the rule, with no model call.
    DECIDE = "decide"
    # The message goes straight to per-policy judgement of every policy, skipping the screen.
    JUDGE = "judge"


class _Config(BaseModel):
    # Unknown keys are refused: a misspelt threshold must not be silently ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")


def normalise_domain(value: str) -> str:
    """A domain as the rules compare it: lowercase ASCII (IDNA), no scheme, path, port or `www.`."""
    text = value.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    text = text.removeprefix("www.")
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{value!r} is not a domain name: {exc}") from exc
    if not HOST_RE.match(text):
        raise ValueError(f"{value!r} is not a domain name: write it as example.com")
    return text


def _normalise_invite(value: str) -> str:
    # Admins paste whole links ("https://discord.gg/ourserver"); the code is the last segment.
    code = value.strip().rstrip("/").rsplit("/", 1)[-1]
    if not INVITE_CODE_RE.match(code):
        raise ValueError(f"{value!r} is not an invite code or link: write it as discord.gg/yourcode or yourcode")
    return code


def _check_word(value: str) -> str:
    word = " ".join(value.split())
    if not word:
        raise ValueError("a word list entry is empty")
    if len(word) > 100:
        raise ValueError(f"word list entry {word[:20]!r}... is longer than 100 characters")
    return word


def _check_list_name(value: str) -> str:
    if not RULE_ID_RE.match(value):
        raise ValueError(f"list name {value!r} must be lowercase letters, digits and hyphens (a file in lists/words/)")
    return value


Domain = Annotated[str, AfterValidator(normalise_domain)]
InviteCode = Annotated[str, AfterValidator(_normalise_invite)]
Word = Annotated[str, AfterValidator(_check_word)]
ListName = Annotated[str, AfterValidator(_check_list_name)]
ConfidenceName = Literal["low", "medium", "high"]


class _Rule(_Config):
    id: str
    enabled: bool = True
    action: RuleAction
    # The confidence a decided verdict carries: the server's effect rules key on it.
    confidence: ConfidenceName = "high"
    # What moderators and the author read; empty means the kind's own wording.
    description: str = Field(default="", max_length=300)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not RULE_ID_RE.match(value) or len(value) > 40:
            raise ValueError(f"rule id {value!r} must be up to 40 lowercase letters, digits and hyphens")
        return value

    @property
    def rule_text(self) -> str:
        return self.description or self._default_text()

    def _default_text(self) -> str:
        raise NotImplementedError


class ScamLinkRule(_Rule):
    """Links to known scam domains: the repository's list, plus the server's own."""

    kind: Literal["scam-links"] = "scam-links"
    id: str = "scam-links"
    action: RuleAction = RuleAction.DECIDE
    use_library: bool = True  # lists/scam-domains.txt
    domains: tuple[Domain, ...] = ()
    # Never a hit, even when a list names them (a false positive an admin has checked).
    allowed_domains: tuple[Domain, ...] = ()

    def _default_text(self) -> str:
        return "Links to a known scam or phishing domain."


class InviteLinkRule(_Rule):
    """Invites to other communities (discord.gg/…, join.slack.com/…), except the server's own."""

    kind: Literal["invite-links"] = "invite-links"
    id: str = "invite-links"
    # A foreign invite is sometimes spam and sometimes a friend's server: the model decides.
    action: RuleAction = RuleAction.JUDGE
    confidence: ConfidenceName = "medium"
    use_library: bool = True  # lists/invite-links.txt
    allowed_invites: tuple[InviteCode, ...] = ()

    def _default_text(self) -> str:
        return "Invites to another server or community."


class MentionFloodRule(_Rule):
    """More than `max_mentions` distinct mentions (people, roles, @everyone/@here) in one message."""

    kind: Literal["mention-flood"] = "mention-flood"
    id: str = "mention-flood"
    action: RuleAction = RuleAction.DECIDE
    max_mentions: int = Field(default=10, ge=1, le=1000)

    def _default_text(self) -> str:
        return f"Mentions more than {self.max_mentions} people or roles in one message."


class DuplicateFloodRule(_Rule):
    """The same author posting near-identical text in `min_channels` channels within `window_seconds`."""

    kind: Literal["duplicate-flood"] = "duplicate-flood"
    id: str = "duplicate-flood"
    action: RuleAction = RuleAction.DECIDE
    min_channels: int = Field(default=3, ge=2, le=50)
    window_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Share of the texts' character trigrams they have in common (Jaccard) to count as one text.
    similarity: float = Field(default=0.8, ge=0.5, le=1.0)
    # Shorter texts ("gm", "lol") are not counted: many people post them everywhere.
    min_chars: int = Field(default=12, ge=1, le=2000)

    def _default_text(self) -> str:
        return f"Posts the same text in {self.min_channels} or more channels within {self.window_seconds:g} seconds."


class WordListRule(_Rule):
    """Whole words or phrases, inline or from lists/words/<name>.txt."""

    kind: Literal["word-list"] = "word-list"
    id: str = "word-list"
    # Word lists match innocent text too ("Scunthorpe"): by default they only send the
    # message to the model, which reads the context.
    action: RuleAction = RuleAction.JUDGE
    confidence: ConfidenceName = "medium"
    words: tuple[Word, ...] = Field(default=(), max_length=MAX_WORDS)
    lists: tuple[ListName, ...] = ()

    @model_validator(mode="after")
    def _some_words(self) -> WordListRule:
        if not self.words and not self.lists:
            raise ValueError("a word-list rule needs `words` or `lists` (names of files in lists/words/)")
        return self

    def _default_text(self) -> str:
        return "Uses a word or phrase this server lists."


Rule = Annotated[
    ScamLinkRule | InviteLinkRule | MentionFloodRule | DuplicateFloodRule | WordListRule,
    Field(discriminator="kind"),
]
RuleKind = Literal["scam-links", "invite-links", "mention-flood", "duplicate-flood", "word-list"]
_KINDS: frozenset[str] = frozenset(get_args(RuleKind))


def default_rules() -> tuple[Rule, ...]:
    """What a server gets before its admins change anything.

    Scam links, mention floods and cross-channel floods are flagged at once (the default
    effect rules only flag: nothing is deleted until an admin opts in); foreign invites go
    to the model. No word list: which words matter is each community's call.
    """
    return (ScamLinkRule(), MentionFloodRule(), DuplicateFloodRule(), InviteLinkRule())


class RuleSet(_Config):
    """A server's rules before the model, one version of them. A change is a new version."""

    version: int = Field(default=1, ge=1)
    enabled: bool = True
    rules: tuple[Rule, ...] = Field(default_factory=default_rules, max_length=MAX_RULES)

    @field_validator("rules")
    @classmethod
    def _distinct(cls, value: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: set[str] = set()
        for rule in value:
            if rule.id in seen:
                raise ValueError(f"two rules share the id {rule.id!r}: give each rule its own `id`")
            seen.add(rule.id)
        # The flood detector keeps one history per author; one rule says what a flood is.
        if sum(1 for r in value if r.kind == "duplicate-flood") > 1:
            raise ValueError("only one duplicate-flood rule per rule set: its thresholds say what a flood is")
        return value

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled) if self.enabled else ()

    def revised(self, **changes: Any) -> RuleSet:
        """The next version with these fields changed, validated like any rule set."""
        data = self.model_dump(mode="json")
        data.update(changes)
        data["version"] = self.version + 1
        return RuleSet.model_validate(data)


class RuleSetError(ValueError):
    """A rule set file or value that cannot be used; each problem names where and what to do."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _where(loc: tuple[int | str, ...]) -> str:
    # pydantic's location for a tagged union holds the tag: ("rules", 1, "mention-flood", "max_mentions").
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts and parts[-1].startswith("[") and item in _KINDS:
            parts.append(f" ({item})")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "rule set"


def validate_rule_set(data: object, source: str = "<rules>") -> RuleSet:
    """A RuleSet from parsed data; RuleSetError lists every problem as `source: where: what`."""
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key: check its spelling against the README's rule reference"
            elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                given = error["input"].get("kind") if isinstance(error["input"], dict) else None
                what = f"unknown rule kind {given!r}" if given is not None else "a rule needs a `kind`"
                message = f"{what}; the kinds are {', '.join(sorted(_KINDS))}"
            problems.append(f"{source}: {_where(tuple(error['loc']))}: {message}")
        raise RuleSetError(problems) from exc


def load_rule_set(text: str, source: str) -> RuleSet:
    """Parse a rule set written as TOML (`*.toml`) or JSON (anything else)."""
    try:
        data: object = tomllib.loads(text) if source.endswith(".toml") else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSetError([f"{source}: not valid TOML: {exc}"]) from exc
    except json.JSONDecodeError as exc:
        raise RuleSetError([f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"]) from exc
    return validate_rule_set(data, source)
