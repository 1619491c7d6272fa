"""Who is acting, and whether they may: moderator roles or admin rights, checked in the core."""

from __future__ import annotations

from bot.domain import Frozen, ServerSettings
from bot.store import SqliteStore
from bot.workflow.errors import NotAuthorised


class Actor(Frozen):
    """The person behind an operation, as the adapter saw them.

    `is_admin` is the platform's own word (Discord's Administrator permission, a Slack
    workspace admin, or the operator at the console who passes --admin).
    """

    id: str
    roles: tuple[str, ...] = ()
    is_admin: bool = False


def is_moderator(actor: Actor, settings: ServerSettings) -> bool:
    return is_admin(actor, settings) or bool(set(actor.roles) & set(settings.moderator_role_ids))


def is_admin(actor: Actor, settings: ServerSettings) -> bool:
    return actor.is_admin or actor.id in settings.admin_user_ids


def require_moderator(actor: Actor, settings: ServerSettings, action: str) -> None:
    if is_moderator(actor, settings):
        return
    roles = ", ".join(settings.moderator_role_ids) or "none configured yet"
    raise NotAuthorised(
        f"{actor.id} may not {action} on server {settings.server_id}: that needs one of the "
        f"moderator roles ({roles}) or admin rights. Ask an admin to add your role to the server's "
        "moderator roles (the setting moderator_role_ids)."
    )


def require_admin(actor: Actor, settings: ServerSettings, action: str) -> None:
    if is_admin(actor, settings):
        return
    raise NotAuthorised(
        f"{actor.id} may not {action} on server {settings.server_id}: only admins may. "
        "Ask a server admin to make this change."
    )


async def settings_or_default(store: SqliteStore, platform: str, server_id: str) -> ServerSettings:
    """The server's settings, or the defaults for a server nobody has configured yet."""
    found = await store.get_settings(server_id)
    return found or ServerSettings(platform=platform, server_id=server_id)
