"""Preview a draft policy on a server's recent messages; it goes live only on an explicit apply.

A person at the console waits for `preview`. A chat surface calls `request` instead: it
checks the draft and the rights at once, queues the work and returns; the bot's workers
judge the messages (one model call at a time, so that a preview of a thousand messages
never stalls live traffic) and post the report to the mod channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.classifier import ClassificationRequest, ModelRequestRejected, ModelUnavailable
from bot.domain import CaseStatus, Frozen, Policy, Verdict, VerdictStatus, utcnow
from bot.notices import PreviewFinished, PreviewSummary
from bot.pipeline import skip_reason
from bot.policy_format import PolicyDocument
from bot.policy_library import content_of, version_audit
from bot.ports import Classifier, ModChannel
from bot.store.ports import CaseQuery, Draft, LivePolicy, ModerationStore, WorkItem, WorkKind
from bot.workflow.actors import Actor, require_moderator, settings_for, settings_or_default
from bot.workflow.errors import NotFound, Refused
from bot.workflow.policies import validate_policy
from bot.workflow.ports import Clock, ConfigChanged

log = logging.getLogger(__name__)

MAX_PREVIEW_MESSAGES = 1000
__all__ = [
    "MAX_PREVIEW_MESSAGES",
    "Draft",
    "PreviewChange",
    "PreviewReport",
    "PreviewRequested",
    "Previews",
    "QueuedPreviews",
]


class PreviewChange(Frozen):
    """A message whose decision would change under the draft."""

    case_id: str
    message_id: str
    channel_id: str
    author_id: str
    text: str
    case_status: CaseStatus  # includes what a moderator decided, if anyone did
    before: Verdict | None  # the verdict it got from this policy then (None: not judged by it)
    after: Verdict


class PreviewReport(Frozen):
    draft_id: int
    server_id: str
    name: str
    base_version: int  # the live version previewed against; 0 for a new policy
    examined: int
    skipped: int  # would not be classified (bots, exempt roles and channels, empty)
    unchanged: int
    undecided: int  # the model's answer to the draft was unusable
    newly_flagged: tuple[PreviewChange, ...]
    no_longer_flagged: tuple[PreviewChange, ...]
    warnings: tuple[str, ...] = ()


class PreviewRequested(Frozen):
    """A preview queued for the bot's workers: its report comes to the mod channel (PreviewFinished)."""

    request_id: int
    server_id: str
    name: str
    last: int


def _flagged(verdict: Verdict | None) -> bool:
    return verdict is not None and verdict.status is VerdictStatus.DECIDED and verdict.violation


