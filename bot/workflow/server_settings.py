"""Changing a server's settings: validated as a whole, authorised, and written to the audit log."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from bot.domain import ServerSettings
from bot.store import SqliteStore
from bot.workflow.actors import Actor, require_admin, require_moderator, settings_or_default
from bot.workflow.errors import Refused

# Who may act is for admins to decide: a moderator must not be able to make more moderators.
ADMIN_ONLY = frozenset({"moderator_role_ids", "admin_user_ids"})
FIXED = frozenset({"platform", "server_id"})


async def show_settings(store: SqliteStore, platform: str, server_id: str) -> ServerSettings:
    return await settings_or_default(store, platform, server_id)


async def update_settings(
    store: SqliteStore, platform: str, server_id: str, actor: Actor, changes: Mapping[str, object]
) -> ServerSettings:
    """Apply the changes to the current settings; refuse them all if any one is invalid."""
    current = await settings_or_default(store, platform, server_id)
    require_moderator(actor, current, "change settings")
    if not changes:
        raise Refused("no setting given: pass KEY=VALUE pairs, e.g. retention_days=14")
    known = set(ServerSettings.model_fields) - FIXED
    unknown = sorted(set(changes) - known)
    if unknown:
        raise Refused(f"unknown setting {', '.join(unknown)}; settings are: {', '.join(sorted(known))}")
    if ADMIN_ONLY & set(changes):
        require_admin(actor, current, f"change {', '.join(sorted(ADMIN_ONLY & set(changes)))}")
    try:
        updated = ServerSettings.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
        raise Refused(f"settings not changed: {problems}") from exc
    if updated == current and await store.get_settings(server_id) is not None:
        return current
    await store.put_settings(updated, actor.id)
    return updated
