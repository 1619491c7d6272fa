"""Rules before the model: checking one message against a server's rule set, with no model call.

A rule never acts. Its hit is data (`RuleHit`); `RuleOutcome.verdict()` turns the hits into a
verdict citing the rule ids and the rule set's version, and the server's effect rules turn
that verdict into effects exactly as they do a model's. A DECIDE hit decides the case; a
JUDGE hit sends the message to per-policy judgement of every policy, skipping the screen.
When both kinds hit, the decision wins: the case goes to a moderator at once either way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.domain import Confidence, Effort, Message, PolicyBrief, RuleText, Verdict
from bot.triage.config import (
    DuplicateFloodRule,
    InviteLinkRule,
    MentionFloodRule,
    Rule,
    RuleAction,
    RuleKind,
    RuleSet,
    RuleSetError,
    ScamLinkRule,
    WordListRule,
    normalise_domain,
)
from bot.triage.flood import DuplicateFloodDetector
from bot.triage.lists import InvitePattern, RuleLists

# The name a rule's verdict carries in place of a policy's. Policy names cannot hold a
# colon, so it never collides with a server's policy; the version is the rule set's.
RULES_POLICY = "triage:rules"
MAX_EVIDENCE_ITEMS = 5

# Bidi controls, zero-width characters, soft hyphen, word joiner and BOM, which hide
# nothing from a reader and everything from a pattern ("disc\u200bord.gift").
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_HOST = re.compile(r"(?<![\w.-])((?:[\w-]+\.)+[\w-]{2,63})(/[^\s<>|()\[\]\"'`]*)?")
_SPACES = re.compile(r"\s+")
# Discord: <@id>, <@!id>, <@&role>, @everyone, @here. Slack: <@U1|name>, <!here>,
# <!channel>, <!everyone>, <!subteam^S1|name>. Counted in the raw platform markup.
_MENTION = re.compile(
    r"<@!?(\d+)>|<@&(\d+)>|(?<![\w@])@(everyone|here)\b"
    r"|<@([UW][A-Z0-9]+)(?:\|[^>]*)?>|<!(here|channel|everyone)(?:\|[^>]*)?>|<!subteam\^([A-Z0-9]+)(?:\|[^>]*)?>"
)


def fold_for_rules(text: str) -> str:
    """The text the patterns read: compatibility forms folded, invisible characters gone, caseless."""
    text = unicodedata.normalize("NFKC", text).replace("\u3002", ".").replace("\uff61", ".")
    return _INVISIBLE.sub("", text).casefold()


@dataclass(frozen=True)
class Link:
    host: str
    path: str


def links_in(text: str) -> list[Link]:
    """Every host (with its path) written in the text, with or without a scheme."""
    found: list[Link] = []
    for match in _HOST.finditer(fold_for_rules(text)):
        try:
            host = normalise_domain(match.group(1))
        except ValueError:
            continue  # "file.txt", "v1.2": not a host
        found.append(Link(host, match.group(2) or ""))
    return found


def _domain_and_parents(host: str) -> list[str]:
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def mentions_in(text: str) -> set[str]:
    """The distinct targets mentioned: a person, a role, a group, or everyone/here."""
    targets: set[str] = set()
    for match in _MENTION.finditer(text):
        user, role, mass, slack_user, slack_mass, group = match.groups()
        if user or slack_user:
            targets.add(f"user:{user or slack_user}")
        elif role or group:
            targets.add(f"group:{role or group}")
        else:
            # @everyone on Discord and <!everyone> on Slack reach the same people.
            targets.add(f"mass:{'here' if (mass or slack_mass) == 'here' else 'everyone'}")
    return targets


@dataclass(frozen=True)
class RuleHit:
    rule_id: str
    kind: RuleKind
    action: RuleAction
    confidence: Confidence
    rule_text: str
    evidence: str  # what matched, in words, for the case log and the rationale
    # channel_id/message_id of a flood's earlier copies, for the case to cite.
    related: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleOutcome:
    """What a server's rules say about one message."""

    rule_set_version: int
    hits: tuple[RuleHit, ...] = ()

    @property
    def decided(self) -> bool:
        """A rule decided the case: no model call."""
        return any(h.action is RuleAction.DECIDE for h in self.hits)

    @property
    def judge_every_policy(self) -> bool:
        """A rule sends the message to per-policy judgement of every policy, skipping the screen."""
        return not self.decided and any(h.action is RuleAction.JUDGE for h in self.hits)

    def verdict(self) -> Verdict | None:
        """The record the case carries: a violation for a decision, a note for a referral, else None."""
        if not self.hits:
            return None
        acting = [h for h in self.hits if h.action is RuleAction.DECIDE] or list(self.hits)
        acting.sort(key=lambda h: -h.confidence.rank)
        cited = "; ".join(f"{h.rule_id}: {h.evidence}" for h in acting)
        version = f"rule set v{self.rule_set_version}"
        if self.decided:
            rationale = f"Decided by rule {acting[0].rule_id} ({version}), no model call: {cited}"
        else:
            rationale = f"Sent to every policy by rule ({version}), skipping the screen: {cited}"
        return Verdict(
            policy=RULES_POLICY,
            policy_version=self.rule_set_version,
            violation=self.decided,
            policy_category=acting[0].rule_id if self.decided else None,
            rule_ids=tuple(h.rule_id for h in acting),
            confidence=acting[0].confidence if self.decided else Confidence.HIGH,
            rationale=rationale,
            effort=Effort.LOW,
        )


