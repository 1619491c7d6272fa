"""Who people are in the workspace: names, admin and owner flags, user-group membership; looked up, cached briefly.

Slack has no roles. modbot's "roles" on Slack are user groups (`S…` ids): a moderator is a
workspace admin or owner (users.info), a member of one of the moderator user groups
(usergroups.users.list), or someone named one by one by user id (free workspaces have no
user groups). The answers are cached for a minute: long enough that a burst of clicks or
messages costs one lookup, short enough that someone removed from a group or demoted
loses their rights within a minute. The core checks every action again with the Actor
built here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import ServerSettings
from bot.workflow.actors import Actor

from .config import PLATFORM

log = logging.getLogger(__name__)

RIGHTS_TTL_SECONDS = 60.0
_MAX_CACHED = 10_000
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


class LookupFailed(Exception):
    """Slack would not say who someone is: their rights cannot be checked now."""


@dataclass(frozen=True)
class Person:
    """What users.info says about someone, as far as modbot cares."""

    id: str
    name: str
    is_admin: bool = False  # a workspace admin or owner
    is_bot: bool = False
    deactivated: bool = False

    @classmethod
    def from_slack(cls, user: dict[str, Any]) -> Person:
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("name") or user.get("id")
        deactivated = bool(user.get("deleted"))
        return cls(
            id=str(user.get("id")),
            name=str(name),
            # A deactivated account keeps its flags in users.info; it has no rights.
            is_admin=not deactivated and bool(user.get("is_admin") or user.get("is_owner")),
            is_bot=bool(user.get("is_bot")),
            deactivated=deactivated,
        )


class People:
    """users.info and usergroups.users.list, each answer kept for a minute."""

    def __init__(self, client: AsyncWebClient, ttl: float = RIGHTS_TTL_SECONDS) -> None:
        self._client = client
        self._people: TTLCache[str, Person] = TTLCache(maxsize=_MAX_CACHED, ttl=ttl)
        self._groups: TTLCache[str, frozenset[str]] = TTLCache(maxsize=_MAX_CACHED, ttl=ttl)

    async def person(self, user_id: str) -> Person:
        """Who this is; LookupFailed when Slack will not say."""
        cached = self._people.get(user_id)
        if cached is not None:
            return cached
        try:
            found = Person.from_slack((await self._client.users_info(user=user_id))["user"])
        except SlackApiError as exc:
            raise LookupFailed(f"Slack would not say who {user_id} is ({exc.response.get('error')})") from exc
        self._people[user_id] = found
        return found

    async def name(self, user_id: str) -> str:
        """A display name, or the id itself when Slack will not say: a name only decorates."""
        try:
            return (await self.person(user_id)).name
        except LookupFailed:
            return user_id

    async def members(self, group_id: str) -> frozenset[str]:
        """The members of a user group; LookupFailed when Slack will not say (no such group, a free plan)."""
        cached = self._groups.get(group_id)
        if cached is not None:
            return cached
        try:
            found = frozenset(str(u) for u in (await self._client.usergroups_users_list(usergroup=group_id))["users"])
        except SlackApiError as exc:
            raise LookupFailed(f"Slack would not list user group {group_id} ({exc.response.get('error')})") from exc
        self._groups[group_id] = found
        return found

    async def groups_of(self, user_id: str, group_ids: tuple[str, ...]) -> tuple[str, ...]:
        """Which of these user groups the user is in. A group Slack will not list counts as not theirs."""
        mine: list[str] = []
        for group_id in group_ids:
            if not GROUP_ID.match(group_id):
                continue
            try:
                if user_id in await self.members(group_id):
                    mine.append(group_id)
            except LookupFailed as exc:
                log.warning("slack: %s", exc)
        return tuple(mine)

    async def moderators(self, settings: ServerSettings) -> list[str]:
        """Everyone named a moderator: members of the moderator user groups, then users named one by one."""
        found: dict[str, None] = {}
        for group_id in settings.moderator_role_ids:
            if not GROUP_ID.match(group_id):
                continue
            try:
                found.update(dict.fromkeys(sorted(await self.members(group_id))))
            except LookupFailed as exc:
                log.warning("slack: %s", exc)
        found.update(dict.fromkeys(u for u in settings.moderator_user_ids if USER_ID.match(u)))
        return list(found)

    async def actor(self, user_id: str, settings: ServerSettings, *, in_workspace: bool = True) -> Actor:
        """The Actor the core checks: the workspace (or none, from a DM), user groups as roles, admin or owner.

        Raises LookupFailed when Slack will not say whether the user is an admin: nobody is
        let through on a guess.
        """
        person = await self.person(user_id)
        roles = () if person.deactivated else await self.groups_of(user_id, settings.moderator_role_ids)
        return Actor(
            id=user_id,
            platform=PLATFORM,
            server_id=settings.server_id if in_workspace else None,
            roles=roles,
            is_admin=person.is_admin,
        )
