"""Judging one message: what the model reads, which verdicts are reused, what the case records.

`Judge.judge` takes one message with its server's settings, active policies and channel
context, and returns a `Judgement`: the verdicts, the effects they call for (raids bounded),
the case's status, and notes saying what was done. The pipeline records and acts on it.

- The model reads the normalised view of the text (bot.text), with the original beside it
  when they differ. A long text is judged whole, in overlapping parts within a token budget
  (up to Slack's 40,000 characters; past that, head and tail with a marker), and the
  message's verdict for a policy is the worst of its parts'.
- Verdicts are reused per policy through the repeat memory (bot.repeats): a clean verdict
  only for the same normalised text, a violation for near-repeats.
- The model's answer is hostile too: its text is made valid and bounded, and its rule ids
  are checked against the policy. Ids the policy does not define stay visible, marked
  unknown (the case notes them; sinks see `RuleText.known=False`); a violation citing no
  rule of the policy goes to human review, never to automatic deletion or time-out.
- Raids (bot.raids): a repeat of a flagged text joins the first case's flag, and DMs to
  moderators are rate-limited per server.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from bot.classifier.prompt import ClassificationRequest
from bot.domain import (
    AuthorNotice,
    Case,
    CaseStatus,
    Effect,
    Message,
    Policy,
    ServerSettings,
    Verdict,
    VerdictStatus,
    utcnow,
)
from bot.effects import decide_effects
from bot.policy_format import rules_in
from bot.ports import Classifier
from bot.raids import FlagKey, FlagUpdates, RaidControl, flag_settled
from bot.repeats import Flight, PolicyScope, RepeatMemory
from bot.sanitise import safe_inline, valid_text
from bot.store.ports import LivePolicy
from bot.text import JudgedText, prepare_for_judging

T = TypeVar("T")

# Texts longer than this are prepared in a thread: a hostile 4,000-character text can hold
# the event loop for about 0.1 s (BENCHMARKS.md, bot.text).
PREPARE_IN_THREAD_CHARS = 4_000
# The model's answer is stored and shown to moderators: bounded whatever it says.
MAX_RULE_IDS = 20
MAX_RULE_ID_CHARS = 64
MAX_RATIONALE_CHARS = 2_000
MAX_REASONING_CHARS = 20_000
MAX_RAW_OUTPUT_CHARS = 20_000
# Ids named in a case's notes, each clipped: the notes are read in one line.
_NOTED_IDS = 5
MAX_NOTES_CHARS = 2_000


@dataclass(frozen=True)
class Judgement:
    """What judging decided about one message, for the pipeline to record and carry out."""

    verdicts: tuple[Verdict, ...]
    effects: tuple[Effect, ...]
    status: CaseStatus
    # What was done, in words and without message content (Case.judging_notes).
    notes: str = ""
    joined_case_id: str | None = None
    skipped_reason: str | None = None

    @classmethod
    def skipped(cls, reason: str, notes: str = "") -> Judgement:
        return cls(verdicts=(), effects=(), status=CaseStatus.SKIPPED, notes=notes, skipped_reason=reason)


# ---------------------------------------------------------------- rule ids


@dataclass(frozen=True)
class RuleBook:
    """The rule ids one policy version defines, by their casefolded spelling."""

    violates: dict[str, str]
    safe: dict[str, str]

    @property
    def defines_rules(self) -> bool:
        return bool(self.violates or self.safe)

    def canonical(self, rule_id: str) -> str:
        """The policy's own spelling of a cited id (`hb1.a` cites HB1.a), else the id as cited."""
        folded = rule_id.casefold()
        return self.violates.get(folded) or self.safe.get(folded) or rule_id

    def known(self, rule_id: str) -> bool:
        folded = rule_id.casefold()
        return folded in self.violates or folded in self.safe

    def grounds(self, rule_id: str) -> bool:
        return rule_id.casefold() in self.violates


@functools.lru_cache(maxsize=512)
def rule_book(policy_text: str) -> RuleBook:
    violates: dict[str, str] = {}
    safe: dict[str, str] = {}
    for rule in rules_in(policy_text):
        (violates if rule.violates else safe).setdefault(rule.id.casefold(), rule.id)
    return RuleBook(violates, safe)


@dataclass(frozen=True)
class RuleFindings:
    unknown: tuple[str, ...]
    # A violation that cites no VIOLATES rule of a policy that defines rules: no ground for
    # anything automatic. A policy without rule lines cannot be checked, and is not held to it.
    ungrounded: bool


def check_rules(verdict: Verdict, book: RuleBook) -> RuleFindings:
    if not book.defines_rules or verdict.status is not VerdictStatus.DECIDED:
        return RuleFindings((), False)
    unknown = tuple(r for r in verdict.rule_ids if not book.known(r))
    ungrounded = verdict.violation and not any(book.grounds(r) for r in verdict.rule_ids)
    return RuleFindings(unknown, ungrounded)


