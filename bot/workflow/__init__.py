"""The moderation workflow: policy lifecycle, preview, review, appeals, labels, escalation, jobs.

Services take their ports (store, classifier, effect sinks, mod channel, clock) as
arguments. Every operation names its actor, and authorisation is checked here, in the
core, whatever the adapter did before.
"""

from bot.domain import DecisionAction
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
from bot.workflow.actors import Actor, is_admin, is_moderator, require_admin, require_moderator, settings_or_default
from bot.workflow.appeals import MAX_STATEMENT_CHARS, Appeals
from bot.workflow.decisions import HumanDecision, decisions_for
from bot.workflow.digest import build_digest, send_due_digests
from bot.workflow.errors import AlreadyDecided, NotAuthorised, NotFound, PolicyRejected, Refused, WorkflowError
from bot.workflow.escalation import step_for
from bot.workflow.health import HealthReport, HealthState, OllamaProbe, probe_model
from bot.workflow.jobs import JOB_NAMES, JobIntervals, WorkflowJobs, schedule_jobs, start_jobs
from bot.workflow.labels import export_labels
from bot.workflow.policies import (
    AuditEntry,
    PolicyAdmin,
    PolicyHistory,
    PolicySetResult,
    PolicyState,
    Template,
    templates,
    validate_policy,
)
from bot.workflow.ports import Clock, ModChannel, ModelProbe
from bot.workflow.preview import Draft, PreviewChange, PreviewReport, apply_draft, get_draft, preview_draft
from bot.workflow.reminders import remind_waiting_appeals
from bot.workflow.retention import purge_message_text
from bot.workflow.review import DecisionOutcome, Reviews
from bot.workflow.server_settings import show_settings, update_settings

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
    "DecisionAction",
    "DecisionOutcome",
    "Digest",
    "Draft",
    "HealthReport",
    "HealthState",
    "HumanDecision",
    "JobIntervals",
    "ModChannel",
    "ModelOutage",
    "ModelProbe",
    "ModelRecovered",
    "NotAuthorised",
    "NotFound",
    "Notice",
    "OllamaProbe",
    "PolicyAdmin",
    "PolicyCount",
    "PolicyHistory",
    "PolicyRejected",
    "PolicySetResult",
    "PolicyState",
    "PreviewChange",
    "PreviewReport",
    "Refused",
    "Reviews",
    "Template",
    "WaitingAppeal",
    "WorkflowError",
    "WorkflowJobs",
    "apply_draft",
    "build_digest",
    "decisions_for",
    "export_labels",
    "get_draft",
    "is_admin",
    "is_moderator",
    "preview_draft",
    "probe_model",
    "purge_message_text",
    "remind_waiting_appeals",
    "require_admin",
    "require_moderator",
    "schedule_jobs",
    "send_due_digests",
    "settings_or_default",
    "show_settings",
    "start_jobs",
    "step_for",
    "templates",
    "update_settings",
    "validate_policy",
]
