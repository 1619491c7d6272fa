"""A server's policies over time: set, show, list, history, diff, rollback, enable, disable, mode."""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path

from bot.domain import Frozen, Mode, Policy, UtcDatetime
from bot.policy_format import PolicyDocument, Problem, Severity, parse_policy
from bot.policy_library import install_policies, library_files, load_policies
from bot.store import LivePolicy, SqliteStore
from bot.workflow.actors import Actor, require_moderator, settings_or_default
from bot.workflow.errors import NotFound, PolicyRejected, Refused


class PolicySetResult(Frozen):
    policy: Policy
    previous_version: int | None
    changed: bool  # False: the text equals the live version; no version was added
    warnings: tuple[str, ...] = ()


class PolicyState(Frozen):
    """One policy as it runs now: its live version and switches."""

    policy: Policy
    enabled: bool
    mode: Mode | None  # None: follows the server's mode
    versions: int


class AuditEntry(Frozen):
    actor: str
    action: str
    subject: str
    before: str | None
    after: str | None
    at: UtcDatetime


class PolicyHistory(Frozen):
    name: str
    versions: tuple[Policy, ...]
    changes: tuple[AuditEntry, ...]


class Template(Frozen):
    name: str
    description: str
    tokens: int
    path: str


def validate_policy(text: str, name: str | None, source: str = "<policy>") -> PolicyDocument:
    """Parse and check a policy; raise PolicyRejected naming each problem's line."""
    doc = parse_policy(text, source=source)
    if name is not None and doc.name and doc.name != name:
        doc.problems.append(
            Problem(
                Severity.ERROR,
                source,
                2,
                f"the front matter names the policy {doc.name!r} but it is being saved as {name!r}: make the two agree",
            )
        )
    if doc.errors:
        raise PolicyRejected(doc.errors)
    return doc


