"""The moderation domain: messages, policies, verdicts, effects, cases, settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from bot.sanitise import valid_text


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Effort(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Confidence(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return ("low", "medium", "high").index(self.value)


class Mode(StrEnum):
    ENFORCE = "enforce"
    SHADOW = "shadow"


# ---------------------------------------------------------------- messages


# Platform JSON may carry lone surrogates and NULs; they are made valid here, at the
# boundary, so that nothing downstream (the store, the model client, logs) can fail on them.
ValidText = Annotated[str, AfterValidator(valid_text)]


class Author(Frozen):
    id: ValidText
    name: ValidText = ""
    roles: tuple[ValidText, ...] = ()
    is_bot: bool = False


class Attachment(Frozen):
    name: ValidText
    content_type: ValidText = ""


class Message(Frozen):
    """One revision of one chat message, as every platform adapter hands it to the core.

    `channel_id` is where the message lives and where effects address it: the thread,
    for a message in a thread or forum post. `parent_channel_id` is the channel that
    thread belongs to; exemptions and policy scope apply to it (`scope_channel_id`).
    An edit is a new revision of the same message: same ids, new text, `edited` set and
    `edited_at` the platform's time of the edit.
    """

    platform: ValidText
    server_id: ValidText
    channel_id: ValidText
    message_id: ValidText
    author: Author
    text: ValidText = ""
    attachments: tuple[Attachment, ...] = ()
    reply_to: ValidText | None = None
    sent_at: UtcDatetime = Field(default_factory=utcnow)
    edited: bool = False
    edited_at: UtcDatetime | None = None
    parent_channel_id: ValidText | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """The identity that makes intake idempotent: gateways replay events."""
        return (self.platform, self.server_id, self.message_id)

    @property
    def scope_channel_id(self) -> str:
        """The channel whose exemptions and scope apply: a thread's parent, else the channel itself."""
        return self.parent_channel_id or self.channel_id

    @property
    def revised_at(self) -> datetime:
        """When this revision was written: the edit's time, else the message's."""
        return self.edited_at or self.sent_at


# ---------------------------------------------------------------- policies


class AuthorNotice(StrEnum):
    """How a policy's notice to the author reads."""

    # The rule ids and their text, with an appeal button.
    REMOVAL = "removal"
    # A caring message with support resources: no removal wording, no appeal button,
    # never a strike (the self-harm policy).
    SUPPORT = "support"


class Policy(Frozen):
    """One version of one server's policy. A change is a new version, never an overwrite."""

    server_id: str
    # "" for a policy that belongs to no stored server (one read from a file for `modbot check`).
    platform: str = ""
    name: str
    version: int = Field(ge=1)
    text: str
    description: str = ""
    author: str = ""
    enabled: bool = True
    created_at: UtcDatetime = Field(default_factory=utcnow)
    # Flags for a sensitive policy (sexual content involving minors, doxxing) carry no
    # excerpt of the content, only a link to the message.
    sensitive: bool = False
    author_notice: AuthorNotice = AuthorNotice.REMOVAL
    # The policy's own words to the author: for SUPPORT, the caring message and resources.
    notice_text: str = ""


class RuleText(Frozen):
    """One rule of a policy as a notice quotes it."""

    id: str
    text: str
    # False: the model cited a rule id the policy does not define.
    known: bool = True


class PolicyBrief(Frozen):
    """What a sink needs of one policy version to word a flag or a notice; never the policy text."""

    name: str
    version: int
    sensitive: bool = False
    author_notice: AuthorNotice = AuthorNotice.REMOVAL
    notice_text: str = ""
    rules: tuple[RuleText, ...] = ()

    def rule(self, rule_id: str) -> RuleText:
        found = next((r for r in self.rules if r.id == rule_id), None)
        return found or RuleText(id=rule_id, text="", known=False)


# ---------------------------------------------------------------- verdicts


class VerdictStatus(StrEnum):
    DECIDED = "decided"
    # The model's output could not be parsed even after a retry: a human decides.
    NEEDS_REVIEW = "needs_review"


class Verdict(Frozen):
    policy: str
    policy_version: int
    status: VerdictStatus = VerdictStatus.DECIDED
    violation: bool = False
    policy_category: str | None = None
    rule_ids: tuple[str, ...] = ()
    confidence: Confidence = Confidence.LOW
    rationale: str = ""
    reasoning: str = ""
    raw_output: str | None = None
    model: str = ""
    effort: Effort = Effort.LOW
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reused: bool = False

    def summary(self) -> dict[str, Any]:
        """The verdict as JSON for exports and listings: the reasoning and raw output stay behind."""
        return self.model_dump(mode="json", exclude={"reasoning", "raw_output"})