class Previews:
    def __init__(
        self,
        store: ModerationStore,
        classifier: Classifier,
        on_change: ConfigChanged | None = None,
        clock: Clock = utcnow,
        mod_channel: ModChannel | None = None,
        on_work: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.on_change = on_change
        self.clock = clock
        self.mod_channel = mod_channel
        # Called once a preview is queued: the pipeline's workers look for it at once.
        self.on_work = on_work

    async def preview(
        self, actor: Actor, text: str, *, name: str | None = None, last: int = 100, source: str = "<draft>"
    ) -> PreviewReport:
        """Classify the server's last `last` retained messages with the draft and report what would change.

        The draft is saved (not live) so that `apply` can make exactly this text live.
        """
        doc = await self._checked(actor, text, name, last, source)
        try:
            return await self._run(actor, doc, last, one_at_a_time=False)
        except (ModelUnavailable, ModelRequestRejected) as exc:
            raise Refused(
                f"the model did not answer ({exc}); no draft was saved: preview again when it is back"
            ) from exc

    async def request(
        self, actor: Actor, text: str, *, name: str | None = None, last: int = 100, source: str = "<draft>"
    ) -> PreviewRequested:
        """Queue a preview and return at once: a refusal (rights, a malformed draft) comes now, the report later."""
        doc = await self._checked(actor, text, name, last, source)
        platform, server_id = actor.where()
        payload = {
            "actor": actor.model_dump(mode="json"),
            "text": text,
            "name": doc.name,
            "last": last,
            "source": source,
        }
        subject = f"preview of {doc.name} by {actor.id}"
        request_id = await self.store.work.add(WorkKind.PREVIEW, platform, server_id, subject, payload, self.clock())
        if request_id is None:
            raise Refused(f"your preview of {doc.name} is still running; its report comes to the mod channel")
        if self.on_work is not None:
            self.on_work()
        return PreviewRequested(request_id=request_id, server_id=server_id, name=doc.name, last=last)

    async def run_request(self, item: WorkItem) -> None:
        """The queued preview: judge, save the draft, post the report. ModelUnavailable keeps it queued."""
        actor = Actor.model_validate(item.payload["actor"])
        payload = item.payload
        doc = await self._checked(
            actor, str(payload["text"]), str(payload["name"]), int(payload["last"]), str(payload["source"])
        )
        # One model call at a time: a queued preview never takes more than a model slot from live traffic.
        report = await self._run(actor, doc, int(payload["last"]), one_at_a_time=True)
        summary = PreviewSummary(
            draft_id=report.draft_id,
            name=report.name,
            base_version=report.base_version,
            examined=report.examined,
            skipped=report.skipped,
            unchanged=report.unchanged,
            undecided=report.undecided,
            newly_flagged=tuple(c.case_id for c in report.newly_flagged),
            no_longer_flagged=tuple(c.case_id for c in report.no_longer_flagged),
            warnings=report.warnings,
        )
        await self._report(
            item, PreviewFinished(server_id=item.server_id, name=doc.name, requested_by=actor.id, summary=summary)
        )

    async def request_failed(self, item: WorkItem, problem: str) -> None:
        name = str(item.payload.get("name", "a policy"))
        actor = str(dict(item.payload.get("actor", {})).get("id", "?"))
        await self._report(
            item, PreviewFinished(server_id=item.server_id, name=name, requested_by=actor, problem=problem)
        )

    async def _report(self, item: WorkItem, notice: PreviewFinished) -> None:
        if self.mod_channel is None:
            return
        settings = await settings_or_default(self.store, item.platform, item.server_id)
        try:
            await self.mod_channel.post(settings, notice)
        except Exception as exc:  # the draft is saved; `policy apply` works without the notice
            log.warning("could not post a preview's report to the mod channel: %s", type(exc).__name__)

    async def _checked(self, actor: Actor, text: str, name: str | None, last: int, source: str) -> PolicyDocument:
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "preview policies")
        if not 1 <= last <= MAX_PREVIEW_MESSAGES:
            raise Refused(f"preview takes 1 to {MAX_PREVIEW_MESSAGES} messages; {last} was asked for")
        return validate_policy(text, name, source)

    async def _run(self, actor: Actor, doc: PolicyDocument, last: int, *, one_at_a_time: bool) -> PreviewReport:
        settings = await settings_for(self.store, actor)
        platform, server_id = settings.platform, settings.server_id
        live = next(
            (lp for lp in await self.store.policies.live(platform, server_id) if lp.policy.name == doc.name), None
        )
        base = live.policy.version if live else 0
        content = content_of(doc)
        draft = Policy(
            platform=platform,
            server_id=server_id,
            version=base + 1,
            author=actor.id,
            created_at=self.clock(),
            **content.model_dump(),
        )
        newest = await self.store.cases.find(
            CaseQuery(platform=platform, server_id=server_id, text_retained=True, newest_first=True, limit=last)
        )
        cases = list(reversed(newest))  # oldest first, as the report lists them
        as_live = [LivePolicy(draft, True, None)]
        judged = [c for c in cases if skip_reason(c.message, settings, as_live) is None]
        requests = [ClassificationRequest(draft, c.message, settings.effort) for c in judged]
        if one_at_a_time:
            after = [await self.classifier.classify(r) for r in requests]
        else:
            after = list(await asyncio.gather(*(self.classifier.classify(r) for r in requests)))
        newly: list[PreviewChange] = []
        no_longer: list[PreviewChange] = []
        unchanged = undecided = 0
        for case, verdict in zip(judged, after, strict=True):
            before = next((v for v in case.verdicts if v.policy == doc.name), None)
            if verdict.status is not VerdictStatus.DECIDED:
                undecided += 1
                continue
            if _flagged(before) == _flagged(verdict):
                unchanged += 1
                continue
            change = PreviewChange(
                case_id=case.id,
                message_id=case.message.message_id,
                channel_id=case.message.channel_id,
                author_id=case.message.author.id,
                text=case.message.text,
                case_status=case.status,
                before=before,
                after=verdict,
            )
            (newly if _flagged(verdict) else no_longer).append(change)
        summary = {
            "examined": len(cases),
            "skipped": len(cases) - len(judged),
            "unchanged": unchanged,
            "undecided": undecided,
            "newly_flagged": len(newly),
            "no_longer_flagged": len(no_longer),
        }
        saved = await self.store.policies.add_draft(
            platform, server_id, content, base, actor.id, summary, draft.created_at
        )
        return PreviewReport(
            draft_id=saved.id,
            server_id=server_id,
            name=doc.name,
            base_version=base,
            examined=len(cases),
            skipped=len(cases) - len(judged),
            unchanged=unchanged,
            undecided=undecided,
            newly_flagged=tuple(newly),
            no_longer_flagged=tuple(no_longer),
            warnings=tuple(str(p) for p in doc.warnings),
        )

    async def apply(self, actor: Actor, draft_id: int) -> Policy:
        """Make a previewed draft live, unless the policy changed since the preview."""
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "apply policies")
        platform, server_id = settings.platform, settings.server_id
        async with self.store.transaction() as tx:
            draft = await tx.policies.get_draft(platform, server_id, draft_id)
            if draft is None:
                raise _no_draft(server_id, draft_id)
            if draft.applied_by is not None:
                raise Refused(
                    f"draft {draft_id} was already applied by {draft.applied_by}"
                    f" as {draft.name} v{draft.applied_version}"
                )
            live = next(
                (lp for lp in await tx.policies.live(platform, server_id) if lp.policy.name == draft.name), None
            )
            current = live.policy.version if live else 0
            if current != draft.base_version:
                raise Refused(
                    f"{draft.name} changed since draft {draft_id} was previewed (v{draft.base_version} then,"
                    f" v{current} now): preview the draft again so its report matches what is live"
                )
            policy = await tx.policies.add_version(platform, server_id, draft.content, actor.id)
            await tx.audit.add(
                version_audit(policy, actor.id, f"policy.apply_draft_{draft_id}", current or None, policy.created_at)
            )
            await tx.policies.mark_draft_applied(draft_id, actor.id, policy.version, policy.created_at)
        if self.on_change is not None:
            self.on_change(platform, server_id)
        return policy

    async def draft(self, actor: Actor, draft_id: int) -> Draft:
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "see drafts")
        found = await self.store.policies.get_draft(settings.platform, settings.server_id, draft_id)
        if found is None:
            raise _no_draft(settings.server_id, draft_id)
        return found


def _no_draft(server_id: str, draft_id: int) -> NotFound:
    return NotFound(f"server {server_id} has no draft {draft_id}: preview a draft first, then apply its id")


class QueuedPreviews:
    """The pipeline's handler of queued previews (bootstrap registers it)."""

    def __init__(self, previews: Previews) -> None:
        self.previews = previews

    async def run(self, item: WorkItem) -> None:
        await self.previews.run_request(item)

    async def give_up(self, item: WorkItem, problem: str) -> None:
        await self.previews.request_failed(item, problem)