class PolicyAdmin:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    # ------------------------------------------------------------ reading

    async def list_policies(self, server_id: str) -> list[PolicyState]:
        states = []
        for lp in await self.store.live_policies(server_id):
            versions = await self.store.policy_versions(server_id, lp.policy.name)
            states.append(PolicyState(policy=lp.policy, enabled=lp.enabled, mode=lp.mode, versions=len(versions)))
        return states

    async def show(self, server_id: str, name: str, version: int | None = None) -> Policy:
        versions = await self._versions(server_id, name)
        if version is None:
            return versions[-1]
        return _version(versions, name, version)

    async def history(self, server_id: str, name: str) -> PolicyHistory:
        versions = await self._versions(server_id, name)
        changes = [
            AuditEntry(
                actor=e["actor"],
                action=e["action"],
                subject=e["subject"],
                before=e["before"],
                after=e["after"],
                at=datetime.fromisoformat(e["at"]),
            )
            for e in await self.store.audit_log(server_id)
            if e["subject"] == f"policy:{name}"
        ]
        return PolicyHistory(name=name, versions=tuple(versions), changes=tuple(changes))

    async def diff(self, server_id: str, name: str, old: int, new: int) -> str:
        versions = await self._versions(server_id, name)
        a, b = _version(versions, name, old), _version(versions, name, new)
        return "".join(
            difflib.unified_diff(
                a.text.splitlines(keepends=True),
                b.text.splitlines(keepends=True),
                fromfile=f"{name} v{old}",
                tofile=f"{name} v{new}",
            )
        )

    # ------------------------------------------------------------ changing

    async def set(
        self,
        platform: str,
        server_id: str,
        text: str,
        actor: Actor,
        *,
        name: str | None = None,
        source: str = "<policy>",
    ) -> PolicySetResult:
        """Validate and store a new version. A refused or unchanged text adds nothing."""
        settings = await settings_or_default(self.store, platform, server_id)
        require_moderator(actor, settings, "change policies")
        doc = validate_policy(text, name, source)
        warnings = tuple(str(p) for p in doc.warnings)
        live = await self._live(server_id, doc.name)
        if live is not None and live.policy.text == doc.body:
            return PolicySetResult(
                policy=live.policy, previous_version=live.policy.version, changed=False, warnings=warnings
            )
        policy = await self.store.add_policy_version(server_id, doc.name, doc.body, doc.description, actor.id)
        return PolicySetResult(
            policy=policy, previous_version=live.policy.version if live else None, changed=True, warnings=warnings
        )

    async def rollback(self, platform: str, server_id: str, name: str, to_version: int, actor: Actor) -> Policy:
        """A new version whose text is that of an earlier one: history is never rewritten."""
        settings = await settings_or_default(self.store, platform, server_id)
        require_moderator(actor, settings, "roll back policies")
        versions = await self._versions(server_id, name)
        target = _version(versions, name, to_version)
        if target.version == versions[-1].version or target.text == versions[-1].text:
            raise Refused(f"{name} v{versions[-1].version} is already the text of v{to_version}: nothing to roll back")
        return await self.store.add_policy_version(
            server_id, name, target.text, target.description, actor.id, action=f"policy.rollback_to_v{to_version}"
        )

    async def enable(self, platform: str, server_id: str, name: str, actor: Actor) -> PolicyState:
        return await self._switch(platform, server_id, name, actor, "enable policies", enabled=True)

    async def disable(self, platform: str, server_id: str, name: str, actor: Actor) -> PolicyState:
        return await self._switch(platform, server_id, name, actor, "disable policies", enabled=False)

    async def set_mode(self, platform: str, server_id: str, name: str, mode: Mode | None, actor: Actor) -> PolicyState:
        """Enforce or shadow this policy; None makes it follow the server's mode."""
        return await self._switch(platform, server_id, name, actor, "change a policy's mode", mode=mode)

    async def _switch(
        self,
        platform: str,
        server_id: str,
        name: str,
        actor: Actor,
        action: str,
        *,
        enabled: bool | None = None,
        mode: Mode | str | None = "keep",
    ) -> PolicyState:
        settings = await settings_or_default(self.store, platform, server_id)
        require_moderator(actor, settings, action)
        live = await self._live(server_id, name)
        if live is None:
            raise await self._not_found(server_id, name)
        unchanged_enabled = enabled is None or enabled == live.enabled
        unchanged_mode = mode == "keep" or mode == live.mode
        if not (unchanged_enabled and unchanged_mode):
            await self.store.set_policy_switches(server_id, name, actor.id, enabled=enabled, mode=mode)
        states = {s.policy.name: s for s in await self.list_policies(server_id)}
        return states[name]

    # ------------------------------------------------------------ templates

    async def install_templates(
        self, platform: str, server_id: str, names: list[str], actor: Actor, policy_dir: Path
    ) -> list[Policy]:
        """Start a server with the library policies its admin picked."""
        settings = await settings_or_default(self.store, platform, server_id)
        require_moderator(actor, settings, "install policies")
        available = {t.name: Path(t.path) for t in templates(policy_dir)}
        unknown = [n for n in names if n not in available]
        if unknown or not names:
            raise NotFound(
                f"no template named {', '.join(unknown) or '(none given)'} in {policy_dir}; "
                f"available: {', '.join(sorted(available)) or 'none'}"
            )
        docs = load_policies([available[n] for n in dict.fromkeys(names)])
        return await install_policies(self.store, server_id, docs, actor.id)

    # ------------------------------------------------------------ helpers

    async def _live(self, server_id: str, name: str) -> LivePolicy | None:
        return next((lp for lp in await self.store.live_policies(server_id) if lp.policy.name == name), None)

    async def _versions(self, server_id: str, name: str) -> list[Policy]:
        versions = await self.store.policy_versions(server_id, name)
        if not versions:
            raise await self._not_found(server_id, name)
        return versions

    async def _not_found(self, server_id: str, name: str) -> NotFound:
        names = [lp.policy.name for lp in await self.store.live_policies(server_id)]
        return NotFound(f"server {server_id} has no policy named {name!r}; it has: {', '.join(names) or 'none yet'}")


def _version(versions: list[Policy], name: str, version: int) -> Policy:
    found = next((p for p in versions if p.version == version), None)
    if found is None:
        raise NotFound(f"{name} has no version {version}; versions are 1 to {versions[-1].version}")
    return found


def templates(policy_dir: Path) -> list[Template]:
    """The policy library's files that parse cleanly, offered to a new server."""
    found = []
    for path in library_files(policy_dir):
        doc = parse_policy(path.read_text(encoding="utf-8"), source=str(path), expected_name=path.stem)
        if not doc.errors:
            found.append(Template(name=doc.name, description=doc.description, tokens=doc.tokens, path=str(path)))
    return found
