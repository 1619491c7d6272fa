"""What the Discord adapter can do and whether this process runs it, without importing discord.py."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain import EffectKind

PLATFORM = "discord"

# Discord can carry out every effect the core decides: delete (Manage Messages), time out
# and lift (Moderate Members), flag and update (the mod channel), DM moderators and authors.
SUPPORTED_EFFECTS: frozenset[EffectKind] = frozenset(EffectKind)


def supported_effects(environ: Mapping[str, str] | None = None) -> frozenset[EffectKind]:
    """The effect kinds the adapter supports; on Discord they do not depend on the configuration."""
    return SUPPORTED_EFFECTS


def configured(environ: Mapping[str, str]) -> bool:
    """Run the Discord adapter when a token is given (DISCORD_TOKEN or DISCORD_TOKEN_FILE)."""
    return bool(environ.get("DISCORD_TOKEN", "").strip() or environ.get("DISCORD_TOKEN_FILE", "").strip())


# What modbot's role needs, and nothing more: View Channels, Send Messages, Send Messages in
# Threads, Embed Links, Read Message History (to post and update flags), Manage Messages (to
# delete), Moderate Members (to time out and lift time-outs).
REQUIRED_PERMISSIONS = 1374389627904
INVITE_URL_TEMPLATE = (
    "https://discord.com/oauth2/authorize?client_id={application_id}"
    f"&scope=bot+applications.commands&permissions={REQUIRED_PERMISSIONS}"
)


def invite_url(application_id: str) -> str:
    return INVITE_URL_TEMPLATE.format(application_id=application_id)
