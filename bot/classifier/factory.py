"""The classifier the settings describe: one endpoint (MODBOT_BACKEND) or several (MODBOT_MODEL_ENDPOINTS)."""

from __future__ import annotations

import os

from bot.classifier.backend import ModelBackend, ModelCallObserver, public_url
from bot.classifier.classifier import ModelClassifier, RetryPolicy
from bot.classifier.endpoints import EndpointSpec, parse_endpoints
from bot.classifier.pool import Endpoint, EndpointPool
from bot.settings import ModbotSettings


class BackendMisconfigured(ValueError):
    """The settings do not describe a model server the bot can use; the message says what to set."""


def endpoint_specs(settings: ModbotSettings) -> list[EndpointSpec]:
    if settings.model_endpoints and settings.model_endpoints.strip():
        return parse_endpoints(settings.model_endpoints, default_bound=settings.model_concurrency)
    if settings.backend == "openai":
        if not settings.openai_base_url:
            # No default: the openai package would send every chat message to OpenAI's cloud.
            raise BackendMisconfigured(
                "MODBOT_BACKEND=openai needs OPENAI_BASE_URL, the server's API root "
                "(for example http://127.0.0.1:8000/v1 for vLLM)"
            )
        return [
            EndpointSpec(
                backend="openai",
                url=settings.openai_base_url,
                model=settings.model,
                bound=settings.model_concurrency,
                schema_dialect=settings.openai_schema,
            )
        ]
    return [
        EndpointSpec(
            backend="ollama",
            url=ollama_url(settings.ollama_host),
            model=settings.model,
            bound=settings.model_concurrency,
        )
    ]


def ollama_url(host: str) -> str:
    """OLLAMA_HOST as Ollama reads it: `host`, `host:port` or a URL; without a scheme the port is 11434."""
    host = host.strip().rstrip("/")
    if "://" in host:
        return host
    authority = host.split("/", 1)[0]
    has_port = authority.rsplit(":", 1)[-1].isdigit() and not authority.endswith("]")
    return f"http://{host}" if has_port else f"http://{authority}:11434" + host[len(authority) :]


def describe_endpoints(settings: ModbotSettings) -> str:
    """Where the model is, for the start-up log: each endpoint's model, URL and backend."""
    return ", ".join(f"{s.model} at {public_url(s.url)} ({s.backend})" for s in endpoint_specs(settings))


def build_backend(spec: EndpointSpec, settings: ModbotSettings) -> ModelBackend:
    # The backends import their client libraries (the openai package alone takes most of a
    # second): only the ones configured are loaded.
    timeout = spec.timeout or settings.model_timeout
    max_tokens = spec.max_tokens or settings.model_max_tokens
    temperature = spec.temperature if spec.temperature is not None else settings.model_temperature
    if spec.backend == "openai":
        from bot.classifier.openai_backend import OpenAIBackend

        if spec.api_key_env == "OPENAI_API_KEY" and settings.openai_api_key is not None:
            api_key: str | None = settings.openai_api_key.get_secret_value()
        else:
            api_key = os.environ.get(spec.api_key_env)
        return OpenAIBackend(
            spec.url,
            spec.model,
            api_key=api_key,
            schema=spec.schema_dialect,
            timeout=timeout,
            name=spec.name,
            max_tokens=max_tokens,
            temperature=temperature,
        )
    from bot.classifier.ollama_backend import OllamaBackend

    return OllamaBackend(
        spec.url,
        spec.model,
        timeout=timeout,
        keep_alive=settings.keep_alive,
        num_ctx=settings.num_ctx,
        name=spec.name,
        max_tokens=max_tokens,
        temperature=temperature,
    )


def build_classifier(
    settings: ModbotSettings, retry: RetryPolicy | None = None, *, observer: ModelCallObserver | None = None
) -> ModelClassifier:
    """The Classifier (and ModelProbe) for these settings; a ValueError names the setting that is wrong."""
    endpoints = [
        Endpoint(build_backend(spec, settings), bound=spec.bound, timeout=spec.timeout or settings.model_timeout)
        for spec in endpoint_specs(settings)
    ]
    return ModelClassifier(
        EndpointPool(endpoints, observer=observer), retry=retry, timeout_retries=settings.model_timeout_retries
    )
