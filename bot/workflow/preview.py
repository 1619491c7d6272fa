"""Preview a draft policy on a server's recent messages; it goes live only on an explicit apply."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from bot.classifier import ClassificationRequest, ModelRequestRejected, ModelUnavailable
from bot.domain import CaseStatus, Frozen, Policy, UtcDatetime, Verdict, VerdictStatus
from bot.pipeline import skip_reason
from bot.ports import Classifier
from bot.store import LivePolicy, SqliteStore
from bot.workflow.actors import Actor, require_moderator, settings_or_default
from bot.workflow.errors import NotFound, Refused
from bot.workflow.policies import validate_policy
from bot.workflow.ports import Clock

MAX_PREVIEW_MESSAGES = 1000


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


class Draft(Frozen):
    id: int
    server_id: str
    name: str
    base_version: int
    author: str
    created_at: UtcDatetime
    applied_by: str | None
    applied_version: int | None


def _flagged(verdict: Verdict | None) -> bool:
    return verdict is not None and verdict.status is VerdictStatus.DECIDED and verdict.violation


async def preview_draft(
    store: SqliteStore,
    classifier: Classifier,
    platform: str,
    server_id: str,
    text: str,
    actor: Actor,
    *,
    name: str | None = None,
    last: int = 100,
    source: str = "<draft>",
    clock: Clock | None = None,
) -> PreviewReport:
    """Classify the server's last `last` retained messages with the draft and report what would change.

    The draft is saved (not live) so that `apply_draft` can make exactly this text live.
    """
    settings = await settings_or_default(store, platform, server_id)
    require_moderator(actor, settings, "preview policies")
    if not 1 <= last <= MAX_PREVIEW_MESSAGES:
        raise Refused(f"preview takes 1 to {MAX_PREVIEW_MESSAGES} messages; {last} was asked for")
    doc = validate_policy(text, name, source)
    live = next((lp for lp in await store.live_policies(server_id) if lp.policy.name == doc.name), None)
    base = live.policy.version if live else 0
    draft = Policy(
        server_id=server_id,
        name=doc.name,
        version=base + 1,
        text=doc.body,
        description=doc.description,
        author=actor.id,
        created_at=clock() if clock else store.now(),
    )
    cases = []
    async for case in store.iter_cases(
        "c.rowid IN (SELECT rowid FROM cases WHERE server_id = ? AND text IS NOT NULL"
        " ORDER BY created_at DESC, rowid DESC LIMIT ?)",
        (server_id, last),
    ):
        cases.append(case)
    as_live = [LivePolicy(draft, True, None)]
    judged = [c for c in cases if skip_reason(c.message, settings, as_live) is None]
    try:
        after = await asyncio.gather(
            *(classifier.classify(ClassificationRequest(draft, c.message, settings.effort)) for c in judged)
        )
    except (ModelUnavailable, ModelRequestRejected) as exc:
        raise Refused(f"the model did not answer ({exc}); no draft was saved: preview again when it is back") from exc
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
    async with store.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO policy_drafts (server_id, name, text, description, base_version, author, summary,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                server_id,
                doc.name,
                doc.body,
                doc.description,
                base,
                actor.id,
                json.dumps(summary),
                draft.created_at.isoformat(),
            ),
        )
        await cur.close()
        draft_id = cur.lastrowid
    assert draft_id is not None
    return PreviewReport(
        draft_id=draft_id,
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


async def apply_draft(store: SqliteStore, platform: str, server_id: str, draft_id: int, actor: Actor) -> Policy:
    """Make a previewed draft live, unless the policy changed since the preview."""
    settings = await settings_or_default(store, platform, server_id)
    require_moderator(actor, settings, "apply policies")
    draft = await get_draft(store, server_id, draft_id)
    if draft.applied_by is not None:
        raise Refused(
            f"draft {draft_id} was already applied by {draft.applied_by} as {draft.name} v{draft.applied_version}"
        )
    row = await store.fetchone("SELECT text, description FROM policy_drafts WHERE id = ?", (draft_id,))
    assert row is not None
    live = next((lp for lp in await store.live_policies(server_id) if lp.policy.name == draft.name), None)
    current = live.policy.version if live else 0
    if current != draft.base_version:
        raise Refused(
            f"{draft.name} changed since draft {draft_id} was previewed (v{draft.base_version} then, v{current} now):"
            " preview the draft again so its report matches what is live"
        )
    policy = await store.add_policy_version(
        server_id, draft.name, row[0], row[1], actor.id, action=f"policy.apply_draft_{draft_id}"
    )
    async with store.transaction() as conn:
        await conn.execute(
            "UPDATE policy_drafts SET applied_by = ?, applied_at = ?, applied_version = ? WHERE id = ?",
            (actor.id, policy.created_at.isoformat(), policy.version, draft_id),
        )
    return policy


async def get_draft(store: SqliteStore, server_id: str, draft_id: int) -> Draft:
    row = await store.fetchone(
        "SELECT id, server_id, name, base_version, author, created_at, applied_by, applied_version"
        " FROM policy_drafts WHERE id = ? AND server_id = ?",
        (draft_id, server_id),
    )
    if row is None:
        raise NotFound(f"server {server_id} has no draft {draft_id}: preview a draft first, then apply its id")
    return Draft(
        id=row[0],
        server_id=row[1],
        name=row[2],
        base_version=row[3],
        author=row[4],
        created_at=datetime.fromisoformat(row[5]),
        applied_by=row[6],
        applied_version=row[7],
    )
