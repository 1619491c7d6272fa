"""Who is acting, where, and whether they may: checked in the core, whatever the adapter did before."""

from __future__ import annotations

from bot.domain import Case, Frozen, ServerSettings, ValidText
from bot.store.ports import Repositories
from bot.workflow.errors import NotAuthorised, NotFound


class Actor(Frozen):
    """The person behind an operation, as the adapter saw them, and the server where they act.

    `is_admin` is the platform's own word for this server (Discord's Administrator
    permission in the guild, a Slack workspace admin, or the operator at the console who
    passes --admin). `server_id` is None on a surface that belongs to no server (a button
    in a DM): there the server is the case's, and only the author of the message may act
    (appeal); moderators act from their server.
    """

    # Ids as the platform delivered them, made valid text (they are stored with decisions).
    id: ValidText
    platform: ValidText
    server_id: ValidText | None
    roles: tuple[ValidText, ...] = ()
    is_admin: bool = False

    def where(self) -> tuple[str, str]:
        """(platform, server id) where the actor acts; refused for an actor outside any server."""
        if self.server_id is None:
            raise NotAuthorised(
                f"{self.id} acts outside any server (a direct message): this needs the server's own "
                "channel or command, where your roles there can be checked"
            )
        return (self.platform, self.server_id)


def is_moderator(actor: Actor, settings: ServerSettings) -> bool:
    named = actor.id in settings.moderator_user_ids
    return is_admin(actor, settings) or named or bool(set(actor.roles) & set(settings.moderator_role_ids))


def is_admin(actor: Actor, settings: ServerSettings) -> bool:
    if (actor.platform, actor.server_id) != (settings.platform, settings.server_id):
        return False  # an admin of another server has no rights here
    return actor.is_admin or actor.id in settings.admin_user_ids


def require_moderator(actor: Actor, settings: ServerSettings, action: str) -> None:
    if is_moderator(actor, settings):
        return
    roles = ", ".join(settings.moderator_role_ids) or "none configured yet"
    raise NotAuthorised(
        f"{actor.id} may not {action} on server {settings.server_id}: that needs one of the "
        f"moderator roles ({roles}) or admin rights. Ask an admin to add your role to the server's "
        "moderator roles (the setting moderator_role_ids), or you to its moderators (moderator_user_ids)."
    )


def require_admin(actor: Actor, settings: ServerSettings, action: str) -> None:
    if is_admin(actor, settings):
        return
    raise NotAuthorised(
        f"{actor.id} may not {action} on server {settings.server_id}: only admins may. "
        "Ask a server admin to make this change."
    )


def require_same_server(actor: Actor, case: Case, *, allow_no_server: bool = False) -> None:
    """Refuse a case of another server, whatever the actor's rights there.

    Said as "not found": a server's moderators learn nothing of another server's cases.
    """
    msg = case.message
    if actor.server_id is None:
        if not allow_no_server:
            actor.where()  # raises: moderators act from their server, where their roles are known
        if actor.platform != msg.platform:
            raise NotFound(f"no case {case.id!r} on {actor.platform}: check the id in the bot's message to you")
        return
    if (actor.platform, actor.server_id) != (msg.platform, msg.server_id):
        raise NotFound(f"server {actor.server_id} has no case {case.id!r}: check the id against its open cases")


async def settings_or_default(repos: Repositories, platform: str, server_id: str) -> ServerSettings:
    """The server's settings, or the defaults for a server nobody has configured yet."""
    found = await repos.settings.get(platform, server_id)
    return found or ServerSettings(platform=platform, server_id=server_id)


async def settings_for(repos: Repositories, actor: Actor) -> ServerSettings:
    """The settings of the server where the actor acts."""
    platform, server_id = actor.where()
    return await settings_or_default(repos, platform, server_id)
