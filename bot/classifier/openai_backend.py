"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, Ollama's /v1), with the official `openai` client.

The same prompts as the Ollama backend; the effort goes as `reasoning_effort`, the verdict
schema as `response_format`, in the dialect the server understands:

- "json_schema": OpenAI's `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`,
  taken by vLLM, SGLang and Ollama's /v1;
- "json_object": `{"type": "json_object", "schema": ...}`, taken by llama-cpp-python's server
  (which refuses "json_schema" with a 422).

The reasoning comes back in `reasoning_content` (vLLM, SGLang, llama.cpp) or `reasoning`
(newer vLLM, Ollama's /v1) when the server returns it. The answer is always validated:
a server may accept a schema and not enforce it.
"""

from __future__ import annotations

from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat

from bot.classifier.backend import SCHEMA_DIALECTS, RawAnswer, SchemaDialect, endpoint_name, public_url
from bot.classifier.classifier import ModelClassifier, RetryPolicy
from bot.classifier.errors import EndpointFailure, ModelRequestRejected
from bot.classifier.pool import EndpointPool
from bot.classifier.prompt import ClassificationRequest, build_messages
from bot.classifier.verdict import VERDICT_SCHEMA

TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504}
CONNECT_SECONDS = 10.0
CLIENT_GRACE_SECONDS = 5.0  # see ollama_backend: the pool's deadline, not the client, ends a stuck call
# The client insists on a key; servers that check none (most local ones) ignore the header.
NO_KEY = "not-needed"
_REASONING_FIELDS = ("reasoning_content", "reasoning")


def response_format(dialect: SchemaDialect) -> ResponseFormat:
    if dialect == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True}}
    # llama-cpp-python's extension: the schema beside "json_object", compiled into a grammar.
    return cast(ResponseFormat, {"type": "json_object", "schema": VERDICT_SCHEMA})


class OpenAIBackend:
    """One OpenAI-compatible server at `base_url` (ending in /v1, as the servers serve it)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        schema: SchemaDialect = "json_schema",
        timeout: float = 300.0,
        name: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        if schema not in SCHEMA_DIALECTS:
            raise ValueError(f"schema dialect must be one of {', '.join(SCHEMA_DIALECTS)}, not {schema!r}")
        self.base_url = public_url(base_url.rstrip("/"))  # for messages: the client alone holds credentials
        self.model = model
        self.schema: SchemaDialect = schema
        self.name = name or endpoint_name(base_url)
        self._response_format = response_format(schema)
        # max_tokens rather than max_completion_tokens: every compatible server takes it.
        self._max_tokens: int | openai.Omit = openai.omit if max_tokens is None else max_tokens
        self._temperature: float | openai.Omit = openai.omit if temperature is None else temperature
        self._client = openai.AsyncOpenAI(
            base_url=base_url.rstrip("/"),
            api_key=api_key or NO_KEY,
            # Retries are the classifier's, the same for every backend: none in the client.
            max_retries=0,
            timeout=openai.Timeout(timeout + CLIENT_GRACE_SECONDS, connect=min(timeout, CONNECT_SECONDS)),
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(self, request: ClassificationRequest) -> RawAnswer:
        try:
            completion = await self._client.chat.completions.create(
                model=self.model,
                messages=cast(list[ChatCompletionMessageParam], build_messages(request)),
                reasoning_effort=request.effort.value,
                response_format=self._response_format,
                # Not streamed and, unless the operator set a ceiling, not capped, as with
                # Ollama: the answer comes after the reasoning, which a small cap would eat.
                max_tokens=self._max_tokens,
                temperature=self._temperature,
                stream=False,
            )
        except openai.APIConnectionError as exc:  # APITimeoutError included: a connect timeout, see above
            raise EndpointFailure(self.name, self._unreachable(exc)) from exc
        except openai.APIStatusError as exc:
            raise self._explain(exc) from exc
        if not completion.choices:
            return RawAnswer(content="", reasoning="", prompt_tokens=0, completion_tokens=0)
        message = completion.choices[0].message
        usage = completion.usage
        return RawAnswer(
            content=message.content or "",
            reasoning=_reasoning(message.model_extra),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    async def probe(self) -> str | None:
        try:
            listing = await self._client.models.list()
        except openai.APIConnectionError as exc:
            return self._unreachable(exc)
        except openai.APIStatusError as exc:
            return str(self._explain(exc))
        served = {m.id for m in listing.data}
        if self.model not in served:
            listed = ", ".join(sorted(served)) or "none"
            return f"model {self.model} is not served at {self.base_url} (it serves: {listed})"
        return None

    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"model server unreachable at {self.base_url} ({type(exc).__name__}): start the server, "
            f"or set OPENAI_BASE_URL (or the endpoint's URL in MODBOT_MODEL_ENDPOINTS)"
        )

    def _explain(self, exc: openai.APIStatusError) -> Exception:
        status = exc.status_code
        detail = _detail(exc)
        if status in (400, 422, 500) and "response_format" in detail:
            # The server does not take this schema dialect: a setting to fix, not a message
            # to give up on (llama-cpp-python says so with a 500, vLLM with a 400).
            other = "json_object" if self.schema == "json_schema" else "json_schema"
            return EndpointFailure(
                self.name,
                f"model server at {self.base_url} does not take the verdict schema as {self.schema} "
                f"({status}: {detail[:160]}): set schema={other} for this endpoint (MODBOT_OPENAI_SCHEMA={other} "
                f"for a single server)",
                transient=False,
            )
        if status == 404:
            return EndpointFailure(
                self.name,
                f"model {self.model} or its API is not found at {self.base_url} ({detail}): check the model "
                f"name, and that the URL ends in /v1",
                missing_model=True,
            )
        if status in (401, 403):
            return EndpointFailure(
                self.name,
                f"model server at {self.base_url} refused our credentials ({status}): set OPENAI_API_KEY",
                transient=False,
            )
        if status in TRANSIENT_STATUS:
            return EndpointFailure(self.name, f"model server at {self.base_url} answered {status}: {detail}")
        return ModelRequestRejected(f"model server at {self.base_url} refused the request ({status}): {detail}")


def _reasoning(extra: dict[str, Any] | None) -> str:
    for field in _REASONING_FIELDS:
        value = (extra or {}).get(field)
        if isinstance(value, str) and value:
            return value
    return ""


def _detail(exc: openai.APIStatusError) -> str:
    # Servers put the reason in different places: {"error": {"message"}}, {"detail": ...}, {"error": "..."}.
    body = exc.body
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if value:
                return str(value)[:300]
    return exc.message[:300]


class OpenAIClassifier(ModelClassifier):
    """The classifier over a single OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        schema: SchemaDialect = "json_schema",
        concurrency: int = 2,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        timeout_retries: int = 1,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        backend = OpenAIBackend(
            base_url,
            model,
            api_key=api_key,
            schema=schema,
            timeout=timeout,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        pool = EndpointPool.of_one(backend, bound=concurrency, timeout=timeout)
        super().__init__(pool, retry=retry, timeout_retries=timeout_retries)
        self.base_url = backend.base_url
        self.model = model
