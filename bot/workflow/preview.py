"""Preview a draft policy on a server's recent messages; it goes live only on an explicit apply."""

from __future__ import annotations

import asyncio

from bot.classifier import ClassificationRequest, ModelRequestRejected, ModelUnavailable
from bot.domain import CaseStatus, Frozen, Policy, Verdict, VerdictStatus, utcnow
from bot.pipeline import skip_reason
from bot.policy_library import content_of, version_audit
from bot.ports import Classifier
from bot.store.ports import CaseQuery, Draft, LivePolicy, ModerationStore
from bot.workflow.actors import Actor, require_moderator, settings_for
from bot.workflow.errors import NotFound, Refused
from bot.workflow.policies import validate_policy
from bot.workflow.ports import Clock, ConfigChanged

MAX_PREVIEW_MESSAGES = 1000

__all__ = ["MAX_PREVIEW_MESSAGES", "Draft", "PreviewChange", "PreviewReport", "Previews"]


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


def _flagged(verdict: Verdict | None) -> bool:
    return verdict is not None and verdict.status is VerdictStatus.DECIDED and verdict.violation


class Previews:
    def __init__(
        self,
        store: ModerationStore,
        classifier: Classifier,
        on_change: ConfigChanged | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.on_change = on_change
        self.clock = clock

    async def preview(
        self, actor: Actor, text: str, *, name: str | None = None, last: int = 100, source: str = "<draft>"
    ) -> PreviewReport:
        """Classify the server's last `last` retained messages with the draft and report what would change.

        The draft is saved (not live) so that `apply` can make exactly this text live.
        """
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "preview policies")
        if not 1 <= last <= MAX_PREVIEW_MESSAGES:
            raise Refused(f"preview takes 1 to {MAX_PREVIEW_MESSAGES} messages; {last} was asked for")
        doc = validate_policy(text, name, source)
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
        try:
            after = await asyncio.gather(
                *(self.classifier.classify(ClassificationRequest(draft, c.message, settings.effort)) for c in judged)
            )
        except (ModelUnavailable, ModelRequestRejected) as exc:
            raise Refused(
                f"the model did not answer ({exc}); no draft was saved: preview again when it is back"
            ) from exc
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