def bounded_verdict(verdict: Verdict, book: RuleBook) -> Verdict:
    """The model's answer made safe to store and show: valid text, bounded, rule ids in the policy's spelling.

    JSON from a model may hold lone surrogates (`"\\ud800"`) that no database or client can
    encode, and any number of rule ids of any length.
    """
    ids: list[str] = []
    for cited in verdict.rule_ids[:MAX_RULE_IDS]:
        rule_id = book.canonical(valid_text(cited).strip()[:MAX_RULE_ID_CHARS])
        if rule_id and rule_id not in ids:
            ids.append(rule_id)
    category = verdict.policy_category
    return verdict.model_copy(
        update={
            "rule_ids": tuple(ids),
            "policy_category": None if category is None else valid_text(category)[:MAX_RULE_ID_CHARS],
            "rationale": valid_text(verdict.rationale)[:MAX_RATIONALE_CHARS],
            "reasoning": valid_text(verdict.reasoning)[:MAX_REASONING_CHARS],
            "raw_output": None if verdict.raw_output is None else valid_text(verdict.raw_output)[:MAX_RAW_OUTPUT_CHARS],
        }
    )


# ---------------------------------------------------------------- parts


def combine_parts(verdicts: Sequence[Verdict]) -> tuple[Verdict, tuple[str, ...]]:
    """One policy's verdict on a message from its parts' verdicts, and what to note.

    Any violating part makes the message a violation: the most confident one speaks for it
    (the first among equals), citing the rules every violating part cited. Else any part
    the model could not judge makes it need review. Else it is clean, as sure as its least
    sure part. Model time and tokens add up.
    """
    if len(verdicts) == 1:
        return verdicts[0], ()
    count = len(verdicts)
    violating = [(i, v) for i, v in enumerate(verdicts) if v.violation and v.status is VerdictStatus.DECIDED]
    unjudged = [i for i, v in enumerate(verdicts) if v.status is VerdictStatus.NEEDS_REVIEW]
    notes: tuple[str, ...] = ()
    if violating:
        index, chosen = max(violating, key=lambda iv: iv[1].confidence.rank)
        rule_ids = tuple(dict.fromkeys(r for _, v in [(index, chosen), *violating] for r in v.rule_ids))
        if unjudged:
            notes = (f"{chosen.policy}: {len(unjudged)} of {count} parts gave no usable verdict",)
    elif unjudged:
        index, chosen = unjudged[0], verdicts[unjudged[0]]
        rule_ids = chosen.rule_ids
    else:
        index, chosen = min(enumerate(verdicts), key=lambda iv: iv[1].confidence.rank)
        rule_ids = chosen.rule_ids
    combined = chosen.model_copy(
        update={
            "rule_ids": rule_ids,
            "rationale": f"part {index + 1} of {count}: {chosen.rationale}",
            "latency_ms": sum(v.latency_ms for v in verdicts),
            "prompt_tokens": sum(v.prompt_tokens for v in verdicts),
            "completion_tokens": sum(v.completion_tokens for v in verdicts),
        }
    )
    return combined, notes


async def prepare(text: str) -> JudgedText:
    if len(text) > PREPARE_IN_THREAD_CHARS:
        return await asyncio.to_thread(prepare_for_judging, text)
    return prepare_for_judging(text)


def requests_for(request: ClassificationRequest, judged: JudgedText) -> list[ClassificationRequest]:
    """One request per part of the judged text: the part, and what normalising changed when it matters."""
    notes = judged.view.notes if judged.view.original is not None else ""
    return [
        ClassificationRequest(
            request.policy,
            request.message,
            request.effort,
            request.context,
            request.appeal_statement,
            part=part,
            normalisation=notes,
        )
        for part in judged.parts
    ]


async def classify_whole(classifier: Classifier, request: ClassificationRequest) -> Verdict:
    """One verdict on all of a message, in parts when it is long (for appeals, previews, checks)."""
    judged = await prepare(request.message.text)
    if not judged.parts:
        return await classifier.classify(request)
    verdicts = await all_of([classifier.classify(r) for r in requests_for(request, judged)])
    return combine_parts(verdicts)[0]