def primary_verdict(verdicts: tuple[Verdict, ...]) -> Verdict | None:
    """The verdict that speaks for a case: the most confident violation, else the first."""
    violating = sorted((v for v in verdicts if v.violation), key=lambda v: -v.confidence.rank)
    return violating[0] if violating else (verdicts[0] if verdicts else None)


# ---------------------------------------------------------------- effects


class EffectKind(StrEnum):
    FLAG = "flag"  # post the case to the mod channel, with review buttons
    DELETE = "delete"
    TIMEOUT = "timeout"
    DM_MODERATORS = "dm_moderators"
    NOTIFY_AUTHOR = "notify_author"  # tell the author why, with an appeal button
    # Issued by the moderation workflow, never by the model's effect rules:
    LIFT_TIMEOUT = "lift_timeout"  # an overturned appeal ends the author's timeout
    NOTIFY_APPEAL_OUTCOME = "notify_appeal_outcome"  # tell the author how their appeal ended
    # Edit the case's flag post through its stored reference: who decided what, buttons
    # disabled; or a raid's count and authors as repeats join the flag.
    UPDATE_FLAG = "update_flag"


class EffectOutcome(StrEnum):
    PENDING = "pending"  # decided, not started
    STARTED = "started"  # intent recorded, execution under way
    DONE = "done"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"  # the platform cannot do this; never pretended
    SHADOW = "shadow"  # shadow mode: recorded, deliberately not executed
    INTERRUPTED = "interrupted"  # the process died mid-execution; not retried (at most once)


class ModeratorDmSummary(Frozen):
    """Moderator DMs a server's rate limit held back, told in one DM instead of one each (a raid).

    Rides on a DM_MODERATORS effect: the DM that starts a pause says so (`paused_until`), and
    the first DM after a pause says how many flags were not sent one by one (`held_back`).
    Holds no message content.
    """

    limit: int  # DMs per window before a pause
    window_minutes: int
    paused_until: UtcDatetime | None = None
    held_back: int = 0
    held_since: UtcDatetime | None = None

    def words(self) -> str:
        """Plain words for the DM (no user content in them; adapters still escape for their markup)."""
        said = []
        if self.held_back:
            since = f" since {self.held_since:%H:%M} UTC" if self.held_since else ""
            said.append(
                f"{self.held_back} other flagged message(s){since} were not sent to you one by one"
                " (too many at once); every one of them is in the mod channel."
            )
        if self.paused_until is not None:
            said.append(
                f"More than {self.limit} flags in {self.window_minutes} minutes: DMs about new flags are paused"
                f" until {self.paused_until:%H:%M} UTC. The mod channel still gets every flag."
            )
        return " ".join(said)


class Effect(Frozen):
    kind: EffectKind
    policy: str | None = None
    rule_ids: tuple[str, ...] = ()
    reason: str = ""
    timeout_minutes: int | None = None
    # Decided under shadow mode (the server's or the policy's): recorded, never executed.
    shadow: bool = False
    # Who asked for it when a person did (a moderator's confirm, an appeal decision).
    requested_by: str | None = None
    # NOTIFY_APPEAL_OUTCOME: how the appeal ended; `reason` carries the moderator's note.
    appeal_outcome: Literal["upheld", "overturned"] | None = None
    # DM_MODERATORS during or after a pause of the server's DM rate limit (bot.raids).
    dm_summary: ModeratorDmSummary | None = None


class EffectRecord(Frozen):
    """An effect of one case, with what became of it."""

    id: int
    case_id: str
    effect: Effect
    outcome: EffectOutcome
    detail: str = ""
    # The platform's reference to what the effect made (the flag post, the DM), when it made one.
    reference: str | None = None
    updated_at: UtcDatetime = Field(default_factory=utcnow)


class EffectResult(Frozen):
    """What an adapter reports after trying to carry out an effect."""

    outcome: Literal[EffectOutcome.DONE, EffectOutcome.FAILED, EffectOutcome.UNSUPPORTED]
    detail: str = ""
    # An opaque platform reference (for example "channel_id/message_id" of a flag post),
    # stored with the effect so that later effects can edit what this one posted.
    reference: str | None = None


# ---------------------------------------------------------------- cases


