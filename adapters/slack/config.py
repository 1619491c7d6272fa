"""The Slack adapter's settings from the environment, its connection mode, and what Slack can do.

Imports no Slack library, so the launcher and `settings set` can ask what Slack supports
without loading slack_bolt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain import EffectKind

PLATFORM = "slack"
DEFAULT_API_URL = "https://slack.com/api/"


class SlackConfigError(ValueError):
    """The Slack settings cannot work; the message names the variable and what to do."""


class ConnectionMode(StrEnum):
    # Socket Mode needs no public URL: Slack is reached over an outgoing websocket.
    SOCKET = "socket"
    # HTTP mode: Slack POSTs signed requests to MODBOT_SLACK_PORT.
    HTTP = "http"


# Which prefix each credential has, and where an admin finds it in the app's settings.
_SECRETS: dict[str, tuple[str, str]] = {
    "SLACK_BOT_TOKEN": ("xoxb-", "OAuth & Permissions → Bot User OAuth Token"),
    "SLACK_APP_TOKEN": ("xapp-", "Basic Information → App-Level Tokens (scope connections:write)"),
    "SLACK_SIGNING_SECRET": ("", "Basic Information → App Credentials → Signing Secret"),
    "SLACK_ADMIN_USER_TOKEN": (
        "xoxp-",
        "OAuth & Permissions → User OAuth Token, after a workspace admin or owner installs the app",
    ),
}


class SlackSettings(BaseSettings):
    """SLACK_* credentials (each also from the file named by *_FILE) and MODBOT_SLACK_* options."""

    model_config = SettingsConfigDict(extra="ignore")

    bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    bot_token_file: Path | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN_FILE")
    app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    app_token_file: Path | None = Field(default=None, validation_alias="SLACK_APP_TOKEN_FILE")
    signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    signing_secret_file: Path | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET_FILE")
    admin_user_token: SecretStr | None = Field(default=None, validation_alias="SLACK_ADMIN_USER_TOKEN")
    admin_user_token_file: Path | None = Field(default=None, validation_alias="SLACK_ADMIN_USER_TOKEN_FILE")
    port: int = Field(default=3000, ge=0, le=65535, validation_alias="MODBOT_SLACK_PORT")
    # All interfaces by default: in a container the port is published from outside.
    host: str = Field(default="0.0.0.0", validation_alias="MODBOT_SLACK_HOST")
    api_url: str = Field(default=DEFAULT_API_URL, validation_alias="MODBOT_SLACK_API_URL")

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        resolved = dict(values)
        for name in _SECRETS:
            file_key = name + "_FILE"
            path = resolved.get(file_key)
            if not path:
                continue
            if resolved.get(name):
                raise ValueError(f"both {name} and {file_key} are set: keep one of them")
            try:
                resolved[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{file_key}={path}: cannot read the file ({exc.strerror})") from exc
        return resolved

    @model_validator(mode="after")
    def _check_prefixes(self) -> SlackSettings:
        for name, value in (
            ("SLACK_BOT_TOKEN", self.bot_token),
            ("SLACK_APP_TOKEN", self.app_token),
            ("SLACK_ADMIN_USER_TOKEN", self.admin_user_token),
        ):
            prefix, where = _SECRETS[name]
            if value is not None and value.get_secret_value() and not value.get_secret_value().startswith(prefix):
                raise ValueError(f"{name} must start with {prefix} (Slack app settings: {where})")
        if not self.api_url.endswith("/"):
            # slack_sdk appends the method name to the base URL as it is.
            self.api_url += "/"
        return self

    @property
    def configured(self) -> bool:
        """Whether this process should run the Slack adapter at all: a bot token is set."""
        return _present(self.bot_token)

    @property
    def mode(self) -> ConnectionMode:
        """Socket Mode when an app token is set; HTTP mode when only the signing secret is."""
        if _present(self.app_token):
            return ConnectionMode.SOCKET
        if _present(self.signing_secret):
            return ConnectionMode.HTTP
        raise SlackConfigError(
            "Slack needs SLACK_APP_TOKEN (Socket Mode, no public URL needed) or SLACK_SIGNING_SECRET "
            f"(HTTP mode on MODBOT_SLACK_PORT): set one. App token: {_SECRETS['SLACK_APP_TOKEN'][1]}; "
            f"signing secret: {_SECRETS['SLACK_SIGNING_SECRET'][1]}."
        )

    def secret(self, name: str) -> str | None:
        value = {
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_APP_TOKEN": self.app_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_ADMIN_USER_TOKEN": self.admin_user_token,
        }[name]
        return value.get_secret_value() if value is not None and value.get_secret_value() else None

    def check(self) -> None:
        """Raise SlackConfigError unless the adapter can start with these settings."""
        if not self.configured:
            raise SlackConfigError(f"SLACK_BOT_TOKEN is not set ({_SECRETS['SLACK_BOT_TOKEN'][1]})")
        _ = self.mode


def _present(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value())


def load_settings(**overrides: Any) -> SlackSettings:
    """The settings from the environment (and overrides by variable name), or SlackConfigError."""
    try:
        return SlackSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(str(e.get("ctx", {}).get("error", e["msg"])) for e in exc.errors())
        raise SlackConfigError(f"Slack settings: {problems}") from exc


# ---------------------------------------------------------------- capabilities


@dataclass(frozen=True)
class SlackCapabilities:
    """The effect kinds Slack carries out with this configuration, and why not the others."""

    platform: str
    supported: frozenset[EffectKind]
    # For each unsupported kind: why, and what to do instead (shown by `settings set` and `status`).
    unsupported: dict[EffectKind, str] = field(default_factory=dict)

    def refusal(self, kind: EffectKind) -> str | None:
        return self.unsupported.get(kind)


NO_TIMEOUTS = (
    "Slack has no timeouts. Use flag, dm_moderators and notify_author instead (and delete, with "
    "SLACK_ADMIN_USER_TOKEN set); a workspace admin can deactivate an account in the admin console."
)
NO_TIMEOUT_TO_LIFT = "Slack has no timeouts, so there is none to lift."
DELETE_NEEDS_ADMIN_TOKEN = (
    "A Slack bot token can delete only the bot's own messages. Set SLACK_ADMIN_USER_TOKEN to the user "
    "token of a workspace admin or owner who installed the app (user scope chat:write) to delete, "
    "or flag instead and let moderators delete by hand."
)


def capabilities(settings: SlackSettings | None = None) -> SlackCapabilities:
    """What Slack supports given the environment: never timeouts; delete only with an admin user token."""
    settings = settings if settings is not None else load_settings()
    return capabilities_with(admin_user_token=settings.secret("SLACK_ADMIN_USER_TOKEN") is not None)


def capabilities_with(*, admin_user_token: bool) -> SlackCapabilities:
    unsupported = {EffectKind.TIMEOUT: NO_TIMEOUTS, EffectKind.LIFT_TIMEOUT: NO_TIMEOUT_TO_LIFT}
    if not admin_user_token:
        unsupported[EffectKind.DELETE] = DELETE_NEEDS_ADMIN_TOKEN
    return SlackCapabilities(
        platform=PLATFORM,
        supported=frozenset(k for k in EffectKind if k not in unsupported),
        unsupported=unsupported,
    )
