"""Changing a server's settings: validated as a whole, checked against its platform, authorised, audited."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.domain import ServerSettings, setting_range, utcnow
from bot.platforms import PlatformCatalog
from bot.sanitise import safe_inline
from bot.store.ports import AuditEntry, ModerationStore
from bot.workflow.actors import Actor, require_admin, require_moderator, settings_for
from bot.workflow.errors import Refused
from bot.workflow.ports import Clock, ConfigChanged

# Who may act is for admins to decide: a moderator must not be able to make more moderators.
ADMIN_ONLY = frozenset({"moderator_role_ids", "moderator_user_ids", "admin_user_ids"})
FIXED = frozenset({"platform", "server_id"})
_OUT_OF_RANGE = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than"})


def settings_problem(error: ErrorDetails) -> str:
    """One validation error as the admin who typed the value can act on it: the range, or how to quote."""
    loc = tuple(error["loc"])
    where = _where(loc)
    got = _shown(error.get("input"))
    bounds = setting_range(loc)
    if bounds is not None and bounds.low is not None and bounds.high is not None:
        unit = f" ({bounds.unit})" if bounds.unit else ""
        wrong = "is out of range" if error["type"] in _OUT_OF_RANGE else "is not a whole number"
        return f"{where}={got} {wrong}: give a whole number from {bounds.low} to {bounds.high}{unit}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("tuple_type", "list_type"):
        return f'{where}: give a JSON list, e.g. {where}=\'["first", "second"]\' (got {got})'
    return f"{where}: {message} (got {got})"


def _where(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else f"{'.' if where else ''}{part}"
    return where or "settings"


def _shown(value: object) -> str:
    # The value is echoed back wherever the refusal is shown (a chat reply): one line, no pings.
    return safe_inline(repr(value), 80)


class ServerSettingsService:
    def __init__(
        self,
        store: ModerationStore,
        catalog: PlatformCatalog | None = None,
        on_change: ConfigChanged | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.catalog = catalog or PlatformCatalog()
        self.on_change = on_change
        self.clock = clock

    async def show(self, actor: Actor) -> ServerSettings:
        """The settings of the actor's server (the defaults for a server nobody configured yet)."""
        settings = await settings_for(self.store, actor)
        require_moderator(actor, settings, "see settings")
        return settings

    async def update(self, actor: Actor, changes: Mapping[str, object]) -> ServerSettings:
        """Apply the changes to the current settings; refuse them all if any one is invalid.

        An effect the server's platform cannot carry out (a timeout on Slack) is refused here,
        naming the platform and what to do instead, before any message is judged by it.
        """
        current = await settings_for(self.store, actor)
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
            problems = "; ".join(dict.fromkeys(settings_problem(e) for e in exc.errors()))
            raise Refused(f"settings not changed: {problems}") from exc
        if self.catalog.names and self.catalog.get(updated.platform) is None:
            raise Refused(f"no platform named {updated.platform!r}; platforms are {', '.join(self.catalog.names)}")
        unsupported = self.catalog.unsupported(updated)
        if unsupported:
            raise Refused("settings not changed: " + "; ".join(unsupported))
        async with self.store.transaction() as tx:
            before = await tx.settings.get(updated.platform, updated.server_id)
            if updated == current and before is not None:
                return current
            now = self.clock()
            await tx.settings.put(updated, now)
            await tx.audit.add(
                AuditEntry(
                    platform=updated.platform,
                    server_id=updated.server_id,
                    actor=actor.id,
                    action="settings.set",
                    subject="settings",
                    before=before.model_dump_json() if before else None,
                    after=updated.model_dump_json(),
                    at=now,
                )
            )
        if self.on_change is not None:
            self.on_change(updated.platform, updated.server_id)
        return updated
