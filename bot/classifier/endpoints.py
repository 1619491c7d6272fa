"""MODBOT_MODEL_ENDPOINTS: several model servers, one line each.

    MODBOT_MODEL_ENDPOINTS="BACKEND URL MODEL [key=value ...]; BACKEND URL MODEL [key=value ...]"

Endpoints are separated by ";" or by newlines; the fields of one endpoint by spaces.

- BACKEND: `ollama` (Ollama's /api/chat) or `openai` (any OpenAI-compatible server).
- URL: the server. For `ollama` its root (http://gpu1:11434); for `openai` the base URL
  the server serves the API under, usually ending in /v1 (http://gpu2:8000/v1).
- MODEL: the model's name on that server (gpt-oss-safeguard:20b on Ollama,
  openai/gpt-oss-safeguard-20b on vLLM).
- bound=N: at most N calls in flight to this endpoint (1-256; default
  MODBOT_MODEL_CONCURRENCY). For Ollama, OLLAMA_NUM_PARALLEL + 1; for vLLM or SGLang, the
  number of sequences it should batch.
- schema=json_schema|json_object (`openai` only; default json_schema): how the server takes
  the verdict schema. vLLM, SGLang and Ollama's /v1 take json_schema; llama-cpp-python's
  server takes json_object.
- timeout=SECONDS: this endpoint's deadline for one call (default MODBOT_MODEL_TIMEOUT).
- name=LABEL: how logs and metrics name it (default: its URL without credentials); needed
  when two endpoints share a URL.
- api_key_env=VAR (`openai` only; default OPENAI_API_KEY): the environment variable that
  holds this server's key. The key itself never goes in the list.
- max_tokens=N: a ceiling on the tokens one answer may generate, reasoning included
  (default MODBOT_MODEL_MAX_TOKENS, unset: none).
- temperature=T: the sampling temperature, 0-2 (default MODBOT_MODEL_TEMPERATURE, unset:
  the server's own).

When MODBOT_MODEL_ENDPOINTS is set it replaces MODBOT_BACKEND, OLLAMA_HOST, OPENAI_BASE_URL
and MODBOT_MODEL.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.classifier.backend import BackendKind, SchemaDialect

_KEYS = {
    "bound": "bound",
    "schema": "schema_dialect",
    "timeout": "timeout",
    "name": "name",
    "api_key_env": "api_key_env",
    "max_tokens": "max_tokens",
    "temperature": "temperature",
}
_SEPARATOR = re.compile(r"[;\n]")


class InvalidEndpoints(ValueError):
    """MODBOT_MODEL_ENDPOINTS cannot be read; the message names the endpoint and the field."""


class EndpointSpec(BaseModel):
    """One model server, as configured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: BackendKind
    url: str
    model: str = Field(min_length=1)
    bound: int = Field(ge=1, le=256)
    schema_dialect: SchemaDialect = "json_schema"
    timeout: float | None = Field(default=None, gt=0, le=3600)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    api_key_env: str = Field(default="OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    max_tokens: int | None = Field(default=None, ge=16, le=131072)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must start with http:// or https:// and name a host")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _openai_only_keys(self) -> EndpointSpec:
        if self.backend == "ollama":
            extra = [k for k in ("schema_dialect", "api_key_env") if k in self.model_fields_set]
            if extra:
                names = ", ".join("schema" if k == "schema_dialect" else k for k in extra)
                raise ValueError(f"{names} apply to openai endpoints only (Ollama takes the schema natively)")
        return self


def parse_endpoints(text: str, *, default_bound: int) -> list[EndpointSpec]:
    """Read the list; every problem names the endpoint (1-based) and what to fix."""
    entries = [entry.strip() for entry in _SEPARATOR.split(text) if entry.strip()]
    if not entries:
        raise InvalidEndpoints("MODBOT_MODEL_ENDPOINTS is set but lists no endpoint")
    specs = [_parse_one(n, entry, default_bound) for n, entry in enumerate(entries, start=1)]
    names = [spec.name or spec.url for spec in specs]
    for n, name in enumerate(names, start=1):
        if names.index(name) != n - 1:
            raise InvalidEndpoints(
                f"MODBOT_MODEL_ENDPOINTS, endpoint {n}: {name} is listed twice (give each a different name=...)"
            )
    return specs


def _parse_one(n: int, entry: str, default_bound: int) -> EndpointSpec:
    where = f"MODBOT_MODEL_ENDPOINTS, endpoint {n} ({entry!r})"
    fields = entry.split()
    positional = [f for f in fields if "=" not in f]
    options = [f for f in fields if "=" in f]
    if len(positional) != 3 or fields[:3] != positional:
        raise InvalidEndpoints(f"{where}: expected `BACKEND URL MODEL [key=value ...]`")
    values: dict[str, object] = {
        "backend": positional[0],
        "url": positional[1],
        "model": positional[2],
        "bound": default_bound,
    }
    for option in options:
        key, _, value = option.partition("=")
        if key not in _KEYS:
            raise InvalidEndpoints(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
        values[_KEYS[key]] = value
    try:
        return EndpointSpec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{_key_name(e['loc'])}: {e['msg']}" if e["loc"] else str(e["msg"]) for e in exc.errors())
        raise InvalidEndpoints(f"{where}: {problems}") from None


def _key_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0])
    return next((key for key, name in _KEYS.items() if name == field), field)