async def all_of(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Every result, or the first exception with the rest cancelled (not left running, as gather would)."""
    if len(awaitables) == 1:  # most messages are one part: no task to schedule
        return [await awaitables[0]]
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# ---------------------------------------------------------------- the judge


@dataclass(frozen=True)
class _PolicyVerdict:
    verdict: Verdict
    findings: RuleFindings
    notes: tuple[str, ...]


class Judge:
    """Judges one message at a time for the pipeline; holds the repeat memory and the raid state."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        flag_updates: FlagUpdates | None = None,
        raids: RaidControl | None = None,
        repeats: RepeatMemory | None = None,
        now: Callable[[], datetime] = utcnow,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.classifier = classifier
        self.repeats = repeats or RepeatMemory(clock)
        self.raids = raids or RaidControl(now)
        self.flag_updates = flag_updates

    async def judge(
        self,
        case_id: str,
        message: Message,
        settings: ServerSettings,
        policies: Sequence[LivePolicy],
        context: Sequence[Message] = (),
    ) -> Judgement:
        judged = await prepare(message.text)
        if not judged.parts:
            return Judgement.skipped("nothing to judge once invisible and blank characters are removed", judged.record)
        window = settings.repeat_window_minutes * 60.0
        results = await all_of(
            [self._policy_verdict(lp.policy, judged, message, settings, context, window) for lp in policies]
        )
        verdicts = tuple(r.verdict for r in results)
        review_only = {r.verdict.policy for r in results if r.findings.ungrounded}
        support = {lp.policy.name for lp in policies if lp.policy.author_notice is AuthorNotice.SUPPORT}
        modes = {lp.policy.name: lp.mode for lp in policies}
        effects = tuple(decide_effects(verdicts, settings, modes, support, review_only))
        status = case_status(verdicts, review_only)
        bounded = self.raids.bound(case_id, message, flag_key(status, verdicts, review_only, judged), effects, window)
        notes = [judged.record, *(n for r in results for n in r.notes), *bounded.notes]
        return Judgement(
            verdicts=verdicts,
            effects=bounded.effects,
            status=status,
            notes="; ".join(notes)[:MAX_NOTES_CHARS],
            joined_case_id=bounded.joined_case_id,
        )

    def settled(self, case: Case) -> None:
        """The case is recorded and its effects carried out: keep the flag it joined (or its own) current."""
        if self.flag_updates is not None:
            flag_settled(self.flag_updates, case)

    def forget(self, message: Message) -> None:
        """The message's case was never recorded as judged (it ended in an internal error):
        repeats must not join a flag that will never be posted."""
        self.raids.forget_message(message.key)

    async def aclose(self) -> None:
        if self.flag_updates is not None:
            await self.flag_updates.aclose()

    async def _policy_verdict(
        self,
        policy: Policy,
        judged: JudgedText,
        message: Message,
        settings: ServerSettings,
        context: Sequence[Message],
        window_seconds: float,
    ) -> _PolicyVerdict:
        book = rule_book(policy.text)
        label = f"{policy.name} v{policy.version}"
        scope: PolicyScope = (message.platform, message.server_id, settings.effort.value, policy.name, policy.version)
        notes: list[str] = []
        verdict: Verdict | None = None
        flight: Flight | None = None
        if window_seconds > 0:
            reuse = await self.repeats.recall_or_wait(scope, judged.keys)
            if reuse is not None:
                verdict = reuse.verdict.model_copy(
                    update={"reused": True, "latency_ms": 0.0, "prompt_tokens": 0, "completion_tokens": 0}
                )
                how = "a near-repeat's violation (same letters and emoji)" if reuse.near_repeat else "the same text"
                notes.append(f"{label}: verdict reused from {how}")
            else:
                flight = self.repeats.begin(scope, judged.keys)
        if verdict is None:
            try:
                request = ClassificationRequest(policy, message, settings.effort, tuple(context))
                answers = await all_of([self.classifier.classify(r) for r in requests_for(request, judged)])
                verdict, part_notes = combine_parts(answers)
                verdict = bounded_verdict(verdict, book)
                notes.extend(part_notes)
            finally:
                if flight is not None:
                    self.repeats.end(flight, verdict, window_seconds)
        findings = check_rules(verdict, book)
        if findings.unknown:
            shown = ", ".join(safe_inline(r, 40) for r in findings.unknown[:_NOTED_IDS])
            more = f" and {len(findings.unknown) - _NOTED_IDS} more" if len(findings.unknown) > _NOTED_IDS else ""
            notes.append(f"{label} cited rule ids it does not define: {shown}{more} (marked unknown)")
        if findings.ungrounded:
            notes.append(f"{label}: a violation citing no rule of the policy goes to human review, nothing automatic")
        return _PolicyVerdict(verdict, findings, tuple(notes))


def case_status(verdicts: Sequence[Verdict], review_only: Collection[str] = ()) -> CaseStatus:
    if any(v.status is VerdictStatus.NEEDS_REVIEW for v in verdicts):
        return CaseStatus.NEEDS_REVIEW
    if any(v.violation and v.policy in review_only for v in verdicts):
        return CaseStatus.NEEDS_REVIEW
    if any(v.violation for v in verdicts):
        return CaseStatus.OPEN
    return CaseStatus.CLEAN


def flag_key(
    status: CaseStatus, verdicts: Sequence[Verdict], review_only: Collection[str], judged: JudgedText
) -> FlagKey | None:
    """Which flag a repeat of this message may join: a violation's, by its skeleton; a review's, by its exact text."""
    flagging = frozenset(v.policy for v in verdicts if v.violation or v.status is VerdictStatus.NEEDS_REVIEW)
    if status is CaseStatus.NEEDS_REVIEW:
        return FlagKey("review", judged.keys.clean, flagging)
    if status is CaseStatus.OPEN:
        return FlagKey("violation", judged.keys.violation, flagging)
    return None


__all__ = [
    "Judge",
    "Judgement",
    "RuleBook",
    "all_of",
    "bounded_verdict",
    "case_status",
    "check_rules",
    "classify_whole",
    "combine_parts",
    "flag_key",
    "prepare",
    "requests_for",
    "rule_book",
]