class CaseStatus(StrEnum):
    SKIPPED = "skipped"  # no model call: bot, exempt, empty, attachment only
    CLEAN = "clean"  # the model found no violation
    OPEN = "open"  # flagged, awaiting a moderator
    NEEDS_REVIEW = "needs_review"  # the model's output was unusable
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    APPEALED = "appealed"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class CaseNoteKind(StrEnum):
    """Something that happened to a case's message after the case was made."""

    EDITED = "edited"  # the author changed the text: the new revision is judged as its own case
    DELETED = "deleted"  # the author deleted the message


class CaseNote(Frozen):
    """What moderators see beside a case: the message changed under it (no message text)."""

    kind: CaseNoteKind
    at: UtcDatetime
    # EDITED: the revision the edit made (judged as its own case unless a newer one came first).
    revision: int | None = None


class Case(Frozen):
    id: str
    message: Message
    status: CaseStatus
    verdicts: tuple[Verdict, ...] = ()
    effects: tuple[EffectRecord, ...] = ()
    skipped_reason: str | None = None
    mode: Mode = Mode.ENFORCE
    decided_by: str | None = None
    decided_at: UtcDatetime | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    # When retention removed the message's text (`message.text` is then empty).
    text_purged_at: UtcDatetime | None = None
    # Which revision of the message this case judged: 1 as first sent, one more for each
    # edit that changed the text (every revision is judged as its own case).
    revision: int = Field(default=1, ge=1)
    # Edits and deletion of the message after the case was made, oldest first.
    notes: tuple[CaseNote, ...] = ()

    # What judging did, in words and without message content: how the text was judged
    # (normalised, in parts, past the cap), verdicts reused, rule ids the policy does not
    # define, a raid repeat joining another case's flag, a moderator DM held back.
    judging_notes: str = ""
    # A repeat of a flagged text that joined this case's flag instead of posting its own.
    joined_case_id: str | None = None

    @property
    def violation(self) -> bool:
        return any(v.violation for v in self.verdicts)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r for v in self.verdicts if v.violation for r in v.rule_ids)


class AuthorHistory(Frozen):
    """The author's record in this server, shown beside a flag."""

    days: int = 30
    cases: int = 0  # cases flagged in the last `days`
    confirmed: int = 0  # of those, confirmed or upheld by a moderator


class FlagJoins(Frozen):
    """Repeats of a flagged text that joined this case's flag instead of posting their own (a raid)."""

    count: int = 0
    author_ids: tuple[str, ...] = ()


class DecisionAction(StrEnum):
    CONFIRM = "confirm"
    DISMISS = "dismiss"
    UPHOLD = "uphold"
    OVERTURN = "overturn"

    @property
    def stage(self) -> Literal["review", "appeal"]:
        return "review" if self in (DecisionAction.CONFIRM, DecisionAction.DISMISS) else "appeal"

    @property
    def violation(self) -> bool:
        """The label: confirm and uphold say the message violates; dismiss and overturn say not."""
        return self in (DecisionAction.CONFIRM, DecisionAction.UPHOLD)


class HumanDecision(Frozen):
    """A moderator's decision on a case: recorded once per stage, and a label for the policy."""

    id: int
    case_id: str
    platform: str
    server_id: str
    action: DecisionAction
    violation: bool
    moderator_id: str
    note: str = ""
    at: UtcDatetime
    # The moderator decided about their own message (only a server admin may).
    self_review: bool = False


class AppealStatus(StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class Appeal(Frozen):
    id: int
    case_id: str
    author_id: str
    statement: str = Field(max_length=1000)
    status: AppealStatus = AppealStatus.PENDING
    second_opinion: tuple[Verdict, ...] = ()
    decided_by: str | None = None
    note: str = ""
    created_at: UtcDatetime = Field(default_factory=utcnow)
    decided_at: UtcDatetime | None = None


# ---------------------------------------------------------------- settings


def _not_true_or_false(value: object) -> object:
    # pydantic reads true as 1: `retention_days=true` would keep message text for one day.
    if isinstance(value, bool):
        raise ValueError("give a whole number, not true or false")
    return value


# A number of something a server chooses. Every one has a documented range (`ge`, `le`, and
# the unit in `description`): a value far out of range (retention_days=1000000) once crashed
# the jobs of every server. `setting_range` reads them back for refusals and the README.
WholeNumber = Annotated[int, BeforeValidator(_not_true_or_false)]

# Controls and line breaks would forge lines wherever an id is shown; a lone surrogate cannot be stored.
_ID_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _id_from_json(value: object) -> object:
    # `settings set mod_channel_id=123` reads 123 as a JSON number: a whole number is taken as
    # the id it spells (Python's JSON keeps every digit). A fraction or an exponent is refused:
    # such a number has lost digits of a 19-digit snowflake before it ever reached us.
    if isinstance(value, bool):
        raise ValueError('an id is text, not true or false: quote it, e.g. "C0123ABC"')
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(
            f"{value!r} is a number with a fraction or an exponent, not an id (it may have lost digits): "
            'quote the id exactly as the platform shows it, e.g. "1234567890123456789"'
        )
    return value


MAX_ID_CHARS = 200


def _plausible_id(value: str) -> str:
    if not value:
        raise ValueError("an id cannot be empty (to unset mod_channel_id, give null)")
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"an id is at most {MAX_ID_CHARS} characters")
    if _ID_CONTROL.search(value):
        raise ValueError("an id holds no line breaks, control characters or broken characters")
    return value


