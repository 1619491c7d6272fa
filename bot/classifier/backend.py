"""What a backend is: one wire call to one model server, and nothing more.

A backend (Ollama's /api/chat, an OpenAI-compatible /v1/chat/completions) sends the
prompt, returns the raw answer, and translates its library's errors into the neutral
ones of bot/classifier/errors.py. Everything else (deadlines, the bound on calls in
flight, retries, validation, routing across endpoints) is written once, in pool.py and
classifier.py, and holds for every backend alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from bot.classifier.prompt import ClassificationRequest

# How a call ended, as metrics and logs name it.
CallResult = Literal["ok", "malformed", "timeout", "unavailable", "rejected"]
# The wire protocol of an endpoint: Ollama's native /api/chat, or OpenAI's /v1/chat/completions.
BackendKind = Literal["ollama", "openai"]
BACKENDS: tuple[BackendKind, ...] = ("ollama", "openai")
# How an OpenAI-compatible server takes a JSON schema (see openai_backend.py).
SchemaDialect = Literal["json_schema", "json_object"]
SCHEMA_DIALECTS: tuple[SchemaDialect, ...] = ("json_schema", "json_object")


def endpoint_name(url: str) -> str:
    """How logs and metrics name an endpoint unless the operator names it: scheme, host and
    path, never credentials or a query (http://gpu1:11434, https://vllm.internal/v1)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def public_url(url: str) -> str:
    """The URL as logs and messages may show it: without a user or password in it."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


@dataclass(frozen=True)
class RawAnswer:
    """The server's answer before validation."""

    content: str
    reasoning: str
    prompt_tokens: int
    completion_tokens: int


class ModelBackend(Protocol):
    """One model server. `name` identifies it in logs and metrics (its URL without credentials unless configured)."""

    name: str
    model: str

    async def complete(self, request: ClassificationRequest) -> RawAnswer:
        """One call. Raises EndpointFailure or ModelRequestRejected; the caller enforces the deadline."""
        ...

    async def probe(self) -> str | None:
        """A cheap request that says whether this server can serve the model: None if so, else what is wrong."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ModelCall:
    """One call to one endpoint, for metrics: how it ended, how long it took, what it cost."""

    endpoint: str
    effort: str
    result: CallResult
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ModelCallObserver(Protocol):
    """Told of every model call and every change of an endpoint's health (metrics hang here)."""

    def model_call(self, call: ModelCall) -> None: ...

    def endpoint_health(self, endpoint: str, up: bool) -> None: ...
