"""Discord as a platform, as the launcher sees it: what it can do, whether it runs, and how.

Light on purpose: the launcher imports it in every command to learn Discord's capabilities;
discord.py is imported only when `connect` is called (by `modbot run` with a token set).

`modbot run` connects first and builds the app after (adapters/launcher.py), so `connect`
logs in and waits for the gateway's guilds, and `serve(app)` binds the app (intake, buttons,
commands), registers the slash commands, and runs until the connection ends or the run is
stopped. A message that arrives between the two waits for the app; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.discord.capabilities import PLATFORM, configured, supported_effects
from bot.platforms import PlatformCapabilities

if TYPE_CHECKING:
    from adapters.discord.client import DiscordAdapter
    from bot.app import ModbotApp
    from bot.settings import ModbotSettings

log = logging.getLogger(__name__)

NAME = PLATFORM


def capabilities(environ: Mapping[str, str]) -> PlatformCapabilities:
    """Discord carries out every effect, whatever the configuration (given the invite's permissions)."""
    effects = supported_effects(environ)
    return PlatformCapabilities(platform=NAME, effects=effects, configured=effects)


def credentials_set(environ: Mapping[str, str]) -> bool:
    """DISCORD_TOKEN or DISCORD_TOKEN_FILE: `modbot run` starts Discord."""
    return configured(environ)


@dataclass
class DiscordPlatform:
    """The running Discord adapter, for the launcher: `.adapter` for the core, `serve(app)` for intake."""

    discord_adapter: DiscordAdapter
    # Set once `serve` has bound the app and registered the commands: the bot answers everything.
    serving: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def adapter(self) -> DiscordAdapter:
        return self.discord_adapter

    @property
    def connected(self) -> bool:
        return self.discord_adapter.connected

    async def health(self) -> str | None:
        return await self.discord_adapter.health()

    async def serve(self, app: ModbotApp) -> None:
        """Deliver members' messages to the app until the connection ends; raises what ended it, if it failed.

        Cancelled when the run stops; the connection itself is closed by the app, after its
        workers (the adapter's `aclose`), so effects under way still reach Discord.
        """
        adapter = self.discord_adapter
        adapter.bind(app)
        await adapter.sync_commands()
        self.serving.set()
        await adapter.wait_closed()


async def connect(settings: ModbotSettings, environ: Mapping[str, str]) -> DiscordPlatform:
    """Read DISCORD_TOKEN(_FILE) and MODBOT_DISCORD_*, log in, and wait for the guilds (a bad token raises here)."""
    from adapters.discord.client import DiscordAdapter
    from adapters.discord.commands import CommandServices
    from adapters.discord.config import DiscordSettings

    discord_settings = DiscordSettings.model_validate(_from(environ))
    adapter = DiscordAdapter(discord_settings, commands=CommandServices(settings.policy_dir))
    await adapter.start()
    return DiscordPlatform(adapter)


def _from(environ: Mapping[str, str]) -> dict[str, str]:
    """The Discord settings `environ` names, keyed as DiscordSettings takes them; they win over the
    process environment (the same mapping in `modbot run`; a test's own in-process runs)."""
    keys = {
        "DISCORD_TOKEN": "DISCORD_TOKEN",  # the token fields are read under their aliases
        "DISCORD_TOKEN_FILE": "DISCORD_TOKEN_FILE",
        "MODBOT_DISCORD_API_BASE": "api_base",
        "MODBOT_DISCORD_GATEWAY_URL": "gateway_url",
        "MODBOT_DISCORD_SHARDS": "shards",
    }
    return {key: environ[name] for name, key in keys.items() if name in environ}


__all__ = ["DiscordPlatform", "capabilities", "connect", "credentials_set"]