# A platform id (channel, role, user) as a server's settings hold it.
SettingId = Annotated[str, BeforeValidator(_id_from_json), AfterValidator(_plausible_id)]
# Lists in settings are bounded too: each entry is checked on every message.
MAX_SETTING_IDS = 100


class EffectRule(Frozen):
    """Which effects a violating verdict triggers, from a minimum confidence up."""

    min_confidence: Confidence = Confidence.LOW
    # None means every policy of the server.
    policies: tuple[ValidText, ...] | None = Field(default=None, max_length=50)
    effects: tuple[EffectKind, ...] = Field(default=(EffectKind.FLAG,), max_length=len(EffectKind))
    # Discord caps timeouts at 28 days.
    timeout_minutes: WholeNumber = Field(default=10, ge=1, le=40320, description="minutes")


class StrikeStep(Frozen):
    """From this many confirmed violations within the window, these effects apply."""

    strikes: WholeNumber = Field(ge=2, le=100, description="confirmed violations")
    effects: tuple[EffectKind, ...] = Field(default=(EffectKind.TIMEOUT,), max_length=len(EffectKind))
    timeout_minutes: WholeNumber = Field(default=60, ge=1, le=40320, description="minutes")

    @field_validator("effects")
    @classmethod
    def _punitive_only(cls, value: tuple[EffectKind, ...]) -> tuple[EffectKind, ...]:
        allowed = (EffectKind.TIMEOUT, EffectKind.DELETE, EffectKind.DM_MODERATORS, EffectKind.NOTIFY_AUTHOR)
        wrong = [k.value for k in value if k not in allowed]
        if wrong or not value:
            raise ValueError(f"a strike step's effects must be some of {', '.join(k.value for k in allowed)}")
        return value


class StrikeLadder(Frozen):
    """Escalation for repeat offenders; off unless a server turns it on."""

    enabled: bool = False
    window_days: WholeNumber = Field(default=30, ge=1, le=365, description="days")
    steps: tuple[StrikeStep, ...] = Field(default=(), max_length=10)

    @field_validator("steps")
    @classmethod
    def _distinct_thresholds(cls, value: tuple[StrikeStep, ...]) -> tuple[StrikeStep, ...]:
        counts = [s.strikes for s in value]
        if len(set(counts)) != len(counts):
            raise ValueError("two strike steps share the same number of strikes")
        return tuple(sorted(value, key=lambda s: s.strikes))


class ConfirmNotice(StrEnum):
    """When a moderator's confirmation is told to the message's author."""

    NEVER = "never"
    # When the confirmation deletes the message or times the author out: they see the
    # consequence, so they are told why and may appeal. A bare confirmation is a label only.
    WITH_ACTION = "with_action"
    ALWAYS = "always"


