"""A server's policies over time: set, show, list, history, diff, rollback, enable, disable, mode, templates."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from bot.domain import Frozen, Mode, Policy, utcnow
from bot.policy_format import PolicyDocument, Problem, Severity, parse_policy
from bot.policy_library import content_of, install_policies, library_files, load_policies, version_audit
from bot.store.ports import AuditEntry, LivePolicy, ModerationStore, PolicyContent, Repositories
from bot.workflow.actors import Actor, require_moderator, settings_for
from bot.workflow.errors import NotFound, PolicyRejected, Refused
from bot.workflow.ports import Clock, ConfigChanged

__all__ = [
    "AuditEntry",
    "PolicyAdmin",
    "PolicyHistory",
    "PolicySetResult",
    "PolicyState",
    "Template",
    "templates",
    "validate_policy",
]


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


def diffable(policy: Policy) -> str:
    """A version as a diff shows it: the switches that shape its notices, its text, its author notice."""
    head = f"sensitive: {str(policy.sensitive).lower()}\nauthor_notice: {policy.author_notice.value}\n\n"
    notice = f"\n## AUTHOR NOTICE\n{policy.notice_text}\n" if policy.notice_text else ""
    return head + policy.text + notice


class PolicyAdmin:
    """Every change is a new version or a switch, audited in the same transaction, and takes effect at once."""

    def __init__(self, store: ModerationStore, on_change: ConfigChanged | None = None, clock: Clock = utcnow) -> None:
        self.store = store
        self.on_change = on_change
        self.clock = clock

    async def _allowed(self, actor: Actor, action: str) -> tuple[str, str]:
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, action)
        return settings.platform, settings.server_id

    def _changed(self, platform: str, server_id: str) -> None:
        if self.on_change is not None:
            self.on_change(platform, server_id)

    # ------------------------------------------------------------ reading

    async def list_policies(self, actor: Actor) -> list[PolicyState]:
        platform, server_id = await self._allowed(actor, "see policies")
        states = []
        for lp in await self.store.policies.live(platform, server_id):
            versions = await self.store.policies.versions(platform, server_id, lp.policy.name)
            states.append(PolicyState(policy=lp.policy, enabled=lp.enabled, mode=lp.mode, versions=len(versions)))
        return states

    async def show(self, actor: Actor, name: str, version: int | None = None) -> Policy:
        platform, server_id = await self._allowed(actor, "see policies")
        versions = await self._versions(platform, server_id, name)
        return versions[-1] if version is None else _version(versions, name, version)

    async def history(self, actor: Actor, name: str) -> PolicyHistory:
        platform, server_id = await self._allowed(actor, "see policies")
        versions = await self._versions(platform, server_id, name)
        changes = [e for e in await self.store.audit.for_server(platform, server_id) if e.subject == f"policy:{name}"]
        return PolicyHistory(name=name, versions=tuple(versions), changes=tuple(changes))

    async def diff(self, actor: Actor, name: str, old: int, new: int) -> str:
        platform, server_id = await self._allowed(actor, "see policies")
        versions = await self._versions(platform, server_id, name)
        a, b = _version(versions, name, old), _version(versions, name, new)
        return "".join(
            difflib.unified_diff(
                diffable(a).splitlines(keepends=True),
                diffable(b).splitlines(keepends=True),
                fromfile=f"{name} v{old}",
                tofile=f"{name} v{new}",
            )
        )

    async def audit_log(self, actor: Actor) -> list[AuditEntry]:
        """Every policy and settings change of the actor's server (and self-reviews)."""
        platform, server_id = await self._allowed(actor, "see the audit log")
        return await self.store.audit.for_server(platform, server_id)

    # ------------------------------------------------------------ changing

    async def set(
        self, actor: Actor, text: str, *, name: str | None = None, source: str = "<policy>"
    ) -> PolicySetResult:
        """Validate and store a new version. A refused or unchanged text adds nothing."""
        platform, server_id = await self._allowed(actor, "change policies")
        doc = validate_policy(text, name, source)
        warnings = tuple(str(p) for p in doc.warnings)
        content = content_of(doc)
        async with self.store.transaction() as tx:
            live = await _live(tx, platform, server_id, doc.name)
            if live is not None and content.same_as(live.policy):
                return PolicySetResult(
                    policy=live.policy, previous_version=live.policy.version, changed=False, warnings=warnings
                )
            previous = live.policy.version if live else None
            policy = await tx.policies.add_version(platform, server_id, content, actor.id)
            await tx.audit.add(version_audit(policy, actor.id, "policy.set", previous, policy.created_at))
        self._changed(platform, server_id)
        return PolicySetResult(policy=policy, previous_version=previous, changed=True, warnings=warnings)

    async def rollback(self, actor: Actor, name: str, to_version: int) -> Policy:
        """A new version whose text is that of an earlier one: history is never rewritten."""
        platform, server_id = await self._allowed(actor, "roll back policies")
        async with self.store.transaction() as tx:
            versions = await self._versions(platform, server_id, name, tx)
            target, newest = _version(versions, name, to_version), versions[-1]
            if target.version == newest.version or PolicyContent.of(target).same_as(newest):
                raise Refused(f"{name} v{newest.version} is already the text of v{to_version}: nothing to roll back")
            policy = await tx.policies.add_version(platform, server_id, PolicyContent.of(target), actor.id)
            await tx.audit.add(
                version_audit(policy, actor.id, f"policy.rollback_to_v{to_version}", newest.version, policy.created_at)
            )
        self._changed(platform, server_id)
        return policy

    async def enable(self, actor: Actor, name: str) -> PolicyState:
        return await self._switch(actor, name, "enable policies", enabled=True)

    async def disable(self, actor: Actor, name: str) -> PolicyState:
        return await self._switch(actor, name, "disable policies", enabled=False)

    async def set_mode(self, actor: Actor, name: str, mode: Mode | None) -> PolicyState:
        """Enforce or shadow this policy; None makes it follow the server's mode."""
        return await self._switch(actor, name, "change a policy's mode", mode=mode, change_mode=True)

    async def _switch(
        self,
        actor: Actor,
        name: str,
        action: str,
        *,
        enabled: bool | None = None,
        mode: Mode | None = None,
        change_mode: bool = False,
    ) -> PolicyState:
        platform, server_id = await self._allowed(actor, action)
        async with self.store.transaction() as tx:
            live = await _live(tx, platform, server_id, name)
            if live is None:
                raise await _not_found(tx, platform, server_id, name)
            new_enabled = live.enabled if enabled is None else enabled
            new_mode = mode if change_mode else live.mode
            if (new_enabled, new_mode) != (live.enabled, live.mode):
                await tx.policies.set_switches(platform, server_id, name, new_enabled, new_mode)
                await tx.audit.add(
                    AuditEntry(
                        platform=platform,
                        server_id=server_id,
                        actor=actor.id,
                        action="policy.switch",
                        subject=f"policy:{name}",
                        before=_switches(live.enabled, live.mode),
                        after=_switches(new_enabled, new_mode),
                        at=self.clock(),
                    )
                )
        self._changed(platform, server_id)
        states = {s.policy.name: s for s in await self.list_policies(actor)}
        return states[name]

    # ------------------------------------------------------------ templates

    async def install_templates(self, actor: Actor, names: list[str], policy_dir: Path) -> list[Policy]:
        """Start a server with the library policies its admin picked."""
        platform, server_id = await self._allowed(actor, "install policies")
        available = {t.name: Path(t.path) for t in templates(policy_dir)}
        unknown = [n for n in names if n not in available]
        if unknown or not names:
            raise NotFound(
                f"no template named {', '.join(unknown) or '(none given)'} in {policy_dir}; "
                f"available: {', '.join(sorted(available)) or 'none'}"
            )
        docs = load_policies([available[n] for n in dict.fromkeys(names)])
        installed = await install_policies(self.store, platform, server_id, docs, actor.id)
        self._changed(platform, server_id)
        return installed

    # ------------------------------------------------------------ helpers

    async def _versions(
        self, platform: str, server_id: str, name: str, repos: Repositories | None = None
    ) -> list[Policy]:
        repos = repos or self.store
        versions = await repos.policies.versions(platform, server_id, name)
        if not versions:
            raise await _not_found(repos, platform, server_id, name)
        return versions


async def _live(repos: Repositories, platform: str, server_id: str, name: str) -> LivePolicy | None:
    return next((lp for lp in await repos.policies.live(platform, server_id) if lp.policy.name == name), None)


async def _not_found(repos: Repositories, platform: str, server_id: str, name: str) -> NotFound:
    names = [lp.policy.name for lp in await repos.policies.live(platform, server_id)]
    return NotFound(f"server {server_id} has no policy named {name!r}; it has: {', '.join(names) or 'none yet'}")


def _switches(enabled: bool, mode: Mode | None) -> str:
    return json.dumps({"enabled": enabled, "mode": mode.value if mode else None})


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
