"""The policy library on disk (policies/*.md) and installing it as a server's policies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from bot.domain import AuthorNotice, Policy
from bot.policy_format import PolicyDocument, PolicyFormatError, load_policy_file
from bot.store.ports import AuditEntry, ModerationStore, PolicyContent


def library_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.md") if p.is_file())


def load_policies(paths: Iterable[Path]) -> list[PolicyDocument]:
    """Load every file; raise one PolicyFormatError listing all problems of all files."""
    docs: list[PolicyDocument] = []
    problems = []
    for path in paths:
        try:
            docs.append(load_policy_file(path))
        except PolicyFormatError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyFormatError(problems)
    names = [d.name for d in docs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two policy files share the name {', '.join(duplicates)}")
    return docs


def content_of(doc: PolicyDocument) -> PolicyContent:
    """What a parsed document stores as a version: the model's text and how its notices read."""
    return PolicyContent(
        name=doc.name,
        text=doc.body,
        description=doc.description,
        sensitive=doc.sensitive,
        author_notice=AuthorNotice(doc.author_notice),
        notice_text=doc.notice_text,
    )


def as_policy(doc: PolicyDocument, server_id: str, author: str = "") -> Policy:
    """A document as an unsaved policy (for one-off checks that need no store)."""
    return Policy(server_id=server_id, version=doc.version, author=author, **content_of(doc).model_dump())


def version_audit(policy: Policy, actor: str, action: str, previous: int | None, at: datetime) -> AuditEntry:
    return AuditEntry(
        platform=policy.platform,
        server_id=policy.server_id,
        actor=actor,
        action=action,
        subject=f"policy:{policy.name}",
        before=f"v{previous}" if previous else None,
        after=f"v{policy.version}",
        at=at,
    )


async def install_policies(
    store: ModerationStore, platform: str, server_id: str, docs: Sequence[PolicyDocument], actor: str
) -> list[Policy]:
    """Make these documents the server's live text, adding a version only where something changed."""
    installed: list[Policy] = []
    async with store.transaction() as tx:
        live = {lp.policy.name: lp.policy for lp in await tx.policies.live(platform, server_id)}
        for doc in docs:
            content = content_of(doc)
            current = live.get(doc.name)
            if current is not None and content.same_as(current):
                installed.append(current)
                continue
            policy = await tx.policies.add_version(platform, server_id, content, actor)
            await tx.audit.add(
                version_audit(policy, actor, "policy.set", current.version if current else None, policy.created_at)
            )
            installed.append(policy)
    return installed
