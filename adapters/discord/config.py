"""The Discord adapter's process settings: the bot token, endpoints for a local Discord, sharding.

Light on purpose: the launcher reads these without importing discord.py (it is imported
inside `apply_endpoints`, the one function that touches the library's globals).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ShardSetting = Literal["auto"] | int | None


class DiscordConfigError(ValueError):
    """A setting that cannot work, said so that an admin knows what to change."""


class DiscordSettings(BaseSettings):
    """DISCORD_TOKEN or DISCORD_TOKEN_FILE, and MODBOT_DISCORD_* for everything else."""

    model_config = SettingsConfigDict(env_prefix="MODBOT_DISCORD_", extra="ignore")

    token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("DISCORD_TOKEN"))
    # A file holding the token (a Docker or systemd secret): the token stays out of the environment.
    token_file: Path | None = Field(default=None, validation_alias=AliasChoices("DISCORD_TOKEN_FILE"))
    # REST base, e.g. http://127.0.0.1:P/api/v10, and gateway, e.g. ws://127.0.0.1:P/gateway: a
    # local Discord for tests. Unset: discord.com and the gateway Discord names.
    api_base: str | None = None
    gateway_url: str | None = None
    # Unset: one connection (a plain client). "auto": as many shards as Discord recommends;
    # a number: that many. Discord requires sharding from 2,500 guilds.
    shards: ShardSetting = None

    @field_validator("shards", mode="before")
    @classmethod
    def _parse_shards(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("", "off", "none"):
                return None
            if text == "auto":
                return "auto"
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f'MODBOT_DISCORD_SHARDS must be "auto" or a whole number of shards, not {value!r}')
            return int(text)
        return value

    @field_validator("shards")
    @classmethod
    def _positive_shards(cls, value: ShardSetting) -> ShardSetting:
        if isinstance(value, int) and value < 1:
            raise ValueError("MODBOT_DISCORD_SHARDS must be at least 1")
        return value

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"MODBOT_DISCORD_API_BASE must be an http(s) URL such as http://127.0.0.1:8080/api/v10, not {value!r}"
            )
        return value

    @field_validator("gateway_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("ws://", "wss://")):
            raise ValueError(
                f"MODBOT_DISCORD_GATEWAY_URL must be a ws(s) URL such as ws://127.0.0.1:8080/gateway, not {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> DiscordSettings:
        if self.token is not None and self.token_file is not None:
            raise ValueError("set DISCORD_TOKEN or DISCORD_TOKEN_FILE, not both")
        return self

    @property
    def configured(self) -> bool:
        """Whether this process should run the Discord adapter at all."""
        return self.token is not None or self.token_file is not None

    @property
    def sharded(self) -> bool:
        return self.shards is not None

    @property
    def shard_count(self) -> int | None:
        """The fixed shard count, or None when Discord should recommend one (or when not sharded)."""
        return self.shards if isinstance(self.shards, int) else None

    def bot_token(self) -> str:
        """The token, read from DISCORD_TOKEN or the file named by DISCORD_TOKEN_FILE."""
        if self.token is not None:
            token = self.token.get_secret_value().strip()
            source = "DISCORD_TOKEN"
        elif self.token_file is not None:
            try:
                token = self.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise DiscordConfigError(
                    f"DISCORD_TOKEN_FILE={self.token_file}: cannot read it ({exc.strerror}); "
                    "point it at a readable file holding the bot token"
                ) from None
            source = f"DISCORD_TOKEN_FILE={self.token_file}"
        else:
            raise DiscordConfigError(
                "no Discord token: set DISCORD_TOKEN, or DISCORD_TOKEN_FILE to a file holding it "
                "(Developer Portal > your application > Bot > Reset Token)"
            )
        if not token:
            raise DiscordConfigError(f"{source} is empty; it must hold the bot token")
        if token.lower().startswith("bot "):
            # discord.py adds the "Bot " scheme itself; a pasted header value would fail to log in.
            token = token[4:].strip()
        return token


def apply_endpoints(settings: DiscordSettings) -> None:
    """Point discord.py at the configured REST base and gateway: the one place that sets them.

    discord.py keeps both as class attributes (every Route, including the interaction
    webhooks, is built from `Route.BASE`; a plain client connects straight to
    `DEFAULT_GATEWAY`, an auto-sharded one asks `GET /gateway/bot`, which the REST base
    answers). Unset settings leave the library's own defaults alone.
    """
    import discord.gateway
    import discord.http
    import yarl

    if settings.api_base is not None:
        discord.http.Route.BASE = settings.api_base
    if settings.gateway_url is not None:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)