class CompiledRules:
    """One rule set version with the lists it uses, ready to check messages.

    Build it once per rule set version (the patterns are compiled here) and keep it while
    the version is live; `check` is cheap and has no effect beyond the flood detector.
    """

    def __init__(self, rule_set: RuleSet, lists: RuleLists) -> None:
        self.rule_set = rule_set
        problems = [
            f"rules: {rule.id}: lists: no word list named {name!r} in lists/words/ "
            f"(have: {', '.join(sorted(lists.word_lists)) or 'none'})"
            for rule in rule_set.rules
            if isinstance(rule, WordListRule)
            for name in rule.lists
            if name not in lists.word_lists
        ]
        if problems:
            raise RuleSetError(problems)
        self._lists = lists
        self._word_patterns: dict[str, re.Pattern[str]] = {
            rule.id: _word_pattern(rule, lists) for rule in rule_set.rules if isinstance(rule, WordListRule)
        }

    def brief(self) -> PolicyBrief:
        """What a sink needs to word a notice for a rule's case: each rule's id and text."""
        return PolicyBrief(
            name=RULES_POLICY,
            version=self.rule_set.version,
            rules=tuple(RuleText(id=r.id, text=r.rule_text) for r in self.rule_set.rules),
        )

    def check(self, message: Message, floods: DuplicateFloodDetector) -> RuleOutcome:
        hits: list[RuleHit] = []
        links: list[Link] | None = None
        for rule in self.rule_set.active_rules:
            evidence: str | None = None
            related: tuple[str, ...] = ()
            if isinstance(rule, MentionFloodRule):
                evidence = _mention_flood(rule, message.text)
            elif isinstance(rule, DuplicateFloodRule):
                flood = floods.observe(message, rule)
                if flood is not None:
                    evidence = f"near-identical text in {flood.channels} channels within {rule.window_seconds:g} s"
                    related = flood.message_refs
            elif isinstance(rule, WordListRule):
                evidence = _listed_words(self._word_patterns[rule.id], message.text)
            elif isinstance(rule, ScamLinkRule):
                links = links_in(message.text) if links is None else links
                evidence = self._scam_links(rule, links)
            else:
                links = links_in(message.text) if links is None else links
                evidence = self._invites(rule, links)
            if evidence is not None:
                hits.append(_hit(rule, evidence, related))
        hits.sort(key=lambda h: (h.action is not RuleAction.DECIDE, -h.confidence.rank))
        return RuleOutcome(self.rule_set.version, tuple(hits))

    def _scam_links(self, rule: ScamLinkRule, links: list[Link]) -> str | None:
        listed = set(rule.domains) | (self._lists.scam_domains if rule.use_library else set())
        allowed = set(rule.allowed_domains)
        bad: list[str] = []
        for link in links:
            candidates = _domain_and_parents(link.host)
            if allowed.intersection(candidates):
                continue
            match = next((d for d in candidates if d in listed), None)
            if match is not None and link.host not in bad:
                bad.append(link.host)
        if not bad:
            return None
        return "links to a known scam domain: " + ", ".join(bad[:MAX_EVIDENCE_ITEMS])

    def _invites(self, rule: InviteLinkRule, links: list[Link]) -> str | None:
        patterns = self._lists.invite_patterns if rule.use_library else ()
        allowed = {code.casefold() for code in rule.allowed_invites}
        found: list[str] = []
        for link in links:
            code = _invite_code(link, patterns)
            if code is not None and code not in allowed:
                found.append(f"{link.host}{link.path}")
        if not found:
            return None
        return "invite link to another community: " + ", ".join(found[:MAX_EVIDENCE_ITEMS])


def _invite_code(link: Link, patterns: tuple[InvitePattern, ...]) -> str | None:
    for pattern in patterns:
        if link.host != pattern.host and not link.host.endswith("." + pattern.host):
            continue
        if link.path.startswith(pattern.path_prefix):
            code = link.path[len(pattern.path_prefix) :].split("/", 1)[0].split("?", 1)[0]
            if code:
                return code
    return None


def _mention_flood(rule: MentionFloodRule, text: str) -> str | None:
    count = len(mentions_in(text))
    if count <= rule.max_mentions:
        return None
    return f"{count} distinct mentions, more than {rule.max_mentions}"


def _word_pattern(rule: WordListRule, lists: RuleLists) -> re.Pattern[str]:
    words = {fold_for_rules(w) for w in rule.words}
    for name in rule.lists:
        words.update(fold_for_rules(w) for w in lists.word_lists[name])
    if not words - {""}:
        return re.compile(r"(?!)")  # an empty list matches nothing, not every position
    # Longest first, so that "free nitro" is reported rather than "free" when both are listed.
    alternatives = [r"\s+".join(map(re.escape, w.split())) for w in sorted(words, key=lambda w: (-len(w), w)) if w]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def _listed_words(pattern: re.Pattern[str], text: str) -> str | None:
    found = list(dict.fromkeys(_SPACES.sub(" ", m.group(0)) for m in pattern.finditer(fold_for_rules(text))))
    if not found:
        return None
    return "listed words: " + ", ".join(repr(w) for w in found[:MAX_EVIDENCE_ITEMS])


def _hit(rule: Rule, evidence: str, related: tuple[str, ...]) -> RuleHit:
    return RuleHit(
        rule_id=rule.id,
        kind=rule.kind,
        action=rule.action,
        confidence=Confidence(rule.confidence),
        rule_text=rule.rule_text,
        evidence=evidence,
        related=related,
    )
