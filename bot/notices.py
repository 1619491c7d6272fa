"""Notices to a server's mod channel, as data: adapters decide how they look (an exhaustive match over `Notice`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bot.domain import AppealStatus, CaseStatus, Frozen, UtcDatetime, Verdict


class AppealView(Frozen):
    """What moderators need to decide an appeal, in one place."""

    case_id: str
    server_id: str
    channel_id: str
    message_id: str
    author_id: str
    text: str | None  # None once retention has purged it
    case_status: CaseStatus
    original: tuple[Verdict, ...]
    appeal_id: int
    statement: str
    appeal_status: AppealStatus
    second_opinion: tuple[Verdict, ...]
    # Why there is no second opinion yet (the model was down, the text was purged).
    second_opinion_error: str = ""
    # The second opinion is queued: it is posted to the mod channel when the model gives it.
    second_opinion_queued: bool = False
    filed_at: UtcDatetime
    decided_by: str | None = None
    decided_at: UtcDatetime | None = None
    note: str = ""


class AppealFiled(Frozen):
    """An appeal was filed; its second opinion follows (SecondOpinion) once the model has given it."""

    kind: Literal["appeal_filed"] = "appeal_filed"
    appeal: AppealView


class SecondOpinion(Frozen):
    """An appeal's high-effort second opinion arrived (or, `appeal.second_opinion_error`, could not be had)."""

    kind: Literal["second_opinion"] = "second_opinion"
    appeal: AppealView


class PreviewSummary(Frozen):
    """A preview's outcome in counts and case ids, without any message text."""

    draft_id: int
    name: str
    base_version: int  # the live version previewed against; 0 for a new policy
    examined: int
    skipped: int
    unchanged: int
    undecided: int
    newly_flagged: tuple[str, ...]  # case ids
    no_longer_flagged: tuple[str, ...]
    warnings: tuple[str, ...] = ()


class PreviewFinished(Frozen):
    """A queued policy preview finished: its draft is saved for `apply`, or it failed (`problem`)."""

    kind: Literal["preview_finished"] = "preview_finished"
    server_id: str
    name: str
    requested_by: str
    summary: PreviewSummary | None = None
    problem: str = ""


class WaitingAppeal(Frozen):
    case_id: str
    appeal_id: int
    filed_at: UtcDatetime
    waiting_hours: float


class AppealReminder(Frozen):
    kind: Literal["appeal_reminder"] = "appeal_reminder"
    server_id: str
    limit_hours: int
    appeals: tuple[WaitingAppeal, ...]


class PolicyCount(Frozen):
    policy: str
    rule_id: str | None  # None: the policy's total
    flags: int


class Digest(Frozen):
    kind: Literal["digest"] = "digest"
    server_id: str
    day: str  # the UTC date the digest is for
    period_start: UtcDatetime
    period_end: UtcDatetime
    messages: int
    flagged: int
    confirmed: int
    dismissed: int
    appeals_filed: int
    appeals_decided: int
    overturned: int
    overturn_rate: float | None  # overturned / appeals decided; None with no decided appeal
    median_latency_ms: float | None  # model calls only (reused verdicts excluded)
    by_policy: tuple[PolicyCount, ...] = ()
    # The model against moderators' labels over the last SHADOW_WINDOW (bot.evaluation.shadow).
    shadow_evaluation: tuple[str, ...] = ()


class ModelOutage(Frozen):
    kind: Literal["model_outage"] = "model_outage"
    since: UtcDatetime
    problem: str


class ModelRecovered(Frozen):
    kind: Literal["model_recovered"] = "model_recovered"
    outage_started: UtcDatetime
    recovered_at: UtcDatetime


Notice = Annotated[
    AppealFiled | SecondOpinion | AppealReminder | Digest | ModelOutage | ModelRecovered | PreviewFinished,
    Field(discriminator="kind"),
]
