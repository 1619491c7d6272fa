"""The policy library on disk (policies/*.md) and installing it as a server's policies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.domain import Policy
from bot.policy_format import PolicyDocument, PolicyFormatError, load_policy_file
from bot.store import SqliteStore


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


def as_policy(doc: PolicyDocument, server_id: str, author: str = "") -> Policy:
    """A document as an unsaved policy (for one-off checks that need no store)."""
    return Policy(
        server_id=server_id,
        name=doc.name,
        version=doc.version,
        text=doc.body,
        description=doc.description,
        author=author,
    )


async def install_policies(
    store: SqliteStore, server_id: str, docs: Sequence[PolicyDocument], actor: str
) -> list[Policy]:
    """Make these documents the server's live text, adding a version only where the text changed."""
    live = {lp.policy.name: lp.policy for lp in await store.live_policies(server_id)}
    installed: list[Policy] = []
    for doc in docs:
        current = live.get(doc.name)
        if current is not None and current.text == doc.body:
            installed.append(current)
            continue
        installed.append(await store.add_policy_version(server_id, doc.name, doc.body, doc.description, actor))
    return installed
