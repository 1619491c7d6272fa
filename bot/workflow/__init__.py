"""The moderation workflow: policy lifecycle, preview, review, appeals, labels, escalation, jobs, status.

Services take their ports (store, classifier, effect sinks, mod channel, clock) as
arguments; the bootstrap builds each once (`bot.app.ModbotApp`). Every operation names
its actor and the server where the actor acts, and authorisation and tenancy are checked
here, in the core, whatever the adapter did before.
"""

from bot.domain import DecisionAction, HumanDecision
from bot.notices import (
    AppealFiled,
    AppealReminder,
    AppealView,
    Digest,
    ModelOutage,
    ModelRecovered,
    Notice,
    PolicyCount,
    WaitingAppeal,
)
from bot.store.ports import AuditEntry, Draft, HealthState
from bot.workflow.actors import Actor, is_admin, is_moderator, require_admin, require_moderator, settings_or_default
from bot.workflow.appeals import MAX_STATEMENT_CHARS, Appeals
from bot.workflow.decisions import decisions_for
from bot.workflow.digest import build_digest, send_due_digests
from bot.workflow.errors import AlreadyDecided, NotAuthorised, NotFound, PolicyRejected, Refused, WorkflowError
from bot.workflow.escalation import step_for
from bot.workflow.health import HealthReport, OllamaProbe, probe_model
from bot.workflow.jobs import JOB_NAMES, JobIntervals, WorkflowJobs, schedule_jobs, start_jobs
from bot.workflow.labels import Labels
from bot.workflow.policies import (
    PolicyAdmin,
    PolicyHistory,
    PolicySetResult,
    PolicyState,
    Template,
    templates,
    validate_policy,
)
from bot.workflow.ports import Clock, ConfigChanged, ModChannel, ModelProbe
from bot.workflow.preview import PreviewChange, PreviewReport, Previews
from bot.workflow.privacy import Erasure, MemberData, MemberDataRequests
from bot.workflow.reminders import remind_waiting_appeals
from bot.workflow.reports import Reports
from bot.workflow.retention import purge_message_text
from bot.workflow.review import DecisionOutcome, Reviews
from bot.workflow.server_settings import ServerSettingsService
from bot.workflow.status import PlatformStatus, Status, StatusReport

__all__ = [
    "JOB_NAMES",
    "MAX_STATEMENT_CHARS",
    "Actor",
    "AlreadyDecided",
    "AppealFiled",
    "AppealReminder",
    "AppealView",
    "Appeals",
    "AuditEntry",
    "Clock",
    "ConfigChanged",
    "DecisionAction",
    "DecisionOutcome",
    "Digest",
    "Draft",
    "Erasure",
    "HealthReport",
    "HealthState",
    "HumanDecision",
    "JobIntervals",
    "Labels",
    "MemberData",
    "MemberDataRequests",
    "ModChannel",
    "ModelOutage",
    "ModelProbe",
    "ModelRecovered",
    "NotAuthorised",
    "NotFound",
    "Notice",
    "OllamaProbe",
    "PlatformStatus",
    "PolicyAdmin",
    "PolicyCount",
    "PolicyHistory",
    "PolicyRejected",
    "PolicySetResult",
    "PolicyState",
    "PreviewChange",
    "PreviewReport",
    "Previews",
    "Refused",
    "Reports",
    "Reviews",
    "ServerSettingsService",
    "Status",
    "StatusReport",
    "Template",
    "WaitingAppeal",
    "WorkflowError",
    "WorkflowJobs",
    "build_digest",
    "decisions_for",
    "is_admin",
    "is_moderator",
    "probe_model",
    "purge_message_text",
    "remind_waiting_appeals",
    "require_admin",
    "require_moderator",
    "schedule_jobs",
    "send_due_digests",
    "settings_or_default",
    "start_jobs",
    "step_for",
    "templates",
    "validate_policy",
]
