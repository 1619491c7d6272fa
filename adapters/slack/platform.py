"""Slack as a platform, as the launcher sees it: what it can do, whether it is configured, and how it runs.

Light on purpose: the launcher imports it in every command to learn Slack's capabilities
(so that `settings set` can refuse what Slack cannot do); slack_bolt is imported only
when `connect` is called by `modbot run`.

What Slack can do depends on the environment: never timeouts (Slack has none), and
delete only with a workspace admin's user token (SLACK_ADMIN_USER_TOKEN), since a bot
token deletes only the bot's own messages. So without that token a delete rule is
refused in settings, as a timeout always is, with the reason and what to do instead. The
declaration reads only which variables are set, never their values or files: a mistake
in them is reported by `modbot run`, not by every admin command.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.platforms import PlatformCapabilities

from .config import PLATFORM, capabilities_with

if TYPE_CHECKING:
    from bot.app import ModbotApp
    from bot.settings import ModbotSettings

    from .app import SlackAdapter
    from .sink import SlackEffectSink

# Start-up words belong with the launcher's own ("modbot running: ..."), not with any one message's.
log = logging.getLogger("modbot.run")

NAME = PLATFORM


def _is_set(environ: Mapping[str, str], name: str) -> bool:
    return bool(environ.get(name, "").strip() or environ.get(name + "_FILE", "").strip())


def capabilities(environ: Mapping[str, str]) -> PlatformCapabilities:
    declared = capabilities_with(admin_user_token=_is_set(environ, "SLACK_ADMIN_USER_TOKEN"))
    return PlatformCapabilities(
        platform=NAME, effects=declared.supported, configured=declared.supported, limits=declared.unsupported
    )


def credentials_set(environ: Mapping[str, str]) -> bool:
    """A bot token and a way to connect: an app token (Socket Mode) or a signing secret (HTTP mode).

    A bot token alone cannot receive anything; that is said in the log rather than
    failing every start of a bot that runs other platforms.
    """
    if not _is_set(environ, "SLACK_BOT_TOKEN"):
        return False
    if _is_set(environ, "SLACK_APP_TOKEN") or _is_set(environ, "SLACK_SIGNING_SECRET"):
        return True
    log.warning(
        "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode) "
        "is: Slack is not started"
    )
    return False


@dataclass
class SlackPlatform:
    """Slack while `modbot run` runs it: its adapter for the core, and `serve` until the bot stops."""

    slack: SlackAdapter
    policy_dir: Path | None = None

    @property
    def adapter(self) -> SlackEffectSink:
        return self.slack.sink

    @property
    def connected(self) -> bool:
        return self.slack.connected

    async def health(self) -> str | None:
        return await self.slack.health()

    async def serve(self, app: ModbotApp) -> None:
        await self.slack.start(app.pipeline, app, policy_dir=self.policy_dir)
        try:
            await asyncio.Event().wait()  # until the launcher cancels: Bolt serves in the background
        finally:
            await self.slack.stop()


async def connect(settings: ModbotSettings, environ: Mapping[str, str]) -> SlackPlatform:
    """The Slack adapter with its settings read and its token checked with Slack (a wrong one stops the start)."""
    from .app import SlackAdapter
    from .config import load_settings

    overrides = {name: value for name, value in environ.items() if name.startswith(("SLACK_", "MODBOT_SLACK_"))}
    slack = SlackAdapter(load_settings(**overrides))
    await slack.verify()
    return SlackPlatform(slack, policy_dir=settings.policy_dir)
