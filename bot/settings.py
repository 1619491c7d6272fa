"""Process settings from the environment (MODBOT_*, and OLLAMA_HOST as Ollama spells it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain import Effort

DEFAULT_MODEL = "gpt-oss-safeguard:20b"

LogFormat = Literal["console", "json"]


def _default_policy_dir() -> Path:
    # Running from a checkout or the container: ./policies. Installed elsewhere: the
    # policies/ folder beside the package.
    here = Path.cwd() / "policies"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "policies"


class ModbotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODBOT_", extra="ignore")

    ollama_host: str = Field(
        default="http://127.0.0.1:11434",
        validation_alias=AliasChoices("OLLAMA_HOST", "MODBOT_OLLAMA_HOST"),
    )
    model: str = DEFAULT_MODEL
    db: Path = Path("modbot.db")
    model_concurrency: int = Field(default=2, ge=1, le=64)
    # Seconds for one model call; a reasoning model at high effort on a CPU is slow.
    model_timeout: float = Field(default=300.0, gt=0)
    keep_alive: str = "30m"
    num_ctx: int = Field(default=8192, ge=2048)
    default_effort: Effort = Effort.LOW
    policy_dir: Path = Field(default_factory=_default_policy_dir)
    workers: int | None = Field(default=None, ge=1, le=256)
    log_level: str = "INFO"
    # "console": readable lines for a terminal or `docker compose logs`; "json": one object
    # per line for a log shipper. Both carry the same fields (bot.observability.logs).
    log_format: LogFormat = "console"
    # The health and metrics endpoint (/healthz, /livez, /metrics): off unless a port is
    # set. It binds to loopback by default; a container sets 0.0.0.0 so that Prometheus
    # and the healthcheck reach it (docker-compose.yml, Dockerfile).
    http_port: int | None = Field(default=None, ge=0, le=65535)
    http_host: str = "127.0.0.1"

    # The model backends (bot/classifier). `ollama` speaks Ollama's /api/chat at OLLAMA_HOST;
    # `openai` speaks /v1/chat/completions to any OpenAI-compatible server at OPENAI_BASE_URL
    # (vLLM, SGLang, llama.cpp's server, Ollama's /v1), with OPENAI_API_KEY where it needs one:
    # the openai package's own variables.
    backend: Literal["ollama", "openai"] = "ollama"
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "MODBOT_OPENAI_BASE_URL")
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "MODBOT_OPENAI_API_KEY")
    )
    # How the OpenAI-compatible server takes the verdict schema: json_schema (vLLM, SGLang,
    # Ollama's /v1) or json_object (llama-cpp-python's server).
    openai_schema: Literal["json_schema", "json_object"] = "json_schema"
    # Several endpoints, one a line or separated by ";" (format: bot/classifier/endpoints.py).
    # When set it replaces MODBOT_BACKEND, OLLAMA_HOST, OPENAI_BASE_URL and MODBOT_MODEL.
    model_endpoints: str | None = None
    # A call with no answer after MODBOT_MODEL_TIMEOUT is asked again this many times (on
    # another endpoint when there is one); then its verdict needs human review.
    model_timeout_retries: int = Field(default=1, ge=0, le=5)
    # A ceiling on the tokens one answer may generate (reasoning included). Unset: none, as
    # gpt-oss wants (a small cap lets the reasoning eat the answer). Set it high (thousands)
    # against runaway generation on a server that keeps generating after the bot gives up
    # (llama-cpp-python's does), or for a small stand-in model.
    model_max_tokens: int | None = Field(default=None, ge=16, le=131072)
    # The sampling temperature sent with every call. Unset: the server's own default (for
    # gpt-oss the model's recommended 1.0). 0 makes verdicts repeatable (the same prompt, the
    # same answer), which audits and tests may want.
    model_temperature: float | None = Field(default=None, ge=0.0, le=2.0)

    @field_validator("http_port", mode="before")
    @classmethod
    def _blank_port_is_off(cls, value: object) -> object:
        # `MODBOT_HTTP_PORT=` in an env file means "off", as leaving it out does.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "model_max_tokens", "model_temperature", "model_endpoints", "openai_base_url", "openai_api_key", mode="before"
    )
    @classmethod
    def _blank_model_setting_is_unset(cls, value: object) -> object:
        # `MODBOT_MODEL_ENDPOINTS=` (or a blank key, URL or ceiling) in an env file means unset.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_ignores_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def worker_count(self) -> int:
        # Enough messages in flight that every model slot stays busy while a backlog waits,
        # and that skipped and repeated messages (no model call) share group commits.
        return self.workers or max(32, 4 * self.model_concurrency)

    def normalised_host(self) -> str:
        host = self.ollama_host.strip()
        if "://" not in host:
            host = "http://" + host
        return host.rstrip("/")