class ServerSettings(Frozen):
    platform: str
    server_id: str
    mod_channel_id: SettingId | None = None
    moderator_role_ids: tuple[SettingId, ...] = Field(default=(), max_length=MAX_SETTING_IDS)
    # Moderators named one by one by user id, whatever their roles: for platforms or plans
    # without a fitting role (a free Slack workspace has no user groups).
    moderator_user_ids: tuple[SettingId, ...] = Field(default=(), max_length=MAX_SETTING_IDS)
    exempt_role_ids: tuple[SettingId, ...] = Field(default=(), max_length=MAX_SETTING_IDS)
    exempt_channel_ids: tuple[SettingId, ...] = Field(default=(), max_length=MAX_SETTING_IDS)
    effort: Effort = Effort.LOW
    mode: Mode = Mode.ENFORCE
    # Default: flag to the mod channel only. Nothing is deleted until an admin opts in.
    effect_rules: tuple[EffectRule, ...] = Field(default=(EffectRule(),), max_length=20)
    # Earlier messages of the channel the model sees with each one (0: none).
    context_messages: WholeNumber = Field(default=3, ge=0, le=20, description="messages")
    # A repeat of a judged text within this window reuses its verdict (0: never reused).
    repeat_window_minutes: WholeNumber = Field(default=10, ge=0, le=1440, description="minutes")
    # Message text (and every copy of it) is removed this long after the message.
    retention_days: WholeNumber = Field(default=30, ge=1, le=3650, description="days")
    appeal_reminder_hours: WholeNumber = Field(default=24, ge=1, le=720, description="hours")
    # Users who may administer the server whatever their roles (besides platform admins).
    admin_user_ids: tuple[SettingId, ...] = Field(default=(), max_length=MAX_SETTING_IDS)
    strike_ladder: StrikeLadder = StrikeLadder()
    digest_enabled: bool = True
    digest_hour_utc: WholeNumber = Field(default=9, ge=0, le=23, description="hour of the day, UTC")
    # A model outage is reported once it has lasted this long, and cleared once the
    # model has answered for health_clear_after_minutes.
    health_alert_after_minutes: WholeNumber = Field(default=10, ge=1, le=1440, description="minutes")
    health_clear_after_minutes: WholeNumber = Field(default=5, ge=0, le=1440, description="minutes")
    # A decision on a case, from any surface, tells the author per this setting (never twice:
    # not when the author was already notified of the case).
    notify_author_on_confirm: ConfirmNotice = ConfirmNotice.WITH_ACTION
    # Messages posted through webhooks (PluralKit and similar proxies post members' messages
    # that way) are judged like members' messages; off, they are ignored, as bots' are.
    accept_webhook_messages: bool = False
    # A role (on Slack, a user group) mentioned on flags and appeals in the mod channel, so
    # that moderators are notified; None mentions nobody.
    moderator_ping_role_id: SettingId | None = None


class SettingRange(Frozen):
    """The documented range of one numeric setting: refusals quote it, the README lists it."""

    # Dotted, with [] for each element of a list: "strike_ladder.steps[].timeout_minutes".
    path: str
    # None only for a number nobody bounded yet: a test keeps there being none.
    low: int | None
    high: int | None
    unit: str


def _ranges_of(model: type[BaseModel], prefix: str) -> list[SettingRange]:
    found: list[SettingRange] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = _nested_settings(info.annotation)
        if nested is not None:
            found += _ranges_of(nested[0], f"{path}{'[]' if nested[1] else ''}.")
            continue
        if info.annotation not in (int, float):
            continue
        low = next((_whole(m.ge) for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
        high = next((_whole(m.le) for m in info.metadata if isinstance(m, annotated_types.Le)), None)
        found.append(SettingRange(path=path, low=low, high=high, unit=info.description or ""))
    return found


def _whole(bound: object) -> int:
    assert isinstance(bound, int), "settings are bounded by whole numbers"
    return bound


def _nested_settings(annotation: object) -> tuple[type[BaseModel], bool] | None:
    """The settings model a field holds (and whether it holds a tuple of them), if it holds one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = get_args(annotation)
    if get_origin(annotation) is tuple and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], True
    return None


def setting_ranges() -> tuple[SettingRange, ...]:
    """Every numeric server setting with its range, nested ones included."""
    return tuple(_ranges_of(ServerSettings, ""))


def setting_range(loc: tuple[int | str, ...]) -> SettingRange | None:
    """The range of the numeric setting at a validation error's location, if it is one."""
    path = ".".join(str(part) for part in loc if not isinstance(part, int))
    # Element indexes are dropped above; a path through a tuple of models carries "[]".
    for bounds in setting_ranges():
        if bounds.path.replace("[]", "") == path:
            return bounds
    return None


# ---------------------------------------------------------------- what a sink is given


class EffectContext(Frozen):
    """Everything a platform sink needs to carry out one effect of a case.

    Built by the core; a sink never queries the store itself.
    """

    case: Case
    settings: ServerSettings
    # The policy versions the case's verdicts cite, with their rules' text.
    policies: tuple[PolicyBrief, ...] = ()
    history: AuthorHistory = AuthorHistory()
    # The stored reference of the case's flag post, for UPDATE_FLAG.
    flag_reference: str | None = None
    joins: FlagJoins = FlagJoins()
    # The case's DM_MODERATORS effect's summary of DMs held back by the rate limit, if any.
    dm_summary: ModeratorDmSummary | None = None

    def policy(self, name: str | None) -> PolicyBrief | None:
        return next((p for p in self.policies if p.name == name), None)
